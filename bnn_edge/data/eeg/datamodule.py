"""EEG motor imagery (imagined left vs right fist): the data module and its two sources.

- ``synthetic`` (default, offline): EEGMMIDB-shaped runs simulated from a spherical head
  model (:mod:`bnn_edge.data.eeg.synthetic`), cut into trials exactly like the real files.
- ``physionet``: the real EEGMMIDB through MNE (:mod:`bnn_edge.data.eeg.eegmmidb`), runs 4, 8
  and 12 by default; every file is checked and subjects that fail are skipped and listed.

Trials are (64 channels, 960 samples): 6 s from each T1 (left, label 0) / T2 (right,
label 1) onset at 160 Hz. Normalisation is per channel: subtract the mean and divide by the
standard deviation, both taken over all of a subject's trials (``normalize=subject``,
default) or over each trial alone (``normalize=trial``). Dividing by the standard deviation
rather than the variance (the paper says "variance") gives every channel unit variance
whatever the recording's units; divided by the variance, a signal in volts would become
about 1e5 and one in microvolts about 0.03, so the amplitude the network sees, and the
meaning of ``noise_std``, would depend on an arbitrary unit.
Preprocessed sets are cached (atomically), keyed by every setting that changes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import bnn_edge.data.eeg.eegmmidb as eegmmidb
from bnn_edge.data.base import ArrayDataModule, Arrays, check_trials
from bnn_edge.data.cache import cache_key, load_or_build, resolve_cache_dir
from bnn_edge.errors import ConfigError, DataError
from bnn_edge.validation import is_int, require_bool, require_choice, require_int

SOURCES = ("synthetic", "physionet")
NORMALIZE = ("subject", "trial", "none")
SPLITS = ("trial", "subject")
DEFAULT_EXCLUDE = (88, 92, 100, 104)
SYNTHETIC_SUBJECTS = 20
CACHE_VERSION = 1
TRIAL_SHAPE = (len(eegmmidb.CHANNELS), eegmmidb.N_SAMPLES)


def normalize_trials(x: np.ndarray, subject: np.ndarray, mode: str) -> np.ndarray:
    """Per-channel zero mean, unit s.d. over each subject's trials (or each trial), float32."""
    if mode == "none":
        return x.astype(np.float32, copy=False)
    out = np.empty(x.shape, dtype=np.float32)
    if mode == "trial":
        groups = [np.array([i]) for i in range(len(x))]
    else:
        groups = [np.flatnonzero(subject == s) for s in np.unique(subject)]
    for idx in groups:
        part = x[idx].astype(np.float64)
        mean = part.mean(axis=(0, 2), keepdims=True)
        std = part.std(axis=(0, 2), keepdims=True)
        out[idx] = (part - mean) / np.where(std > 0, std, 1.0)
    return out


def subject_list(subjects, source: str) -> list[int]:
    """``null`` (all of the source), ``N`` (subjects 1..N) or an explicit list of ids."""
    top = eegmmidb.N_SUBJECTS if source == "physionet" else None
    allowed = (f"null, an integer N in [1, {top}] (subjects 1..N) or a list of subject ids in "
               f"[1, {top}]" if top else
               "null, an integer N >= 1 (subjects 1..N) or a list of subject ids >= 1")
    if subjects is None:
        return list(range(1, (top or SYNTHETIC_SUBJECTS) + 1))
    if is_int(subjects):
        if subjects < 1 or (top and subjects > top):
            raise ConfigError("data.subjects", subjects, allowed)
        return list(range(1, subjects + 1))
    try:
        ids = list(subjects)
    except TypeError:
        raise ConfigError("data.subjects", subjects, allowed) from None
    if not ids or not all(is_int(s) and s >= 1 and (not top or s <= top) for s in ids):
        raise ConfigError("data.subjects", subjects, allowed)
    if len(set(ids)) != len(ids):
        raise ConfigError("data.subjects", subjects, "subject ids without repeats")
    return sorted(ids)


