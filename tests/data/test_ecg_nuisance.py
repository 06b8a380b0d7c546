"""The realistic synthetic ECG task: lead algebra kept, reversals exact, each nuisance real.

Nuisances are added to the electrode potentials, so every non-reversed trial keeps
Einthoven's and Goldberger's relations, and a reversed trial is exactly
``reverse_electrodes`` of its clean version. Each nuisance is checked for the physical
effect it stands for (a frequency band, a gain, a rotation of the heart vector).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.signal import welch

from bnn_edge.data.ecg import ECGDataModule, make_inversion_task, reverse_electrodes
from bnn_edge.data.ecg.datamodule import DEFAULT_SWAPS, PREVALENCE
from bnn_edge.data.ecg.leads import reverse_fraction
from bnn_edge.data.ecg.nuisance import (
    DOWER,
    INDEPENDENT,
    KORS,
    Nuisance,
    electrodes_from_leads,
    leads_from_electrodes,
    rotate_heart_axis,
    rotation,
    synthesize_trials,
)
from bnn_edge.data.ecg.sources.synthetic import generate_deepfake_ecgs
from bnn_edge.errors import ConfigError
from tests.conftest import run_cli, stderr_lines

FS = 250
CLEAN = Nuisance.clean()


@pytest.fixture(scope="module")
def ecgs() -> np.ndarray:
    """Twelve 10 s GAN ECGs at 500 Hz."""
    return generate_deepfake_ecgs(12, seed=3, progress=False)


def lead_algebra_error(x: np.ndarray) -> float:
    """The largest violation of Einthoven's and Goldberger's relations (mV)."""
    i, ii, iii, avr, avl, avf = (x[:, k].astype(np.float64) for k in range(6))
    return float(max(np.abs(ii - i - iii).max(), np.abs(avr + avl + avf).max(),
                     np.abs(avr + (i + ii) / 2).max(), np.abs(avl - (i - ii / 2)).max(),
                     np.abs(avf - (ii - i / 2)).max()))


def test_every_non_reversed_trial_keeps_the_lead_algebra(ecgs):
    x = synthesize_trials(ecgs, 500, np.random.default_rng(0), Nuisance())
    assert x.shape == (12, 12, 750) and x.dtype == np.float32
    assert lead_algebra_error(x) < 1e-5  # float32 rounding of mV-sized values


def test_reversed_trials_are_reverse_electrodes_of_their_clean_version(ecgs):
    nz = Nuisance()
    swaps = list(DEFAULT_SWAPS)
    weights = [PREVALENCE[s] for s in swaps]
    task = make_inversion_task(ecgs, 500, np.random.default_rng(5), swaps, 0.75, nz, weights)
    rng = np.random.default_rng(5)  # the same draws, step by step
    clean = synthesize_trials(ecgs, 500, rng, nz)
    y, swap_of = reverse_fraction(clean.copy(), rng, swaps, 0.75, weights)
    np.testing.assert_array_equal(task.y, y)
    np.testing.assert_array_equal(task.info["swap_index"], swap_of)
    assert y.sum() == 9 and (swap_of >= 0).sum() == 9
    for i in range(len(y)):
        expected = clean[i] if swap_of[i] < 0 else reverse_electrodes(clean[i], swaps[swap_of[i]])
        np.testing.assert_array_equal(task.x[i], expected)
    assert lead_algebra_error(task.x[y == 0]) < 1e-5
    assert lead_algebra_error(task.x) < 1e-5  # a reversal still obeys Einthoven


def test_electrodes_and_leads_are_inverse():
    x8 = np.random.default_rng(1).normal(size=(8, 40))
    twelve = leads_from_electrodes(electrodes_from_leads(x8))
    np.testing.assert_allclose(twelve[list(INDEPENDENT)], x8, atol=1e-12)
    e = np.random.default_rng(2).normal(size=(9, 40))
    common = leads_from_electrodes(e + 5.0)  # a common-mode potential cancels in every lead
    np.testing.assert_allclose(common, leads_from_electrodes(e), atol=1e-12)


def test_axis_rotation_turns_the_frontal_heart_vector():
    r = rotation(np.array([0.0, 0.0, np.deg2rad(30)]))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    v = np.zeros((3, 1))
    v[0] = 1.0  # a heart vector pointing left (X), frontal plane
    x8 = DOWER @ v
    rotated = rotate_heart_axis(x8, np.array([0.0, 0.0, np.deg2rad(30)]))
    before, after = KORS @ x8, KORS @ rotated
    turn = np.degrees(np.arctan2(after[1], after[0]) - np.arctan2(before[1], before[0]))
    # Kors and Dower are separate fits (K D is not exactly 1): the turn is 30 +- 1.5 deg
    assert turn[0] == pytest.approx(30.0, abs=1.5)
    np.testing.assert_array_equal(rotate_heart_axis(x8, np.zeros(3)), x8)


def band_power(x: np.ndarray, low: float, high: float) -> float:
    f, p = welch(x, fs=FS, nperseg=750, axis=-1)
    return float(p[..., (f >= low) & (f <= high)].sum())


@pytest.mark.parametrize(("field", "value", "band"), [
    ("powerline_mv", 0.05, (48, 52)),
    ("baseline_wander_mv", 0.2, (0.0, 0.5)),
    ("emg_noise_mv", 0.05, (30, 90)),
])
def test_each_noise_adds_energy_in_its_own_band(field, value, band, ecgs):
    clean = synthesize_trials(ecgs, 500, np.random.default_rng(4), CLEAN)
    noisy = synthesize_trials(ecgs, 500, np.random.default_rng(4),
                              Nuisance(**{**CLEAN.as_dict(), field: value}))
    assert band_power(noisy, *band) > 3 * band_power(clean, *band)
    other = (2, 8) if band[0] > 10 else (60, 100)
    assert band_power(noisy, *other) == pytest.approx(band_power(clean, *other), rel=0.05)


def test_the_recorders_high_pass_removes_the_wander(ecgs):
    wander = {**CLEAN.as_dict(), "baseline_wander_mv": 0.2}
    raw = synthesize_trials(ecgs, 500, np.random.default_rng(4), Nuisance(**wander))
    filtered = synthesize_trials(ecgs, 500, np.random.default_rng(4),
                                 Nuisance(**{**wander, "highpass_hz": 0.5}))
    assert band_power(filtered, 0.0, 0.35) < 0.2 * band_power(raw, 0.0, 0.35)
    assert band_power(filtered, 5, 40) == pytest.approx(band_power(raw, 5, 40), rel=0.05)
    assert lead_algebra_error(filtered) < 1e-5


def test_gain_spread_scales_whole_trials(ecgs):
    clean = synthesize_trials(ecgs, 500, np.random.default_rng(6), CLEAN)
    scaled = synthesize_trials(ecgs, 500, np.random.default_rng(6),
                               Nuisance(**{**CLEAN.as_dict(), "gain_spread": 0.3}))
    ratio = scaled.std(axis=(1, 2)) / clean.std(axis=(1, 2))
    per_lead = scaled.std(axis=2) / clean.std(axis=2)
    np.testing.assert_allclose(per_lead, ratio[:, None] * np.ones((1, 12)), rtol=1e-4)
    assert ratio.std() > 0.1  # the gains differ from trial to trial


def test_heart_rate_spread_changes_the_beat_spacing(ecgs):
    def beats_per_window(x):
        lead_ii = x[:, 1] - x[:, 1].mean(axis=-1, keepdims=True)
        f, p = welch(lead_ii, fs=FS, nperseg=750, axis=-1)
        band = (f > 0.6) & (f < 3.5)
        return f[band][p[:, band].argmax(axis=-1)]

    clean = beats_per_window(synthesize_trials(ecgs, 500, np.random.default_rng(8), CLEAN))
    fast = beats_per_window(synthesize_trials(
        ecgs, 500, np.random.default_rng(8), Nuisance(**{**CLEAN.as_dict(),
                                                          "heart_rate_spread": 0.3})))
    assert np.abs(fast - clean).mean() > 0.1  # Hz of heart rate


@pytest.mark.parametrize(("options", "message"), [
    ({"axis_spread_deg": -1}, r"^data\.axis_spread_deg=-1 is not allowed: expected a number "
                              r"in \[0, 180\] \(degrees; a wider spread is a random direction\)$"),
    ({"emg_noise_mv": float("nan")}, r"^data\.emg_noise_mv=nan is not allowed"),
    ({"powerline_hz": 125}, r"^data\.powerline_hz=125 is not allowed: expected a number in "
                            r"\(0, 125\)$"),
    ({"highpass_hz": -0.5}, r"^data\.highpass_hz=-0\.5 is not allowed: expected a number in "
                            r"\[0, 125\)$"),
    ({"gain_spread": "big"}, r"^data\.gain_spread='big' is not allowed"),
    ({"swap_weights": [1, 2]}, r"^data\.swap_weights=\[1, 2\] is not allowed: expected "
                               r"prevalence, uniform, or a list of 5 numbers"),
    ({"swap_weights": [0] * 8}, r"^data\.swap_weights=\[0, 0, 0, 0, 0, 0, 0, 0\] is not "
                                r"allowed"),
    ({"swaps": ["V1-V4"]}, r"^data\.swap_weights='prevalence' is not allowed: expected "
                           r"uniform or a list of weights: no prevalence is known for V1-V4"),
])
def test_bad_options_are_one_line(options, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        ECGDataModule(cache_dir=str(tmp_path), **options)


def test_the_default_task_records_its_mix_and_nuisances(tmp_path):
    dm = ECGDataModule(n_trials=80, folds=2, seed=1, cache_dir=str(tmp_path), progress=False)
    dm.setup()
    info = dm.summary()
    assert info["swaps"] == list(DEFAULT_SWAPS)
    assert sum(info["swap_counts"].values()) == 40
    assert info["nuisance"] == Nuisance().as_dict()
    assert "axis spread 10 deg" in dm.describe_source()
    categories = dm.categories("test")
    assert len(categories) == len(dm.split.test) and categories.count("correct") == 8
    uniform = ECGDataModule(n_trials=80, folds=2, seed=1, cache_dir=str(tmp_path),
                            progress=False, swap_weights="uniform")
    assert uniform.cache_path() != dm.cache_path()


#: every nuisance level, the largest value allowed and whether that value itself is allowed
LIMITS = {"axis_spread_deg": (180, True), "heart_rate_spread": (1, True),
          "gain_spread": (1, True), "baseline_wander_mv": (10, True),
          "emg_noise_mv": (10, True), "powerline_mv": (10, True),
          "powerline_hz": (125, False), "highpass_hz": (125, False)}


@pytest.mark.parametrize("field", sorted(LIMITS))
def test_every_nuisance_level_is_bounded_where_trials_stay_finite(field, ecgs, tmp_path):
    """Up to its limit a level gives finite trials of ECG size; beyond it (1.01 x the limit,
    100, 1e300: gains and noise once overflowed float32, rate factors numpy's array sizes)
    the option is refused by name before anything is generated."""
    high, closed = LIMITS[field]
    top = high if closed else high - 0.1
    x = synthesize_trials(ecgs, 500, np.random.default_rng(9), Nuisance(**{field: top}))
    assert np.isfinite(x).all() and np.abs(x).max() < 1000  # mV
    for value in (1.01 * high, 100.0, 1e300):
        if value <= high:
            continue
        message = rf"^data\.{field}={re.escape(repr(value))} is not allowed: expected a number"
        with pytest.raises(ConfigError, match=rf"{message} in [\[(]0, {high}[\])]"):
            ECGDataModule(cache_dir=str(tmp_path / "c"), **{field: value})
    assert not (tmp_path / "c").exists()


def test_cli_refuses_an_unphysical_gain_spread_in_one_line(tmp_path):
    """gain_spread=100 once overflowed float32: a RuntimeWarning, then an error naming a cache
    file never written, after the run folder was made."""
    cache = tmp_path / "cache"
    proc = run_cli("bnn_edge.train", "model=ecg", "data.gain_spread=100",
                   f"hydra.run.dir={tmp_path / 'run'}", env={"BNN_EDGE_CACHE": str(cache)})
    assert proc.returncode == 2
    assert stderr_lines(proc) == [
        "error: data.gain_spread=100 is not allowed: expected a number in [0, 1] (the sd of "
        "log(gain); 1 already gives gains 0.14-7.1 to 95% of the trials)"]
    assert not (tmp_path / "run").exists() and not cache.exists()
