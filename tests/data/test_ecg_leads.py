"""Tests for the ECG lead algebra: reverse_electrodes and limb_leads_from_i_ii.

The reference leads are computed from random electrode potentials RA, LA, LL, V1e..V6e,
so every reversal is checked against physics rather than against the permutation table.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from bnn_edge.data.ecg import LEADS, limb_leads_from_i_ii, reverse_electrodes, swap_transform

ELECTRODES = ("RA", "LA", "LL", "V1", "V2", "V3", "V4", "V5", "V6")
SWAPS = ("LA-RA", "LA-LL", "RA-LL", "V1-V2", "V3-V5", "RA-LA", "la-ra", "LL-RA", "V2-V1",
         " v6 - v4 ")
ATOL = 1e-12


def _electrodes(shape: tuple[int, ...], seed: int) -> dict[str, np.ndarray]:
    """Random float64 potentials for the nine electrodes, each of ``shape``."""
    rng = np.random.default_rng(seed)
    return {name: rng.normal(scale=2.0, size=shape) for name in ELECTRODES}


def _leads(e: dict[str, np.ndarray]) -> np.ndarray:
    """The 12 standard leads from electrode potentials, stacked on axis -2."""
    ra, la, ll = e["RA"], e["LA"], e["LL"]
    wct = (ra + la + ll) / 3
    leads = [la - ra, ll - ra, ll - la,
             ra - (la + ll) / 2, la - (ra + ll) / 2, ll - (ra + la) / 2]
    leads += [e[f"V{i}"] - wct for i in range(1, 7)]
    return np.stack(leads, axis=-2)


def _swapped(e: dict[str, np.ndarray], swap: str) -> dict[str, np.ndarray]:
    """Electrode potentials with the two electrodes named in ``swap`` exchanged."""
    a, b = (p.strip().upper() for p in swap.split("-"))
    out = dict(e)
    out[a], out[b] = e[b], e[a]
    return out


def _einthoven_ok(leads: np.ndarray) -> None:
    """II = I + III and aVR + aVL + aVF = 0 on axis -2."""
    assert_allclose(leads[..., 1, :], leads[..., 0, :] + leads[..., 2, :], rtol=0, atol=ATOL)
    assert_allclose(leads[..., 3, :] + leads[..., 4, :] + leads[..., 5, :], 0.0,
                    rtol=0, atol=ATOL)


def test_lead_order():
    """Leads are I, II, III, aVR, aVL, aVF, V1..V6."""
    assert LEADS == ("I", "II", "III", "aVR", "aVL", "aVF",
                     "V1", "V2", "V3", "V4", "V5", "V6")


@pytest.mark.parametrize("swap", ["LA-RA", "LA-LL", "RA-LL", "V2-V3"])
def test_reversed_records_still_obey_einthoven(swap):
    """A reversal moves leads around but keeps II = I + III and aVR + aVL + aVF = 0, so the
    task cannot be solved by checking the lead algebra."""
    leads = _leads(_electrodes((4, 50), seed=0))
    _einthoven_ok(reverse_electrodes(leads, swap))


@pytest.mark.parametrize("swap", SWAPS)
def test_reverse_electrodes_numpy_matches_swapped_electrodes(swap):
    """numpy: reverse_electrodes(leads, swap) equals leads recomputed from swapped electrodes."""
    e = _electrodes((5, 64), seed=1)
    leads = _leads(e)
    expected = _leads(_swapped(e, swap))
    out = reverse_electrodes(leads, swap)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float64
    assert out.shape == leads.shape
    assert_allclose(out, expected, rtol=0, atol=ATOL)
    # The reversal really changed something, and the input was not modified in place.
    assert not np.allclose(out, leads)
    assert_allclose(leads, _leads(e), rtol=0, atol=0)
    _einthoven_ok(out)


@pytest.mark.parametrize("swap", SWAPS)
def test_reverse_electrodes_torch_matches_swapped_electrodes(swap):
    """torch: result is a tensor of the same dtype equal to the swapped-electrode leads."""
    e = _electrodes((3, 40), seed=2)
    leads = torch.from_numpy(_leads(e))
    expected = _leads(_swapped(e, swap))
    out = reverse_electrodes(leads, swap)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float64
    assert out.shape == leads.shape
    assert_allclose(out.numpy(), expected, rtol=0, atol=ATOL)
    _einthoven_ok(out.numpy())


@pytest.mark.parametrize("swap", ["LA-RA", "RA-LL", "V3-V5"])
def test_reverse_electrodes_float32_keeps_dtype(swap):
    """float32 numpy and torch inputs stay float32 and agree with the float64 result."""
    e = _electrodes((2, 30), seed=3)
    expected = _leads(_swapped(e, swap))
    leads32 = _leads(e).astype(np.float32)
    out_np = reverse_electrodes(leads32, swap)
    out_t = reverse_electrodes(torch.from_numpy(leads32), swap)
    assert out_np.dtype == np.float32
    assert out_t.dtype == torch.float32
    assert_allclose(out_np, expected, rtol=1e-5, atol=1e-5)
    assert_allclose(out_t.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("swap", SWAPS)
def test_reverse_electrodes_is_an_involution(swap):
    """Applying the same swap twice gives the original leads back (numpy and torch)."""
    leads = _leads(_electrodes((2, 25), seed=4))
    assert_allclose(reverse_electrodes(reverse_electrodes(leads, swap), swap), leads,
                    rtol=0, atol=ATOL)
    t = torch.from_numpy(leads)
    assert torch.equal(reverse_electrodes(reverse_electrodes(t, swap), swap), t)


@pytest.mark.parametrize("swap", ["LA-RA", "LA-LL", "RA-LL", "V1-V2"])
def test_reverse_electrodes_extra_batch_dims(swap):
    """Shape (2, 3, 12, T) works and equals the per-trial reference (numpy and torch)."""
    e = _electrodes((2, 3, 20), seed=5)
    leads = _leads(e)
    assert leads.shape == (2, 3, 12, 20)
    expected = _leads(_swapped(e, swap))
    assert_allclose(reverse_electrodes(leads, swap), expected, rtol=0, atol=ATOL)
    out_t = reverse_electrodes(torch.from_numpy(leads), swap)
    assert out_t.shape == (2, 3, 12, 20)
    assert_allclose(out_t.numpy(), expected, rtol=0, atol=ATOL)


def test_reverse_electrodes_single_trial():
    """A single ECG of shape (12, T) works too."""
    e = _electrodes((33,), seed=6)
    leads = _leads(e)
    assert leads.shape == (12, 33)
    assert_allclose(reverse_electrodes(leads, "LA-LL"), _leads(_swapped(e, "LA-LL")),
                    rtol=0, atol=ATOL)


def test_limb_reversals_known_relations():
    """LA-RA: I -> -I, II <-> III, aVR <-> aVL; V1..V6 unchanged for every limb swap."""
    leads = _leads(_electrodes((1, 16), seed=7))
    out = reverse_electrodes(leads, "LA-RA")
    assert_allclose(out[:, 0], -leads[:, 0], rtol=0, atol=0)
    assert_allclose(out[:, 1], leads[:, 2], rtol=0, atol=0)
    assert_allclose(out[:, 2], leads[:, 1], rtol=0, atol=0)
    assert_allclose(out[:, 3], leads[:, 4], rtol=0, atol=0)
    assert_allclose(out[:, 4], leads[:, 3], rtol=0, atol=0)
    assert_allclose(out[:, 5], leads[:, 5], rtol=0, atol=0)
    for swap in ("LA-RA", "LA-LL", "RA-LL"):
        assert_allclose(reverse_electrodes(leads, swap)[:, 6:], leads[:, 6:], rtol=0, atol=0)


def test_precordial_swap_touches_only_those_two_leads():
    """V3-V5 exchanges leads V3 and V5 and leaves the other ten unchanged."""
    leads = _leads(_electrodes((1, 16), seed=8))
    out = reverse_electrodes(leads, "V3-V5")
    v3, v5 = LEADS.index("V3"), LEADS.index("V5")
    assert_allclose(out[:, v3], leads[:, v5], rtol=0, atol=0)
    assert_allclose(out[:, v5], leads[:, v3], rtol=0, atol=0)
    keep = [k for k in range(12) if k not in (v3, v5)]
    assert_allclose(out[:, keep], leads[:, keep], rtol=0, atol=0)


def test_swap_spellings_are_equivalent():
    """'LA-RA', 'RA-LA' and 'la-ra' give the same transform."""
    ref = swap_transform("LA-RA")
    for spelling in ("RA-LA", "la-ra", "Ra-La"):
        perm, sign = swap_transform(spelling)
        assert np.array_equal(perm, ref[0]) and np.array_equal(sign, ref[1])


@pytest.mark.parametrize("swap", ["LA-LA", "XX-YY", "LA", "V1-V7", "V0-V1", "LA-V1",
                                  "LA-RA-LL", "", "v2-V2"])
def test_bad_swaps_raise(swap):
    """Same electrode twice, unknown electrodes, one electrode, or a limb/chest mix fail."""
    leads = np.zeros((1, 12, 4))
    with pytest.raises(ValueError):
        reverse_electrodes(leads, swap)
    with pytest.raises(ValueError):
        reverse_electrodes(torch.zeros(1, 12, 4), swap)


@pytest.mark.parametrize("shape", [(1, 11, 8), (1, 13, 8), (11, 8), (8, 12), (2, 3, 6, 8)])
def test_wrong_lead_count_raises(shape):
    """Anything without 12 leads on axis -2 raises ValueError (numpy and torch)."""
    with pytest.raises(ValueError):
        reverse_electrodes(np.zeros(shape), "LA-RA")
    with pytest.raises(ValueError):
        reverse_electrodes(torch.zeros(shape), "LA-RA")


def test_one_dimensional_input_raises_value_error():
    """A 1-D input (no time axis) should raise ValueError like any wrong lead layout."""
    with pytest.raises(ValueError):
        reverse_electrodes(np.zeros(12), "LA-RA")


def test_limb_leads_from_i_ii_matches_electrodes():
    """III, aVR, aVL, aVF derived from I and II equal the electrode-derived leads."""
    e = _electrodes((4, 3, 50), seed=9)
    leads = _leads(e)
    derived = limb_leads_from_i_ii(leads[..., 0, :], leads[..., 1, :])
    assert derived.shape == (4, 3, 4, 50)
    assert_allclose(derived, leads[..., 2:6, :], rtol=0, atol=ATOL)
    full = np.concatenate([leads[..., :2, :], derived, leads[..., 6:, :]], axis=-2)
    _einthoven_ok(full)


def test_limb_leads_from_i_ii_float32():
    """limb_leads_from_i_ii keeps float32 and matches the float64 reference."""
    e = _electrodes((2, 40), seed=10)
    leads = _leads(e)
    derived = limb_leads_from_i_ii(leads[:, 0].astype(np.float32), leads[:, 1].astype(np.float32))
    assert derived.dtype == np.float32
    assert_allclose(derived, leads[:, 2:6], rtol=1e-5, atol=1e-5)