class EEGDataModule(ArrayDataModule):
    """64-channel, 6 s motor-imagery trials at 160 Hz; label 0 = left fist, 1 = right fist.

    ``split=trial`` deals trials into the folds (stratified by class), ``split=subject``
    keeps every subject whole in one of train, validation or test. ``noise_std`` adds
    Gaussian noise to training batches (in units of the normalised signal).
    """

    trial_shape = TRIAL_SHAPE

    def __init__(self, source: str = "synthetic", root: str | None = None,
                 download: bool = False, subjects=None,
                 exclude=DEFAULT_EXCLUDE, runs=eegmmidb.IMAGERY_RUNS,
                 normalize: str = "subject", split: str = "trial", synthetic_seed: int = 0,
                 cache_dir: str | None = None, progress: bool = True, **split_options):
        super().__init__(**split_options)
        require_choice("data.source", source, SOURCES)
        require_choice("data.normalize", normalize, NORMALIZE)
        require_choice("data.split", split, SPLITS)
        require_bool("data.download", download)
        if root is not None and not isinstance(root, str | Path):
            raise ConfigError("data.root", root, "a folder path or null (MNE's default folder)")
        require_int("data.synthetic_seed", synthetic_seed)
        runs_ok = (not isinstance(runs, str | bytes | int)) and runs is not None
        runs = list(runs) if runs_ok else runs
        if (not runs_ok or not runs or len(set(runs)) != len(runs)
                or not all(r in eegmmidb.LR_RUNS for r in runs)):
            raise ConfigError("data.runs", runs, "a list of distinct left/right fist runs from "
                              "3, 4, 7, 8, 11, 12 (imagery: 4, 8, 12)")
        exclude = [] if exclude is None else exclude
        if isinstance(exclude, str | bytes | int) or not all(
                is_int(s) and s >= 1 for s in exclude):
            raise ConfigError("data.exclude", exclude, "a list of subject ids (may be empty)")
        requested = subject_list(subjects, source)
        self.excluded = {s: "in data.exclude" for s in requested if s in set(exclude)}
        self.subjects = [s for s in requested if s not in self.excluded]
        if not self.subjects:
            raise ConfigError("data.exclude", list(exclude), "to leave at least one subject")
        if split == "subject":
            self._check_subject_split(len(self.subjects))
        self.source, self.download, self.normalize = source, download, normalize
        self.split_by = split
        self.runs = tuple(sorted(runs))
        self.root = None if root is None else Path(root).expanduser()
        self.synthetic_seed = synthetic_seed
        self.cache_dir = resolve_cache_dir(cache_dir)
        self.progress = progress
        self.trial_subjects: np.ndarray | None = None  # subject id of every trial, once loaded
        if source == "physionet" and not download:
            self._physionet_files()  # a missing copy is reported before any work starts

    def _check_subject_split(self, n_subjects: int) -> None:
        """split=subject needs at least one subject per fold after the test subjects."""
        n_test = int(round(self.test_fraction * n_subjects))
        if n_subjects - n_test < self.folds:
            raise ConfigError("data.folds", self.folds,
                              f"at most {n_subjects - n_test} with split=subject and "
                              f"{n_subjects} subjects ({n_test} held out for test)")

    # ----------------------------------------------------------------- description

    def describe_source(self) -> str:
        n = len(self.arrays.info["subjects"]) if self.arrays is not None else len(self.subjects)
        trials = f", {len(self.arrays.y)} trials" if self.arrays is not None else ""
        what = (f"{n} subjects{trials} of 6 s at 160 Hz, 64 channels, left vs right fist "
                f"(runs {', '.join(map(str, self.runs))})")
        if self.source == "synthetic":
            return f"synthetic EEGMMIDB-shaped motor imagery from a spherical head model " \
                   f"(offline), {what}"
        return f"EEGMMIDB (PhysioNet) from {self.resolved_root()}, {what}"

    def resolved_root(self) -> Path:
        return self.root if self.root is not None else eegmmidb.default_root()

    # ----------------------------------------------------------------- files and cache

    def _physionet_files(self) -> list[Path]:
        """The run files of every requested subject, fetched first if download=true."""
        root = self.resolved_root()
        missing = eegmmidb.missing_files(root, self.subjects, self.runs)
        if missing and self.download:
            eegmmidb.fetch(root, self.subjects, self.runs)
            missing = eegmmidb.missing_files(root, self.subjects, self.runs)
        if missing:
            subjects = sorted({int(p.parent.name[1:]) for p in missing})
            shown = ", ".join(str(p) for p in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            hint = eegmmidb.FETCH_HINT.replace("ROOT", str(root)).replace(
                "SUBJECTS", str(subjects) if len(subjects) <= 10 else "[...]").replace(
                "RUNS", str(list(self.runs)))
            raise DataError(f"{len(missing)} EEGMMIDB file(s) missing under {root} (expected "
                            f"{root / eegmmidb.DATASET_DIR}/SXXX/SXXXRYY.edf): {shown}{more}; "
                            f"{hint}")
        return [eegmmidb.run_path(root, s, r) for s in self.subjects for r in self.runs]

    def cache_settings(self, files: list[Path] | None = None) -> dict:
        settings = {"task": "eeg-motor-imagery", "source": self.source, "version": CACHE_VERSION,
                    "subjects": self.subjects, "runs": list(self.runs),
                    "normalize": self.normalize, "fs": eegmmidb.FS,
                    "samples": eegmmidb.N_SAMPLES}
        if self.source == "synthetic":
            from bnn_edge.data.eeg.synthetic import DEFAULT_SETTINGS

            settings.update(seed=self.synthetic_seed, simulation=DEFAULT_SETTINGS.as_dict())
        else:
            settings.update(root=str(self.resolved_root().resolve()),
                            files=[[p.name, p.stat().st_size, p.stat().st_mtime_ns]
                                   for p in files or []])
        return settings

    def cache_path(self, files: list[Path] | None = None) -> Path:
        key = cache_key(self.cache_settings(files))
        return self.cache_dir / f"eeg_{self.source}_{key}.npz"

    # ----------------------------------------------------------------- building

    def _subjects_progress(self, description: str):
        from bnn_edge.progress import track

        return track(self.subjects, description, self.progress, len(self.subjects))

    def _build_synthetic(self) -> tuple[list, list, dict, int]:
        import bnn_edge.data.eeg.synthetic as eeg_synthetic

        xs, ys, dropped = [], [], 0
        for s in self._subjects_progress(f"Simulating {len(self.subjects)} EEG subjects"):
            runs = eeg_synthetic.simulate_subject(s, self.synthetic_seed, self.runs)
            for run in runs.values():
                x, y = eeg_synthetic.run_epochs(run)
                xs.append((s, x))
                ys.append(y)
                dropped += sum(d in ("T1", "T2") for d in run.descriptions) - len(y)
        return xs, ys, {}, dropped

    def _build_physionet(self) -> tuple[list, list, dict, int]:
        xs, ys, skipped, dropped = [], [], {}, 0
        root = self.resolved_root()
        for s in self._subjects_progress(f"Reading {len(self.subjects)} EEGMMIDB subjects"):
            result = eegmmidb.read_subject(root, s, self.runs)
            if result.problem:
                skipped[s] = result.problem
                continue
            xs.append((s, result.x))
            ys.append(result.y)
            dropped += result.dropped
        return xs, ys, skipped, dropped

    def _build(self) -> dict[str, np.ndarray]:
        build = self._build_synthetic if self.source == "synthetic" else self._build_physionet
        xs, ys, skipped, dropped = build()
        if not xs:
            listing = "; ".join(f"S{s:03d}: {why}" for s, why in skipped.items())
            raise DataError(f"{self.resolved_root()}: no subject passed the checks ({listing})")
        subject = np.concatenate([np.full(len(x), s, dtype=np.int64) for s, x in xs])
        x = np.concatenate([x for _, x in xs])
        x = normalize_trials(x, subject, self.normalize)
        return {"x": x, "y": np.concatenate(ys).astype(np.int64), "subject": subject,
                "skipped_ids": np.array(sorted(skipped), dtype=np.int64),
                "skipped_reasons": np.array([skipped[s] for s in sorted(skipped)], dtype=str),
                "dropped_cues": np.array(dropped, dtype=np.int64)}

    def _check_stored(self, stored: dict, where) -> dict:
        """The arrays of a built or cached set, checked as the network will see them."""
        check_trials(stored, where, TRIAL_SHAPE, self.num_classes, per_trial=("subject",))
        for key in ("skipped_ids", "skipped_reasons", "dropped_cues"):
            if key not in stored:
                raise DataError(f"{where}: the array {key!r} is missing")
        ids, reasons = stored["skipped_ids"], stored["skipped_reasons"]
        if (ids.ndim != 1 or reasons.shape != ids.shape or not np.issubdtype(ids.dtype, np.integer)
                or reasons.dtype.kind != "U" or stored["dropped_cues"].shape != ()
                or not np.issubdtype(stored["dropped_cues"].dtype, np.integer)):
            raise DataError(f"{where}: its record of skipped subjects is malformed")
        unknown = sorted(set(np.unique(stored["subject"]).tolist()) - set(self.subjects))
        if unknown:
            raise DataError(f"{where}: trials of subjects {unknown[:5]} that were not asked for")
        return stored

    def load(self) -> Arrays:
        files = self._physionet_files() if self.source == "physionet" else None
        path = self.cache_path(files)
        verb = "generated" if self.source == "synthetic" else "read"
        built_from = path if self.source == "synthetic" else self.resolved_root()
        stored, origin = load_or_build(path, self._build, self._check_stored, verb=verb,
                                       built_from=built_from)
        subject = stored["subject"]
        used, counts = np.unique(subject, return_counts=True)
        excluded = dict(self.excluded)
        excluded.update(zip(stored["skipped_ids"].tolist(), stored["skipped_reasons"].tolist(),
                            strict=True))
        info = {
            "source": self.source,
            "subjects": used.tolist(),
            "excluded_subjects": {str(s): why for s, why in sorted(excluded.items())},
            "trials_per_subject": {str(s): int(n) for s, n in zip(used, counts, strict=True)},
            "runs": list(self.runs),
            "dropped_cues": int(stored["dropped_cues"]),
            "channels": list(eegmmidb.CHANNELS),
            "sampling_rate_hz": eegmmidb.FS,
            "epoch": "960 samples (6 s) from each T1/T2 onset; cues whose window overruns the "
                     "recording are dropped",
            "normalize": self.normalize,
            "split": self.split_by,
            "label_meaning": {"0": "left fist (T1)", "1": "right fist (T2)"},
            "cache_file": str(path),
            "cache": origin,
        }
        if self.source == "synthetic":
            info["synthetic_seed"] = self.synthetic_seed
        else:
            info["root"] = str(self.resolved_root())
        groups = subject if self.split_by == "subject" else None
        self.trial_subjects = subject
        return Arrays(stored["x"], stored["y"], info, groups)

    def setup(self, stage: str | None = None) -> None:
        first = self.arrays is None
        super().setup(stage)
        if first and self.split_by == "subject":  # subjects may have failed the checks
            self._check_subject_split(len(self.arrays.info["subjects"]))
