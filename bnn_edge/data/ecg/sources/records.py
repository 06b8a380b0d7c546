"""What the file sources share: records, skip counting, signal checks, windows, the task.

A reader turns files into :class:`Record` s, each a (12, T) array at 250 Hz in the project's
lead order; :func:`build_task` cuts 3 s windows from every record and, unless the files
carry labels, reverses the electrodes of a fraction of the windows.

What stops a run and what is skipped: a missing folder or file, an unreadable database
table or challenge array, or a missing/unreadable PTB-XL record raises :class:`DataError`
naming the path (the copy is incomplete; training on part of it silently would mislead).
A record whose *signal* is unusable (missing or duplicate leads, wrong lead count, NaN/Inf
samples, a flat lead, too short for the windows), a PTB-XL record flagged in
``electrodes_problems`` and, in a plain WFDB folder, a record wfdb cannot read are skipped;
every skip is counted by reason and the first messages (each naming the record) go to
``data.json``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnn_edge.data.base import Split
from bnn_edge.data.ecg.leads import FS, LEADS, WINDOW, resample_to, reverse_fraction
from bnn_edge.errors import DataError

log = logging.getLogger(__name__)

PTBXL_TABLE = "ptbxl_database.csv"
PTBXL_TEST_FOLD = 10
#: a lead is flat when its peak-to-peak amplitude is 0 or at most this fraction of the
#: median peak-to-peak amplitude of the record's 12 leads (scale-free: mV, uV or raw units)
FLAT_RELATIVE = 1e-3
EXAMPLES_PER_REASON = 20
_TO_MV = {"mv": 1.0, "uv": 1e-3, "\u00b5v": 1e-3, "\u03bcv": 1e-3, "v": 1e3}


class RecordProblem(Exception):
    """A record's signal cannot be used; ``reason`` is the counted category."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass
class Record:
    """One usable recording: ``signal`` (12, T) at 250 Hz in project lead order."""

    name: str
    signal: np.ndarray
    group: str
    fs_in: float
    strat_fold: int = -1
    label: int = -1


