"""Tiny ECG files in their real formats (WFDB records as PTB-XL stores them), for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

FREQS = np.arange(2, 14)  # Hz, lead k of the project order
AMPS = 0.5 + 0.1 * np.arange(12)  # mV
PTBXL_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
PTBXL_COLUMNS = ["ecg_id", "patient_id", "age", "sex", "scp_codes", "electrodes_problems",
                 "strat_fold", "filename_lr", "filename_hr"]


def sines(fs: float, seconds: float, seed: int, freqs=FREQS, amps=AMPS) -> np.ndarray:
    """(T, 12) float64: column k is ``amps[k] * sin(2 pi freqs[k] t + phase)``, random phases."""
    t = np.arange(int(round(fs * seconds)))[:, None] / fs
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=12)
    return amps * np.sin(2 * np.pi * freqs * t + phase)


def write_record(folder: Path, name: str, signal: np.ndarray, fs: float, names: list[str],
                 units: str = "mV") -> None:
    """A WFDB record (16-bit, 1 uV or 1 nV steps) as PTB-XL stores it."""
    folder.mkdir(parents=True, exist_ok=True)
    gain = 1000.0 if units == "mV" else 1.0
    wfdb.wrsamp(name, fs=fs, units=[units] * len(names), sig_name=names, p_signal=signal,
                fmt=["16"] * len(names), adc_gain=[gain] * len(names),
                baseline=[0] * len(names), write_dir=str(folder))
