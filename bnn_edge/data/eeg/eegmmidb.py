"""The PhysioNet EEG Motor Movement/Imagery dataset (EEGMMIDB) as files: layout, checks, epochs.

109 subjects, 14 runs each, 64 channels at 160 Hz, EDF+ with annotations T0 (rest), T1 and
T2. In the left/right fist runs (3, 7, 11 executed; 4, 8, 12 imagined) T1 is the left fist
and T2 the right. MNE stores a copy at
``<root>/MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf``.

Epochs: trial ``k`` is the 960 samples (6 s) starting at the sample of its T1/T2 onset,
``[onset, onset + 960)``. A cue whose window runs past the end of the recording is dropped;
in a 125 s run of 15 cues that is the last one, so each run gives 14 trials and a subject
42 (MNE's ``Epochs(tmin=0, tmax=6)`` would give 961 samples, one more than Table I takes).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bnn_edge.errors import DataError

FS = 160
N_SAMPLES = 960
N_SUBJECTS = 109
LR_RUNS = (3, 4, 7, 8, 11, 12)  # runs with T1 = left fist, T2 = right fist
IMAGERY_RUNS = (4, 8, 12)
LABELS = {"T1": 0, "T2": 1}  # left fist, right fist
# The 64 channels in the files' order, as eegbci.standardize names them ("Fc5." -> "FC5").
CHANNELS = (
    "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
    "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz",
    "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "FT7", "FT8", "T7", "T8",
    "T9", "T10", "TP7", "TP8", "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "PO7", "PO3",
    "POz", "PO4", "PO8", "O1", "Oz", "O2", "Iz",
)
DATASET_DIR = Path("MNE-eegbci-data", "files", "eegmmidb", "1.0.0")
FETCH_HINT = ("set data.download=true to fetch them through MNE, or run: python -c \"from "
              "mne.datasets import eegbci; eegbci.load_data(SUBJECTS, RUNS, path='ROOT', "
              "update_path=False)\" (source: https://physionet.org/content/eegmmidb/1.0.0/)")


def edf_label(name: str) -> str:
    """The channel label as the EDF files spell it: 'FC5' -> 'Fc5.', 'Cz' -> 'Cz..'."""
    return (name[0] + name[1:].lower()).ljust(4, ".")


def run_path(root: Path, subject: int, run: int) -> Path:
    """Where MNE keeps run ``run`` of ``subject`` under ``root``."""
    return Path(root) / DATASET_DIR / f"S{subject:03d}" / f"S{subject:03d}R{run:02d}.edf"


def default_root() -> Path:
    """MNE's own default folder for this dataset: MNE_DATASETS_EEGBCI_PATH, else ~/mne_data."""
    import mne

    return Path(mne.get_config("MNE_DATASETS_EEGBCI_PATH") or Path.home() / "mne_data")


def cut_epochs(signals: np.ndarray, onsets: np.ndarray, labels: np.ndarray,
               n_samples: int = N_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``signals[:, s:s + n_samples]`` at every onset that fits in the recording."""
    keep = (onsets >= 0) & (onsets + n_samples <= signals.shape[-1])
    x = np.stack([signals[:, s:s + n_samples] for s in onsets[keep]]) if keep.any() else \
        np.empty((0, signals.shape[0], n_samples), dtype=signals.dtype)
    return x, labels[keep]


@dataclass
class SubjectEpochs:
    """One subject's trials (n, 64, 960) in microvolts and labels, or why it was skipped."""

    subject: int
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    problem: str | None = None
    dropped: int = 0
    files: list[str] = field(default_factory=list)


TRUNCATED = "Number of records from the header does not match the file size"


def read_run(path: Path) -> tuple[np.ndarray, np.ndarray, int] | str:
    """One EDF run: trials (n, 64, 960) in uV in :data:`CHANNELS` order, labels, cues dropped.

    Returns a string saying what is wrong when the file is readable but not what the task
    needs (sampling rate, channels, annotations); raises DataError if it cannot be read.
    """
    import mne
    from mne.datasets import eegbci

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = mne.io.read_raw_edf(path, preload=False, verbose="WARNING")
    except Exception as e:  # mne raises many types for a damaged EDF header
        raise DataError(f"{path}: cannot read this EDF file ({type(e).__name__}: {e}); "
                        "delete it and fetch it again") from e
    if any(TRUNCATED in str(w.message) for w in caught):
        # MNE would silently read the shortened file: its trials would be lost uncounted
        raise DataError(f"{path}: truncated EDF file (the header promises more data records "
                        "than the file holds); delete it and fetch it again")
    eegbci.standardize(raw)
    if raw.info["sfreq"] != FS:
        return f"{path.name}: sampling rate {raw.info['sfreq']:g} Hz, expected {FS} Hz"
    missing = [c for c in CHANNELS if c not in raw.ch_names]
    if missing or len(raw.ch_names) != len(CHANNELS):
        return (f"{path.name}: {len(raw.ch_names)} channels, expected the {len(CHANNELS)} "
                f"EEGMMIDB channels" + (f" (missing {', '.join(missing[:5])})" if missing else ""))
    descriptions = set(raw.annotations.description)
    if not descriptions & set(LABELS):
        found = ", ".join(sorted(descriptions)) or "none"
        return f"{path.name}: no T1/T2 annotations (found {found})"
    try:
        signals = raw.get_data(picks=list(CHANNELS)) * 1e6
    except Exception as e:
        raise DataError(f"{path}: cannot read the signals ({type(e).__name__}: {e}); "
                        "delete it and fetch it again") from e
    ann = raw.annotations
    cues = [i for i, d in enumerate(ann.description) if d in LABELS]
    onsets = np.array([int(round((ann.onset[i] - raw.first_time) * FS)) for i in cues])
    labels = np.array([LABELS[ann.description[i]] for i in cues], dtype=np.int64)
    x, y = cut_epochs(signals, onsets, labels)
    return x.astype(np.float32), y, len(onsets) - len(y)


def read_subject(root: Path, subject: int, runs: tuple[int, ...]) -> SubjectEpochs:
    """Every trial of ``subject`` in ``runs``; ``problem`` is set if any run fails a check."""
    out = SubjectEpochs(subject)
    xs, ys = [], []
    for run in runs:
        path = run_path(root, subject, run)
        out.files.append(str(path))
        result = read_run(path)
        if isinstance(result, str):
            out.problem = result
            return out
        x, y, dropped = result
        xs.append(x)
        ys.append(y)
        out.dropped += dropped
    out.x, out.y = np.concatenate(xs), np.concatenate(ys)
    if len(out.y) == 0:
        out.problem = "no complete 6 s trial in any run"
    return out


def missing_files(root: Path, subjects: list[int], runs: tuple[int, ...]) -> list[Path]:
    """The expected run files that are not on disk."""
    return [p for s in subjects for r in runs if not (p := run_path(root, s, r)).is_file()]


def fetch(root: Path, subjects: list[int], runs: tuple[int, ...]) -> None:
    """Download missing runs with MNE (``eegbci.load_data``); DataError if that fails."""
    from mne.datasets import eegbci

    try:
        eegbci.load_data(subjects, list(runs), path=str(root), update_path=False,
                         verbose="ERROR")
    except Exception as e:  # network errors come from requests/pooch with many types
        raise DataError(f"{Path(root) / DATASET_DIR}: downloading EEGMMIDB runs failed "
                        f"({type(e).__name__}: {e})") from e
