"""Lead algebra of the 12-lead ECG: lead order, electrode reversals, resampling.

Leads are always in the order ``I, II, III, aVR, aVL, aVF, V1..V6`` (:data:`LEADS`); a
trial is 3 s at 250 Hz (:data:`TRIAL_SHAPE`).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
from scipy.signal import resample_poly

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
FS = 250
WINDOW = 750
TRIAL_SHAPE = (len(LEADS), WINDOW)

_I, _II, _III, _AVR, _AVL, _AVF = range(6)
# Limb-electrode reversals as (permutation, sign): new[k] = sign[k] * x[perm[k]].
_LIMB_SWAPS = {
    "LA-RA": ({_I: _I, _II: _III, _III: _II, _AVR: _AVL, _AVL: _AVR}, {_I: -1}),
    "LA-LL": ({_I: _II, _II: _I, _AVL: _AVF, _AVF: _AVL}, {_III: -1}),
    "RA-LL": ({_I: _III, _III: _I, _AVR: _AVF, _AVF: _AVR}, {_I: -1, _II: -1, _III: -1}),
}


def _canonical_swap(swap: str) -> tuple[str, str]:
    """Normalise a swap name ("la-ra", "RA-LA", "V2-V1") to its two electrode names."""
    parts = [p.strip().upper() for p in str(swap).split("-")]
    if len(parts) != 2 or parts[0] == parts[1]:
        raise ValueError(f"electrode swap {swap!r}: expected two electrodes like 'LA-RA'")
    return parts[0], parts[1]


def canonical_swap(swap: str) -> str:
    """The one spelling of a swap: "ra-la" -> "LA-RA", "V2-V1" -> "V1-V2" (ValueError if bad)."""
    swap_transform(swap)
    a, b = _canonical_swap(swap)
    limb = ("LA", "RA", "LL")
    if a in limb and b in limb:
        return next(name for name in _LIMB_SWAPS if set(name.split("-")) == {a, b})
    return "-".join(sorted((a, b), key=lambda v: int(v[1:])))


def swap_transform(swap: str) -> tuple[np.ndarray, np.ndarray]:
    """The (permutation, sign) pair that applies electrode reversal ``swap`` to 12 leads."""
    a, b = _canonical_swap(swap)
    perm, sign = np.arange(12), np.ones(12)
    for name, (moves, signs) in _LIMB_SWAPS.items():
        if set(name.split("-")) == {a, b}:
            for dst, src in moves.items():
                perm[dst] = src
            for dst, s in signs.items():
                sign[dst] = s
            return perm, sign
    precordial = {f"V{i}": 6 + i - 1 for i in range(1, 7)}
    if a in precordial and b in precordial:
        perm[precordial[a]], perm[precordial[b]] = precordial[b], precordial[a]
        return perm, sign
    allowed = "LA-RA, LA-LL, RA-LL or Vi-Vj with i, j in 1..6"
    raise ValueError(f"electrode swap {swap!r}: expected {allowed}")


def reverse_electrodes(x, swap: str):
    """Apply electrode reversal ``swap`` to ECGs ``x`` of shape (..., 12, T).

    ``x`` is a numpy array or a torch tensor in lead order I, II, III, aVR, aVL, aVF,
    V1-V6; the result has the same type, shape and dtype. ``swap`` names the two
    electrodes exchanged: "LA-RA", "LA-LL", "RA-LL" (either order, any case) or two
    precordial electrodes such as "V1-V2". The limb reversals follow from the lead
    definitions (I = LA - RA, II = LL - RA, III = LL - LA, aVR = RA - (LA + LL)/2, ...);
    Wilson's central terminal is symmetric in the limb electrodes, so V1-V6 are unchanged.
    """
    if x.ndim < 2 or x.shape[-2] != 12:
        raise ValueError(f"expected 12 leads on axis -2, got shape {tuple(x.shape)}")
    perm, sign = swap_transform(swap)
    if isinstance(x, torch.Tensor):
        perm_t = torch.as_tensor(perm, device=x.device)
        return x[..., perm_t, :] * torch.as_tensor(sign, dtype=x.dtype, device=x.device)[:, None]
    return x[..., perm, :] * sign.astype(x.dtype)[:, None]


def limb_leads_from_i_ii(lead_i: np.ndarray, lead_ii: np.ndarray) -> np.ndarray:
    """III, aVR, aVL, aVF from leads I and II (Einthoven and Goldberger), stacked on axis -2."""
    return np.stack([lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2,
                     lead_ii - lead_i / 2], axis=-2)


def resample_to(sig: np.ndarray, fs_in: float, fs: int = FS,
                padtype: str = "constant") -> np.ndarray:
    """Resample signals (..., T) sampled at ``fs_in`` Hz to ``fs`` Hz (polyphase), as float32.

    ``fs_in`` may be fractional (e.g. 1000/3 Hz); the ratio is taken as an exact fraction.
    ``padtype`` is scipy's assumption about the signal beyond its ends.
    """
    ratio = Fraction(fs) / Fraction(fs_in).limit_denominator(10_000)
    return resample_poly(sig, ratio.numerator, ratio.denominator, axis=-1,
                         padtype=padtype).astype(np.float32)


def reverse_fraction(x: np.ndarray, rng: np.random.Generator, swaps: list[str],
                     inverted_fraction: float,
                     weights: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reverse electrodes in place on ``round(inverted_fraction * n)`` random trials of ``x``.

    Each reversed trial (label 1) gets a swap drawn from ``swaps``, uniformly or with the
    relative ``weights`` (their prevalence). Returns the labels and each trial's swap index
    (-1: not reversed).
    """
    n = len(x)
    y = np.zeros(n, dtype=np.int64)
    inverted = rng.permutation(n)[: int(round(inverted_fraction * n))]
    y[inverted] = 1
    swap_of = np.full(n, -1, dtype=np.int64)
    if weights is None:
        swap_of[inverted] = rng.integers(0, len(swaps), size=len(inverted))
    else:
        p = np.asarray(weights, dtype=np.float64)
        swap_of[inverted] = rng.choice(len(swaps), size=len(inverted), p=p / p.sum())
    for k, swap in enumerate(swaps):
        idx = np.flatnonzero(swap_of == k)
        x[idx] = reverse_electrodes(x[idx], swap)
    return y, swap_of
