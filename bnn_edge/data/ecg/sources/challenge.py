"""The competition layout: ``input_training.npy`` and ``output_training.npy``, labels kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bnn_edge.data.ecg.leads import FS, LEADS, WINDOW
from bnn_edge.data.ecg.sources.records import (
    FileSource,
    Record,
    RecordProblem,
    SkipLog,
    check_root,
    check_signal,
    files_fingerprint,
)
from bnn_edge.errors import ConfigError, DataError
from bnn_edge.progress import track

CHALLENGE_LEADS = ("I", "II", "III", "aVF", "aVL", "aVR", "V1", "V2", "V3", "V4", "V5", "V6")
#: project lead k is challenge lead CHALLENGE_TO_PROJECT[k]
CHALLENGE_TO_PROJECT = np.array([CHALLENGE_LEADS.index(lead) for lead in LEADS])
CHALLENGE_INPUTS, CHALLENGE_LABELS = "input_training.npy", "output_training.npy"


class ChallengeSource(FileSource):
    """The competition layout: ``input_training.npy`` (n, 12, T) at 250 Hz in lead order
    I, II, III, aVF, aVL, aVR, V1-V6 and ``output_training.npy`` (n,) with 0 = correct,
    1 = inverted. Leads are reordered to the project's order; labels are kept as given.
    """

    name, labelled, group_by = "challenge", True, "row"

    def __init__(self, root: Path, max_records: int | None = None, windows_per_record: int = 1):
        expected = f"the folder holding {CHALLENGE_INPUTS} and {CHALLENGE_LABELS}"
        check_root(root, expected)
        self.root, self.max_records = root, max_records
        self.inputs, self.labels = root / CHALLENGE_INPUTS, root / CHALLENGE_LABELS
        for path in (self.inputs, self.labels):
            if not path.is_file():
                raise DataError(f"{path}: not found; data.source=challenge expects "
                                f"{CHALLENGE_INPUTS} (n, 12, 2500) at 250 Hz in lead order "
                                f"{', '.join(CHALLENGE_LEADS)} and {CHALLENGE_LABELS} (n,) "
                                f"of 0 (correct) / 1 (inverted) in data.root")
        x = self._load(self.inputs, mmap=True)
        if x.ndim != 3 or x.shape[1] != 12 or not np.issubdtype(x.dtype, np.number):
            raise DataError(f"{self.inputs}: array of shape {x.shape} ({x.dtype}); expected "
                            f"numbers of shape (n, 12, T): n ECGs, 12 leads, T samples at 250 Hz")
        y = self._load(self.labels, mmap=False)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.shape != (x.shape[0],):
            raise DataError(f"{self.labels}: shape {y.shape}; expected ({x.shape[0]},), one "
                            f"label per ECG of {self.inputs.name}")
        if not np.isin(y, (0, 1)).all():
            raise DataError(f"{self.labels}: labels {sorted(np.unique(y).tolist())[:10]}; "
                            f"expected 0 (correct) or 1 (inverted)")
        if x.shape[2] < windows_per_record * WINDOW:
            raise ConfigError("data.windows_per_record", windows_per_record,
                              f"at most {x.shape[2] // WINDOW}: {self.inputs.name} holds "
                              f"{x.shape[2]} samples ({x.shape[2] / FS:g} s) per ECG")
        self.n = x.shape[0] if max_records is None else min(x.shape[0], max_records)
        self.y = y.astype(np.int64)

    @staticmethod
    def _load(path: Path, mmap: bool) -> np.ndarray:
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{path}: cannot read this .npy array ({e})") from e

    def settings(self) -> dict:
        return {"root": str(self.root), "max_records": self.max_records,
                "files": files_fingerprint([self.inputs, self.labels])}

    def describe(self) -> str:
        return f"challenge-layout 12-lead ECGs from {self.root} ({CHALLENGE_INPUTS}, 250 Hz)"

    def records(self, skips: SkipLog, progress: bool = False) -> Iterator[Record]:
        x = self._load(self.inputs, mmap=True)
        for i in track(list(range(self.n)), f"Reading {self.n} challenge ECGs", progress):
            name = f"{CHALLENGE_INPUTS}[{i}]"
            with np.errstate(over="ignore"):  # beyond float32's range: Inf, then skipped
                sig = np.asarray(x[i], dtype=np.float32)[CHALLENGE_TO_PROJECT]
            try:
                check_signal(sig.astype(np.float64), name)
            except RecordProblem as p:
                skips.add(p)
                continue
            yield Record(name, sig, str(i), float(FS), label=int(self.y[i]))

    @classmethod
    def from_options(cls, root: Path, max_records: int | None = None,
                     windows_per_record: int = 1, **_) -> ChallengeSource:
        return cls(root, max_records, windows_per_record)
