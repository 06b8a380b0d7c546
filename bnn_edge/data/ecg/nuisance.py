"""What makes real 12-lead recordings hard, added to the synthetic ECGs at the electrodes.

Every nuisance is a physical effect with a documented default (docs/ecg_data.md gives the
sources and the measured effect of each on accuracy):

- **electrical axis spread** (``axis_spread_deg``): hearts lie at different angles in the
  chest. The 8 independent leads (I, II, V1-V6) are mapped to a vectorcardiogram with the
  Kors regression matrix, the heart vector is rotated (frontal plane by N(0, s), the other
  two axes by N(0, s/2)), and the change is projected back with Dower's matrix:
  ``x' = x + D (R - 1) K x``, so whatever the dipole model does not explain is kept;
- **heart-rate spread** (``heart_rate_spread``): each 10 s ECG is played faster or slower
  by a factor exp(N(0, s)) (QRS width scales with it, which real hearts do far less);
- **amplitude scaling** (``gain_spread``): body habitus and skin impedance, one gain
  exp(N(0, s)) per trial;
- **baseline wander** (``baseline_wander_mv``), **EMG noise** (``emg_noise_mv``) and
  **powerline interference** (``powerline_mv`` at ``powerline_hz``): added to each of the
  nine electrode potentials (RA, LA, LL, V1-V6) separately, with its own amplitude, phase
  or noise draw: respiration at 0.15-0.4 Hz, muscle noise band-limited to 20-100 Hz, the
  mains frequency. A common-mode part would cancel in every lead, as it does in a real
  differential amplifier;
- the recorder's **baseline filter** (``highpass_hz``, 0 = off): a 2nd-order zero-phase
  high-pass on every lead, as electrocardiographs apply (0.5 Hz is the usual monitoring
  setting; diagnostic recorders use 0.05 Hz).

The 12 leads are then computed from the electrodes, so Einthoven's and Goldberger's
relations hold on every trial, and an electrode reversal applied afterwards is exactly
:func:`~bnn_edge.data.ecg.leads.reverse_electrodes` of the clean trial.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy.signal import butter, sosfiltfilt

from bnn_edge.data.ecg.leads import FS, WINDOW, resample_to
from bnn_edge.validation import require_number

#: Kors et al. (1990) regression matrix: leads I, II, V1-V6 -> X, Y, Z (mV -> mV)
KORS = np.array([
    [0.38, -0.07, -0.13, 0.05, -0.01, 0.14, 0.06, 0.54],
    [-0.07, 0.93, 0.06, -0.02, -0.05, 0.06, -0.17, 0.13],
    [0.11, -0.23, -0.43, -0.06, -0.14, -0.20, -0.11, 0.31],
])
#: Dower et al. (1980) matrix: X, Y, Z -> leads I, II, V1-V6 (rows reordered to that order)
DOWER = np.array([
    [0.632, -0.235, 0.059],    # I
    [0.235, 1.066, -0.132],    # II
    [-0.515, 0.157, -0.917],   # V1
    [0.044, 0.164, -1.387],    # V2
    [0.882, 0.098, -1.277],    # V3
    [1.213, 0.127, -0.601],    # V4
    [1.125, 0.127, -0.086],    # V5
    [0.831, 0.076, 0.230],     # V6
])
INDEPENDENT = (0, 1, 6, 7, 8, 9, 10, 11)  # I, II, V1-V6 in the 12-lead order
ELECTRODES = ("RA", "LA", "LL", "V1", "V2", "V3", "V4", "V5", "V6")
RESPIRATION_HZ = (0.15, 0.4)
EMG_BAND_HZ = (20.0, 100.0)
#: the largest level of each nuisance and why: beyond it the effect is no longer physical
#: (and a factor exp(N(0, s)) or an amplitude soon overflows float32 in the generated trials)
LIMITS = {
    "axis_spread_deg": (180.0, "degrees; a wider spread is a random direction"),
    "heart_rate_spread": (1.0, "the sd of log(rate factor); 1 already gives factors 0.14-7.1 "
                               "to 95% of the trials"),
    "gain_spread": (1.0, "the sd of log(gain); 1 already gives gains 0.14-7.1 to 95% of the "
                         "trials"),
    "baseline_wander_mv": (10.0, "mV; electrocardiographs record +-5 mV"),
    "emg_noise_mv": (10.0, "mV; electrocardiographs record +-5 mV"),
    "powerline_mv": (10.0, "mV; electrocardiographs record +-5 mV"),
}


@dataclass(frozen=True)
class Nuisance:
    """The nuisance levels (see the module docstring); all zero is the clean generator."""

    axis_spread_deg: float = 10.0
    heart_rate_spread: float = 0.08
    gain_spread: float = 0.15
    baseline_wander_mv: float = 0.03
    emg_noise_mv: float = 0.01
    powerline_mv: float = 0.01
    powerline_hz: float = 50.0
    highpass_hz: float = 0.5

    def __post_init__(self):
        for f in fields(self):
            option, value = f"data.{f.name}", getattr(self, f.name)
            if f.name in LIMITS:
                high, why = LIMITS[f.name]
                require_number(option, value, 0, high, allowed=f"a number in [0, {high:g}] ({why})")
            else:
                require_number(option, value, 0, FS / 2, low_open=f.name == "powerline_hz",
                               high_open=True)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def clean(cls) -> Nuisance:
        """No nuisance at all: the generator's ECGs, resampled and windowed."""
        return cls(**{f.name: 0.0 for f in fields(cls) if f.name != "powerline_hz"})

    @property
    def is_clean(self) -> bool:
        return self == Nuisance.clean()


