"""Real 12-lead ECG sources for the electrode-inversion task, and the checks they share.

Three readers turn files into records, each a (12, T) array at 250 Hz in the project's
lead order (I, II, III, aVR, aVL, aVF, V1-V6): :class:`PTBXLSource` (PhysioNet PTB-XL),
:class:`ChallengeSource` (the competition's ``input_training.npy`` / ``output_training.npy``)
and :class:`WFDBSource` (any folder of WFDB records). :func:`build_task` cuts 3 s windows
from every record and, unless the files carry labels, reverses the electrodes of a fraction
of the windows with the synthetic source's :func:`~bnn_edge.data.ecg.reverse_fraction`.

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

import csv
import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnn_edge.data.base import Split
from bnn_edge.data.ecg import FS, LEADS, WINDOW, resample_to, reverse_fraction
from bnn_edge.errors import ConfigError, DataError

log = logging.getLogger(__name__)

CHALLENGE_LEADS = ("I", "II", "III", "aVF", "aVL", "aVR", "V1", "V2", "V3", "V4", "V5", "V6")
#: project lead k is challenge lead CHALLENGE_TO_PROJECT[k]
CHALLENGE_TO_PROJECT = np.array([CHALLENGE_LEADS.index(lead) for lead in LEADS])
CHALLENGE_INPUTS, CHALLENGE_LABELS = "input_training.npy", "output_training.npy"
PTBXL_TABLE = "ptbxl_database.csv"
SAMPLINGS = (500, 100)
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


def _track(items: list, description: str, progress: bool):
    if not progress:
        return items
    from rich.progress import track

    return track(items, description=description, total=len(items), transient=True)


def _read_wfdb(path: Path):
    import wfdb

    return wfdb.rdsamp(str(path))


def _check_root(root: Path, expected: str) -> None:
    if not root.is_dir():
        raise DataError(f"{root}: data.root is not a folder; expected {expected}")


class PTBXLSource:
    """PTB-XL: ``ptbxl_database.csv`` plus WFDB records in ``records500/`` or ``records100/``.

    Records are taken in ``ecg_id`` order and trimmed by 25 samples (0.1 s) at each end
    after resampling at either rate; those with a non-empty ``electrodes_problems``
    entry are left out (counted) unless ``exclude_electrode_problems`` is false. Trials
    are grouped by ``patient_id``; ``strat_fold`` is kept for :func:`strat_fold_split`.
    """

    name, labelled, group_by = "ptbxl", False, "patient_id"

    def __init__(self, root: Path, sampling: int = 500, exclude_electrode_problems: bool = True,
                 max_records: int | None = None):
        self.root, self.sampling = root, sampling
        self.exclude, self.max_records = exclude_electrode_problems, max_records
        expected = (f"the PTB-XL folder holding {PTBXL_TABLE}, records100/ and records500/ "
                    f"(see docs/ecg_data.md)")
        _check_root(root, expected)
        self.table = root / PTBXL_TABLE
        if not self.table.is_file():
            hint = [p.parent for p in sorted(root.glob(f"*/{PTBXL_TABLE}"))]
            also = f"; did you mean data.root={hint[0]}?" if hint else ""
            raise DataError(f"{self.table}: not found; data.root must be {expected}{also}")
        self.folder = root / f"records{sampling}"
        if not self.folder.is_dir():
            raise DataError(f"{self.folder}: not found; data.sampling={sampling} reads the "
                            f"{sampling} Hz records from records{sampling}/ of the PTB-XL copy")
        self.column = "filename_hr" if sampling == 500 else "filename_lr"
        # the same margin at either rate, so that data.sampling changes resolution, not windows
        self.margin = edge_margin(min(SAMPLINGS))
        self._rows: tuple[list[dict], list[dict]] | None = None
        with open(self.table, newline="") as f:
            header = next(csv.reader(f), [])
        self._require_columns(header)

    def _require_columns(self, header: list[str]) -> None:
        need = ["ecg_id", "patient_id", "strat_fold", self.column]
        if self.exclude:
            need.append("electrodes_problems")
        missing = [c for c in need if c not in header]
        if missing:
            raise DataError(f"{self.table}: missing column(s) {', '.join(missing)}; expected "
                            f"PTB-XL's database table (ecg_id, patient_id, strat_fold, "
                            f"filename_lr, filename_hr, electrodes_problems, ...)")

    def rows(self) -> tuple[list[dict], list[dict]]:
        """(records to read, records left out for electrode problems), in ecg_id order."""
        if self._rows is None:
            keep, excluded = [], []
            with open(self.table, newline="") as f:
                for line, row in enumerate(csv.DictReader(f), start=2):
                    try:
                        rec = {"ecg_id": int(float(row["ecg_id"])),
                               "patient": str(int(float(row["patient_id"]))),
                               "strat_fold": int(float(row["strat_fold"])),
                               "file": row[self.column].strip(),
                               "problem": (row.get("electrodes_problems") or "").strip()}
                    except (TypeError, ValueError) as e:
                        raise DataError(f"{self.table}, line {line}: cannot read ecg_id, "
                                        f"patient_id or strat_fold ({e})") from None
                    if not rec["file"]:
                        raise DataError(f"{self.table}, line {line}: empty {self.column}")
                    (excluded if self.exclude and rec["problem"] else keep).append(rec)
            keep.sort(key=lambda r: r["ecg_id"])
            if self.max_records is not None:
                keep = keep[: self.max_records]
            self._rows = keep, excluded
        return self._rows

    def settings(self) -> dict:
        keep, _ = self.rows()
        files = [self.table]
        for rec in keep:
            files += [self.root / f"{rec['file']}.hea", self.root / f"{rec['file']}.dat"]
        return {"root": str(self.root), "sampling": self.sampling, "max_records":
                self.max_records, "exclude_electrode_problems": self.exclude,
                "files": files_fingerprint(files, f"{PTBXL_TABLE} (the PTB-XL copy is "
                                                  f"incomplete: download it whole or set "
                                                  f"data.max_records)")}

    def describe(self) -> str:
        return f"PTB-XL 12-lead ECGs from {self.root} (records{self.sampling}, {self.sampling} Hz)"

    def records(self, skips: SkipLog, progress: bool = False) -> Iterator[Record]:
        keep, excluded = self.rows()
        for rec in excluded:
            skips.add(RecordProblem("electrodes_problems",
                                    f"{rec['file']}: electrodes_problems={rec['problem']!r} "
                                    f"in {PTBXL_TABLE}"))
        for rec in _track(keep, f"Reading {len(keep)} PTB-XL records", progress):
            path = self.root / rec["file"]
            try:
                signal, fields = _read_wfdb(path)
            except FileNotFoundError as e:
                raise DataError(f"{path}: record files missing ({e}); {PTBXL_TABLE} lists it "
                                f"(ecg_id {rec['ecg_id']}): the PTB-XL copy is incomplete") from e
            except Exception as e:  # wfdb raises many types on a corrupt header or signal file
                raise DataError(f"{path}: cannot read this WFDB record "
                                f"({type(e).__name__}: {e})") from e
            try:
                x = prepare_wfdb_signal(signal, fields, rec["file"], exactly_12=True,
                                        margin=self.margin)
            except RecordProblem as p:
                skips.add(p)
                continue
            yield Record(rec["file"], x, rec["patient"], float(fields["fs"]), rec["strat_fold"])


class ChallengeSource:
    """The competition layout: ``input_training.npy`` (n, 12, T) at 250 Hz in lead order
    I, II, III, aVF, aVL, aVR, V1-V6 and ``output_training.npy`` (n,) with 0 = correct,
    1 = inverted. Leads are reordered to the project's order; labels are kept as given.
    """

    name, labelled, group_by = "challenge", True, "row"

    def __init__(self, root: Path, max_records: int | None = None, windows_per_record: int = 1):
        expected = f"the folder holding {CHALLENGE_INPUTS} and {CHALLENGE_LABELS}"
        _check_root(root, expected)
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
        for i in _track(list(range(self.n)), f"Reading {self.n} challenge ECGs", progress):
            name = f"{CHALLENGE_INPUTS}[{i}]"
            with np.errstate(over="ignore"):  # beyond float32's range: Inf, then skipped
                sig = np.asarray(x[i], dtype=np.float32)[CHALLENGE_TO_PROJECT]
            try:
                check_signal(sig.astype(np.float64), name)
            except RecordProblem as p:
                skips.add(p)
                continue
            yield Record(name, sig, str(i), float(FS), label=int(self.y[i]))


class WFDBSource:
    """Every WFDB record (``*.hea``, searched recursively, sorted by path) under a folder.

    Any sampling rate; the 12 standard leads are matched by name, case-insensitively
    (other channels are ignored); signals in V or uV are converted to mV. Records with
    missing leads, bad signals or that wfdb cannot read are skipped and counted.
    """

    name, labelled, group_by = "wfdb", False, "record"

    def __init__(self, root: Path, max_records: int | None = None):
        expected = "a folder of 12-lead WFDB records (.hea headers with their signal files)"
        _check_root(root, expected)
        self.root, self.max_records = root, max_records
        self.headers = sorted(root.rglob("*.hea"))
        if not self.headers:
            raise DataError(f"{root}: no WFDB header files (*.hea) found; data.source=wfdb "
                            f"expects {expected}, searched recursively")
        if max_records is not None:
            self.headers = self.headers[:max_records]

    def _record_files(self) -> list[Path]:
        """Each header and the files next to it sharing its name (its signal files)."""
        listing: dict[Path, list[str]] = {}
        files = []
        for hea in self.headers:
            names = listing.setdefault(hea.parent, sorted(p.name for p in hea.parent.iterdir()))
            files += [hea.parent / n for n in names if n.startswith(f"{hea.stem}.")]
        return files

    def settings(self) -> dict:
        return {"root": str(self.root), "max_records": self.max_records,
                "files": files_fingerprint(self._record_files())}

    def describe(self) -> str:
        return f"12-lead WFDB records from {self.root}"

    def records(self, skips: SkipLog, progress: bool = False) -> Iterator[Record]:
        heads = self.headers
        for hea in _track(heads, f"Reading {len(heads)} WFDB records", progress):
            name = hea.relative_to(self.root).with_suffix("").as_posix()
            try:
                signal, fields = _read_wfdb(hea.with_suffix(""))
            except Exception as e:  # any folder: skip what wfdb cannot read, and count it
                skips.add(RecordProblem("unreadable", f"{name}: wfdb cannot read it "
                                                      f"({type(e).__name__}: {e})"))
                continue
            try:
                x = prepare_wfdb_signal(signal, fields, name)
            except RecordProblem as p:
                skips.add(p)
                continue
            yield Record(name, x, name, float(fields["fs"]))


def build_task(source, windows_per_record: int, seed: int, swaps: list[str],
               inverted_fraction: float, progress: bool = False) -> tuple[dict, dict]:
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
        y, swap_of = reverse_fraction(x, rng, swaps, inverted_fraction)
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