class SkipLog:
    """Counts skipped records by reason and keeps the first messages of each reason."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, problem: RecordProblem) -> None:
        self.counts[problem.reason] += 1
        if len(self.examples[problem.reason]) < EXAMPLES_PER_REASON:
            self.examples[problem.reason].append(str(problem))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        """``3 flat_lead, 1 non_finite`` (or ``none``)."""
        return ", ".join(f"{n} {r}" for r, n in sorted(self.counts.items())) or "none"


def check_signal(x: np.ndarray, record: str) -> None:
    """Raise :class:`RecordProblem` unless ``x`` (12, T) is 12 finite, non-flat leads."""
    if x.ndim != 2 or x.shape[0] != len(LEADS):
        raise RecordProblem("wrong_lead_count",
                            f"{record}: signal of shape {x.shape}, expected 12 leads")
    bad = ~np.isfinite(x)
    if bad.any():
        leads = ", ".join(LEADS[i] for i in np.flatnonzero(bad.any(axis=1)))
        raise RecordProblem("non_finite", f"{record}: {int(bad.sum())} NaN/Inf samples "
                                          f"in lead(s) {leads}")
    ptp = np.ptp(x, axis=1)
    ref = float(np.median(ptp))
    flat = (ptp == 0) | (ptp <= FLAT_RELATIVE * ref)
    if flat.any():
        leads = ", ".join(f"{LEADS[i]} (peak-to-peak {ptp[i]:.3g})" for i in np.flatnonzero(flat))
        raise RecordProblem("flat_lead", f"{record}: flat lead(s) {leads}; the median lead "
                                         f"spans {ref:.3g}")


def leads_by_name(signal: np.ndarray, names: list[str], record: str,
                  exactly_12: bool = False) -> np.ndarray:
    """Pick the 12 standard leads from ``signal`` (T, channels) by name, case-insensitively.

    Returns (12, T) in project order. Missing or duplicated standard leads (or, with
    ``exactly_12``, any other channel count) raise :class:`RecordProblem`.
    """
    names = [str(n).strip() for n in names]
    if exactly_12 and len(names) != len(LEADS):
        raise RecordProblem("wrong_lead_count", f"{record}: {len(names)} leads "
                                                f"({', '.join(names)}), expected the 12 "
                                                f"standard leads")
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        key = name.upper()
        if key in index and key in {lead.upper() for lead in LEADS}:
            raise RecordProblem("duplicate_leads", f"{record}: lead {name} appears twice")
        index.setdefault(key, i)
    missing = [lead for lead in LEADS if lead.upper() not in index]
    if missing:
        raise RecordProblem("missing_leads", f"{record}: missing lead(s) {', '.join(missing)} "
                                             f"(has {', '.join(names) or 'none'})")
    return np.asarray(signal[:, [index[lead.upper()] for lead in LEADS]], dtype=np.float64).T


def to_millivolts(x: np.ndarray, units: list[str]) -> np.ndarray:
    """Scale each lead (row) given in V, mV or uV to mV; other units are left as they are."""
    factors = np.array([_TO_MV.get(str(u).strip().lower(), 1.0) for u in units])
    return x * factors[:, None] if (factors != 1).any() else x


def prepare_wfdb_signal(signal: np.ndarray, fields: dict, record: str,
                        exactly_12: bool = False, margin: int | None = None) -> np.ndarray:
    """wfdb.rdsamp output -> checked (12, T') float32 at 250 Hz in project lead order, mV.

    ``margin`` samples (default :func:`edge_margin`) are dropped at each end after resampling.
    """
    names = list(fields.get("sig_name") or [])
    x = leads_by_name(signal, names, record, exactly_12=exactly_12)
    units = list(fields.get("units") or [])
    if len(units) == len(names):
        unit_of: dict[str, str] = {}
        for n, u in zip(names, units, strict=True):
            unit_of.setdefault(str(n).strip().upper(), u)
        x = to_millivolts(x, [unit_of[lead.upper()] for lead in LEADS])
    check_signal(x, record)
    fs_in = float(fields["fs"])
    margin = edge_margin(fs_in) if margin is None else margin
    with np.errstate(over="ignore"):
        y = resample_to(x, fs_in, padtype="line")
    check_signal(y, record)  # as float32: values beyond its range become Inf
    return y[:, margin:y.shape[1] - margin]


def edge_margin(fs_in: float) -> int:
    """Samples at 250 Hz dropped at each end of a resampled record (0 when none is needed).

    The polyphase filter reaches about ``10 * max(250 / fs_in, 1)`` output samples past
    an end (10 from 500 Hz, 25 from 100 Hz), where it sees the padding, not the record.
    """
    return 0 if fs_in == FS else int(np.ceil(10 * max(FS / fs_in, 1.0)))


def cut_windows(sig: np.ndarray, k: int, rng: np.random.Generator, record: str,
                window: int = WINDOW) -> np.ndarray:
    """``k`` non-overlapping windows (k, 12, window): one at a random offset in each k-th."""
    length = sig.shape[-1]
    slot = length // k
    if slot < window:
        raise RecordProblem("too_short", f"{record}: {length} usable samples at {FS} Hz "
                                         f"({length / FS:.2f} s) hold fewer than {k} "
                                         f"window(s) of {window / FS:g} s")
    starts = np.arange(k) * slot + rng.integers(0, slot - window + 1, size=k)
    return np.stack([sig[:, s:s + window] for s in starts])


def files_fingerprint(paths: list[Path], listed_by: str = "the data source") -> str:
    """A hash of the files' paths, sizes and modification times (the cache key's part)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = p.stat()
        except FileNotFoundError:
            raise DataError(f"{p}: file not found; it belongs to a record listed in "
                            f"{listed_by}") from None
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def read_wfdb(path: Path):
    import wfdb

    return wfdb.rdsamp(str(path))


def check_root(root: Path, expected: str) -> None:
    if not root.is_dir():
        raise DataError(f"{root}: data.root is not a folder; expected {expected}")


class FileSource:
    """A reader of recordings on disk; subclasses list their records.

    ``labelled``: the files carry the labels (else electrodes are reversed here);
    ``group_by``: what a trial's group is (patient, record, row); ``windowed``: trials are
    3 s windows cut from longer records (``data.windows_per_record`` applies).
    """

    name: str
    labelled: bool = False
    group_by: str = "record"
    windowed = True
    root: Path

    def settings(self) -> dict:
        """What the cache key must hold to follow these files."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def origin(self, seed: int) -> Path:
        """What freshly read trials are named by in an error: the data folder."""
        return self.root

    def records(self, skips: SkipLog, progress: bool = False):
        raise NotImplementedError

    def build(self, task) -> tuple[dict, dict]:
        """The task's arrays and the record of what was read (see :func:`build_task`)."""
        return build_task(self, task.windows_per_record, task.seed, task.swaps,
                          task.inverted_fraction, task.progress, task.swap_weights)

    def info(self, meta: dict, task) -> dict:
        """What ``data.json`` records about this source beyond the common fields."""
        grouped = self.group_by == "patient_id" or task.windows_per_record > 1
        return {"root": str(self.root), **meta, "windows_per_record": task.windows_per_record,
                "groups": self.group_by if grouped else None}