def rotation(angles: np.ndarray) -> np.ndarray:
    """The rotation matrix of angles (about X, Y, Z, radians), applied in that order."""
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotate_heart_axis(x8: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Leads I, II, V1-V6 (8, T) with the heart vector rotated: ``x + D (R - 1) K x``."""
    return x8 + DOWER @ (rotation(angles) - np.eye(3)) @ (KORS @ x8)


def electrodes_from_leads(x8: np.ndarray) -> np.ndarray:
    """Electrode potentials (..., 9, T) RA, LA, LL, V1-V6 of leads I, II, V1-V6 (..., 8, T),
    taking Wilson's central terminal as zero."""
    lead_i, lead_ii, chest = x8[..., 0, :], x8[..., 1, :], x8[..., 2:, :]
    ra = -(lead_i + lead_ii) / 3
    return np.concatenate([np.stack([ra, ra + lead_i, ra + lead_ii], axis=-2), chest], axis=-2)


def leads_from_electrodes(e: np.ndarray) -> np.ndarray:
    """The 12 leads (..., 12, T) in the project order from electrode potentials (..., 9, T)."""
    ra, la, ll, chest = e[..., 0, :], e[..., 1, :], e[..., 2, :], e[..., 3:, :]
    wct = (ra + la + ll) / 3
    limb = np.stack([la - ra, ll - ra, ll - la, ra - (la + ll) / 2, la - (ra + ll) / 2,
                     ll - (ra + la) / 2], axis=-2)
    return np.concatenate([limb, chest - wct[..., None, :]], axis=-2)


def _electrode_noise(n: int, rng: np.random.Generator, nz: Nuisance,
                     window: int, fs: int) -> np.ndarray:
    """Baseline wander + EMG + powerline for n trials (n, 9, window), each electrode its own."""
    t = np.arange(window) / fs
    shape = (n, len(ELECTRODES), 1)
    noise = np.zeros((n, len(ELECTRODES), window))
    if nz.baseline_wander_mv > 0:
        f = rng.uniform(*RESPIRATION_HZ, size=(n, 1, 1))  # one breathing rate per trial
        amp = rng.uniform(0, 2 * nz.baseline_wander_mv, size=shape)
        noise += amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, size=shape))
    if nz.emg_noise_mv > 0:
        sos = butter(4, EMG_BAND_HZ, btype="bandpass", fs=fs, output="sos")
        raw = sosfiltfilt(sos, rng.standard_normal((n, len(ELECTRODES), window)), axis=-1)
        raw /= raw.std(axis=-1, keepdims=True)
        noise += rng.uniform(0, 2 * nz.emg_noise_mv, size=shape) * raw
    if nz.powerline_mv > 0:
        amp = rng.uniform(0, 2 * nz.powerline_mv, size=shape)
        noise += amp * np.sin(2 * np.pi * nz.powerline_hz * t
                              + rng.uniform(0, 2 * np.pi, size=shape))
    return noise


def synthesize_trials(ecgs: np.ndarray, fs_in: int, rng: np.random.Generator, nz: Nuisance,
                      window: int = WINDOW, fs: int = FS) -> np.ndarray:
    """Clean 12-lead ECGs (n, 12, T) at ``fs_in`` -> trials (n, 12, window) at ``fs`` with
    every nuisance of ``nz``, no electrode reversed yet (float32, mV)."""
    n = len(ecgs)
    x8 = ecgs[:, INDEPENDENT].astype(np.float64)
    if nz.axis_spread_deg > 0:
        spread = np.deg2rad(nz.axis_spread_deg) * np.array([0.5, 0.5, 1.0])
        for i in range(n):
            x8[i] = rotate_heart_axis(x8[i], rng.normal(0, spread))
    # a heart faster by f plays its beats as if recorded at fs_in * f: one polyphase step;
    # f in steps of 1/40 keeps the resampling ratio a small fraction (fast filters)
    factors = np.round(40 * np.exp(rng.normal(0, nz.heart_rate_spread, size=n))) / 40
    factors = np.maximum(factors, 1 / 40)
    out = np.empty((n, 8, window))
    for i in range(n):
        sig = resample_to(x8[i], fs_in * float(factors[i]), fs, padtype="line")
        if sig.shape[-1] < window:  # only for extreme factors: repeat the record
            sig = np.tile(sig, (1, math.ceil(window / sig.shape[-1])))
        start = rng.integers(0, sig.shape[-1] - window + 1)
        out[i] = sig[:, start:start + window]
    gains = np.exp(rng.normal(0, nz.gain_spread, size=(n, 1, 1)))
    electrodes = gains * electrodes_from_leads(out) + _electrode_noise(n, rng, nz, window, fs)
    leads = leads_from_electrodes(electrodes)
    if nz.highpass_hz > 0:  # the recorder's baseline filter; linear, so the algebra stays
        sos = butter(2, nz.highpass_hz, btype="highpass", fs=fs, output="sos")
        leads = sosfiltfilt(sos, leads, axis=-1)
    return leads.astype(np.float32)
