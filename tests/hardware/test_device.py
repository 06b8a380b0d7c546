"""The RRAM device model: closed-form error rates, the 1T1R/2T2R gap, wear, Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from bnn_edge.hardware.device import CELLS, HFO2, DeviceModel, check_cell


def binomial_ok(errors: int, n: int, p: float, z: float = 5.0) -> bool:
    """``errors`` is within ``z`` standard deviations (plus one count) of Binomial(n, p)."""
    return abs(errors - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


def test_closed_forms_are_the_handbook_formulas():
    model = DeviceModel(window=1.0, sigma=0.2, sigma_growth=0.0)
    assert model.ber("1T1R") == pytest.approx(norm.cdf(-1.0 / (2 * 0.2)), rel=1e-12)
    assert model.ber("2T2R") == pytest.approx(norm.cdf(-1.0 / (math.sqrt(2) * 0.2)), rel=1e-12)


def test_preset_maps_1t1r_1e3_to_2t2r_6e6():
    assert HFO2.ber("1T1R", cycles=1e6) == pytest.approx(1e-3, rel=0.01)
    assert HFO2.ber("2T2R", cycles=1e6) == pytest.approx(6.2e-6, rel=0.02)
    matched = DeviceModel.from_1t1r_ber(1e-3)
    assert matched.ber("1T1R") == pytest.approx(1e-3, rel=1e-9)
    assert matched.ber("2T2R") == pytest.approx(6.2e-6, rel=0.01)


@pytest.mark.parametrize("cycles", [1, 1e3, 1e6, 1e8, 7e8])
def test_2t2r_is_about_two_orders_of_magnitude_below_1t1r(cycles):
    ratio = HFO2.ber("1T1R", cycles) / HFO2.ber("2T2R", cycles)
    assert 50 <= ratio <= 2000


def test_wear_grows_the_spread_with_log_cycles():
    assert HFO2.spread(1) == HFO2.sigma
    assert HFO2.spread(1e6) == pytest.approx(HFO2.sigma * (1 + 6 * HFO2.sigma_growth))
    for cell in CELLS:
        rates = [HFO2.ber(cell, c) for c in (1, 1e2, 1e4, 1e6, 1e8, 7e8)]
        assert rates == sorted(rates) and rates[0] < rates[-1]
    assert DeviceModel(sigma_growth=0.0).ber("1T1R", 1e9) == DeviceModel().ber("1T1R", 1)


@pytest.mark.parametrize(("cell", "model", "cycles", "n"), [
    ("1T1R", HFO2, 1e6, 400_000),                              # 1e-3
    ("2T2R", HFO2, 1e6, 400_000),                              # 6e-6
    ("1T1R", DeviceModel(window=1.0, sigma=0.25), 1, 100_000),  # 2.3e-2
    ("2T2R", DeviceModel(window=1.0, sigma=0.25), 1e4, 100_000),
])
def test_monte_carlo_agrees_with_the_closed_form(cell, model, cycles, n):
    sample = model.sample(cell, n, cycles, np.random.default_rng(1))
    assert sample.stored.shape == sample.read.shape == (n,)
    assert set(np.unique(sample.stored)) == {-1, 1}
    assert binomial_ok(sample.errors, n, model.ber(cell, cycles))


def test_monte_carlo_resistances():
    n = 200_000
    one = HFO2.sample("1T1R", n, 1, np.random.default_rng(2))
    assert one.resistance_ohm.shape == (n,)
    log_r = np.log10(one.resistance_ohm)
    lrs, hrs = log_r[one.stored > 0], log_r[one.stored < 0]
    assert np.median(lrs) == pytest.approx(HFO2.lrs_log10, abs=0.01)          # about 5 kOhm
    assert np.median(hrs) == pytest.approx(HFO2.lrs_log10 + HFO2.window, abs=0.01)
    assert np.std(lrs) == pytest.approx(HFO2.sigma, rel=0.02)
    two = HFO2.sample("2T2R", n, 1, np.random.default_rng(3))
    assert two.resistance_ohm.shape == (n, 2)
    plus = two.stored > 0  # +1 = first device LRS, second HRS
    assert np.mean(two.resistance_ohm[plus, 0] < two.resistance_ohm[plus, 1]) > 0.999


def test_sampling_is_reproducible():
    a = HFO2.sample("2T2R", 1000, 1e6, np.random.default_rng(7))
    b = HFO2.sample("2T2R", 1000, 1e6, np.random.default_rng(7))
    assert np.array_equal(a.read, b.read) and np.array_equal(a.resistance_ohm, b.resistance_ohm)


def test_bad_parameters():
    assert check_cell("2t2r") == "2T2R"
    with pytest.raises(ValueError, match="cell='3T3R'"):
        HFO2.ber("3T3R")
    with pytest.raises(ValueError, match="cycles=0.5"):
        HFO2.ber("1T1R", cycles=0.5)
    with pytest.raises(ValueError, match="window"):
        DeviceModel(window=0)
    with pytest.raises(ValueError, match="sigma_growth"):
        DeviceModel(sigma_growth=-0.1)
    with pytest.raises(ValueError, match="ber"):
        DeviceModel.from_1t1r_ber(0.7)