def build_task(source, windows_per_record: int, seed: int, swaps: list[str],
               inverted_fraction: float, progress: bool = False,
               swap_weights: list[float] | None = None) -> tuple[dict, dict]:
    """Read every record of ``source``, cut windows, label them; return (arrays, meta).

    ``arrays`` holds x (n, 12, 750) float32, y, swap_index (-1: not reversed), groups
    (an integer per patient, or per record) and strat_fold (-1 where unknown). ``meta``
    says what was read and skipped. Deterministic for ``seed``.
    """
    rng = np.random.default_rng(seed)
    skips = SkipLog()
    windows, labels, groups, folds = [], [], [], []
    group_ids: dict[str, int] = {}
    fs_in: Counter = Counter()
    for rec in source.records(skips, progress):
        try:
            w = cut_windows(rec.signal, windows_per_record, rng, rec.name)
        except RecordProblem as p:
            skips.add(p)
            continue
        windows.append(w)
        labels += [rec.label] * len(w)
        groups += [group_ids.setdefault(rec.group, len(group_ids))] * len(w)
        folds += [rec.strat_fold] * len(w)
        fs_in[f"{rec.fs_in:g}"] += 1
    if skips.total:
        log.warning("%s: skipped %d record(s): %s; first: %s", source.name, skips.total,
                    skips.line(), "; ".join(v[0] for v in skips.examples.values()))
    if not windows:
        raise DataError(f"{source.root}: no usable {source.name} records (skipped: "
                        f"{skips.line()}); see docs/ecg_data.md")
    x = np.concatenate(windows)
    if source.labelled:
        y = np.array(labels, dtype=np.int64)
        swap_of = np.full(len(x), -1, dtype=np.int64)
    else:
        y, swap_of = reverse_fraction(x, rng, swaps, inverted_fraction, swap_weights)
    arrays = {"x": x, "y": y, "swap_index": swap_of, "groups": np.array(groups, dtype=np.int64),
              "strat_fold": np.array(folds, dtype=np.int64)}
    meta = {"records_read": len(windows), "records_skipped": dict(sorted(skips.counts.items())),
            "records_skipped_total": skips.total,
            "skipped_examples": {r: skips.examples[r] for r in sorted(skips.examples)},
            "input_sampling_hz": dict(sorted(fs_in.items())),
            f"n_{source.group_by}s": len(group_ids)}
    return arrays, meta


def strat_fold_split(strat_fold: np.ndarray, folds: int, fold: int) -> Split:
    """PTB-XL's own folds: strat_fold 10 is the test split; strat_folds 1-9 are dealt into
    ``folds`` folds (strat_fold s goes to fold (s - 1) % folds) and fold ``fold`` validates.

    PTB-XL assigns all records of a patient to one strat_fold, so no patient is in two
    splits; ``folds=9, fold=8`` is the split PTB-XL recommends (train 1-8, val 9, test 10).
    """
    strat_fold = np.asarray(strat_fold)
    bad = sorted(set(np.unique(strat_fold).tolist()) - set(range(1, PTBXL_TEST_FOLD + 1)))
    if bad:
        raise DataError(f"{PTBXL_TABLE}: strat_fold values {bad[:10]}; expected 1..10")
    dealt = (strat_fold - 1) % folds
    test = strat_fold == PTBXL_TEST_FOLD
    split = Split(np.flatnonzero(~test & (dealt != fold)), np.flatnonzero(~test & (dealt == fold)),
                  np.flatnonzero(test))
    for name, idx in vars(split).items():
        if name != "test" and not len(idx):
            raise DataError(f"{PTBXL_TABLE}: no trials for the {name} split with "
                            f"data.split=strat_fold, data.folds={folds}, data.fold={fold}")
    return split


def val_strat_folds(folds: int, fold: int) -> list[int]:
    """The strat_fold values that validate in fold ``fold`` of ``folds``."""
    return [s for s in range(1, PTBXL_TEST_FOLD) if (s - 1) % folds == fold]
