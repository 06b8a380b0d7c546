"""EEGMMIDB run files written as the dataset stores them, for tests and benchmarks."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from bnn_edge.data.eeg.eegmmidb import CHANNELS, edf_label


def write_run(path: Path, signals_uv: np.ndarray, sfreq: float, onsets_s, durations_s,
              descriptions, channels: tuple[str, ...] = CHANNELS) -> None:
    """Write one run as EEGMMIDB does: EDF+, labels like 'Fc5.', T0/T1/T2 annotations.

    Used to lay out test data and synthetic subjects exactly as the real files are.
    The recording length must be a whole number of seconds (EDF data records of 1 s).
    """
    import mne

    info = mne.create_info([edf_label(c) for c in channels], sfreq, "eeg")
    raw = mne.io.RawArray(np.asarray(signals_uv, dtype=np.float64) * 1e-6, info, verbose="ERROR")
    raw.set_annotations(mne.Annotations(onsets_s, durations_s, descriptions))
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="ERROR")
