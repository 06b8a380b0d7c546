"""Fault models: the array layout, failed columns and rows, spares, the stuck-device read
rules, asymmetric and retention rates, Hamming SEC, persistence within a draw, restoration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import binom
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bnn_edge.errors import ConfigError
from bnn_edge.hardware.device import HFO2
from bnn_edge.hardware.faults import WeightFaults, ber_sweep, bit_error_settings, fault_rng
from bnn_edge.hardware.faults.models import (
    ArrayFaults,
    Asymmetric,
    HammingSec,
    Retention,
    StoredBits,
    Stuck,
    flip_positions,
    sec_ber,
    sec_decode,
)
from bnn_edge.hardware.mapping import ArrayLayout, array_mapping
from bnn_edge.nn import BinaryLinear, SignActivation, binary_layers
from bnn_edge.tasks import build_network
from tests.helpers.bits import assert_bit_identical, snapshot


def stored(outputs: int, fan_in: int, values: np.ndarray | None = None, seed: int = 0,
           bits: int = 1) -> StoredBits:
    """A stored binary tensor with the given (or random) +-1 values as 0/1 words."""
    if values is None:
        values = np.random.default_rng(seed).integers(0, 2, outputs * fan_in)
    words = np.asarray(values, np.uint8)
    return StoredBits(outputs, fan_in, bits, lambda: words)


def within(k: int, n: int, p: float, z: float = 5.0) -> bool:
    """``k`` lies within ``z`` standard deviations (plus one) of Binomial(n, p)'s mean."""
    return abs(k - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


# ------------------------------------------------------------------ the layout


@pytest.mark.parametrize("binarize", ["classifier", "full"])
def test_the_layout_puts_every_stored_bit_in_one_cell_of_the_counted_arrays(binarize):
    net = build_network("ecg", binarize=binarize, aug=1)
    mapping = {m.name: m for m in array_mapping(net)}
    for name, layer in binary_layers(net):
        w = layer.weight
        layout = ArrayLayout(w.shape[0], w[0].numel())
        assert layout.arrays == mapping[name].arrays  # the counts of docs/memory.md
        pos = np.arange(w.numel())
        array, row, col = layout.locate(pos)
        assert array.max() < layout.arrays and row.max() < 32 and col.max() < 32
        cells = (array * 32 + row) * 32 + col
        assert len(np.unique(cells)) == w.numel()  # one weight per cell
        back, used = layout.cells(array, row, col)
        assert np.array_equal(back, pos) and np.array_equal(used, pos)
        # weight (j, i) of the PyTorch matrix: input i on row i % 32, output j on column j % 32
        j, i = np.divmod(pos, w[0].numel())
        assert np.array_equal(row, i % 32) and np.array_equal(col, j % 32)


def test_multi_bit_weights_take_adjacent_columns():
    layout = ArrayLayout(outputs=5, fan_in=40, bits=8, size=32)
    assert (layout.tiles_down, layout.tiles_across, layout.arrays) == (2, 2, 4)
    array, row, col = layout.locate([(3 * 40 + 35) * 8 + b for b in range(8)])
    # output 3, input 35: matrix columns 24..31, row 35 -> second tile row, array 2
    assert list(array) == [2] * 8 and list(row) == [3] * 8 and list(col) == list(range(24, 32))
    positions, _ = layout.column_cells([3], [0])  # array 3, column 0: matrix column 32
    assert sorted(positions) == sorted((4 * 40 + i) * 8 for i in range(32, 40))


# ------------------------------------------------------------------ array faults


def test_a_failed_column_hits_exactly_the_weights_the_layout_puts_in_it():
    """All weights +1: a failed column whose amplifier is stuck at -1 flips every weight in
    that column and nothing else; stuck at +1, none. So the flips are whole columns."""
    t = stored(75, 70, np.ones(75 * 70))  # 3 x 3 arrays, edge tiles partly used
    layout = t.layout(32)
    seen = 0
    for draw in range(20):
        flips = ArrayFaults(columns=1.5).flips(t, fault_rng(0, 1.5, draw))
        array, _, col = layout.locate(flips)
        pairs = sorted(set(zip(array.tolist(), col.tolist(), strict=True)))
        whole, _ = layout.column_cells([a for a, _ in pairs], [c for _, c in pairs])
        assert np.array_equal(np.sort(whole), flips)
        for a, _c in pairs:  # a column holds the tile's used rows: 32, or 6 at the edge
            assert np.count_nonzero(array == a) % (32 if a // 3 < 2 else 6) == 0
        seen += len(pairs)
    # 9 arrays x 32 columns fail at 1.5 / 32, half of their amplifiers stuck at -1; only
    # the 75 - 64 = 11 columns of the right tiles hold weights there
    used_columns = 3 * (32 + 32 + 11)
    assert within(seen, 20 * used_columns, 1.5 / 32 / 2)


def test_spare_columns_replace_failed_ones_in_the_expected_number():
    """Dead columns per array: max(0, failed main columns - working spares), exactly as the
    binomial laws of the 32 main and the spare columns give it."""
    t = stored(32 * 20, 32, np.ones(32 * 20 * 32))  # 20 arrays, every cell used
    p, expected = 2 / 32, {}
    for spares in (0, 2, 4):
        dead = 0
        for draw in range(100):
            flips = ArrayFaults(columns=2, spares=spares).flips(t, fault_rng(1, spares, draw))
            dead += len(flips) // 32 * 2  # half the dead columns flip (amplifier at -1)
        expected[spares] = sum(binom.pmf(a, 32, p) * binom.pmf(b, spares, p)
                               * max(0, a - (spares - b))
                               for a in range(33) for b in range(spares + 1))
        mean = dead / (100 * 20)  # per array; standard error about 0.045 at 0 spares
        assert abs(mean - expected[spares]) < 0.2 * expected[spares] + 0.03, (spares, mean)
    assert expected[0] == pytest.approx(2) and expected[4] < expected[0] / 15


def test_a_failed_row_reads_a_coin_in_each_of_its_cells():
    t = stored(64, 64, np.ones(64 * 64))
    layout = t.layout(32)
    flipped = rows_hit = 0
    for draw in range(30):
        flips = ArrayFaults(rows=2).flips(t, fault_rng(2, 2.0, draw))
        array, row, _ = layout.locate(flips)
        lines = set(zip(array.tolist(), row.tolist(), strict=True))
        rows_hit += len(lines)
        flipped += len(flips)
        assert all(np.count_nonzero((array == a) & (row == r)) <= 32 for a, r in lines)
    assert within(flipped, 32 * rows_hit, 0.5, z=6)


# ------------------------------------------------------------------ stuck devices


def pcsa_reads(values: np.ndarray, stuck: dict[int, bool], ties: dict[int, bool]) -> np.ndarray:
    """The 2T2R read rule, cell by cell: device 2k is LRS for +1, device 2k+1 for -1; a stuck
    device keeps its state (True: LRS); the PCSA answers which device has the lower
    resistance, a tie (both in one state) reads ``ties[k]``."""
    read = values.astype(bool).copy()
    for k in {d // 2 for d in stuck}:
        first = stuck.get(2 * k, bool(values[k]))
        second = stuck.get(2 * k + 1, not values[k])
        read[k] = first if first != second else ties[k]
    return read


@pytest.mark.parametrize("seed", range(4))
def test_stuck_devices_follow_the_2t2r_read_rule_cell_by_cell(seed):
    t = stored(40, 50, seed=seed)
    values = t.words.astype(bool)
    model = Stuck(fraction=0.05, lrs_share=0.3, tie_plus=0.6)
    flips = model.flips(t, fault_rng(seed, 0.05, 0))
    rng = fault_rng(seed, 0.05, 0)  # the same draw, replayed: devices, states, offsets
    devices = flip_positions(2 * t.n, 0.05, rng)
    states = rng.random(len(devices)) < 0.3
    cells = np.unique(devices // 2)
    ties = dict(zip(cells.tolist(), (rng.random(len(cells)) < 0.6).tolist(), strict=True))
    read = pcsa_reads(values, dict(zip(devices.tolist(), states.tolist(), strict=True)), ties)
    assert np.array_equal(flips, np.flatnonzero(read != values))
    both = np.unique(devices // 2, return_counts=True)[1]
    assert (both == 2).any()  # some pairs have both devices stuck


@pytest.mark.parametrize(("cell", "tie_plus", "wrong_plus", "wrong_minus"), [
    ("2T2R", 1.0, 0.0, 1.0),   # LRS-stuck: a -1 whose HRS device sticks ties, reads +1
    ("2T2R", 0.0, 1.0, 0.0),   # ties read -1: now the +1 weights go wrong
    ("2T2R", 0.5, 0.5, 0.5),
    ("1T1R", 0.5, 0.0, 1.0),   # one device: LRS reads +1 whatever was stored
])
def test_stuck_errors_depend_on_the_stored_value(cell, tie_plus, wrong_plus, wrong_minus):
    """All stuck devices in LRS, fraction f: a weight's error rate is f times the given
    factor for its stored value (each weight has exactly one device that can fail it)."""
    values = np.tile([1, 0], 100_000)
    t = stored(2, 100_000, values)
    f = 0.01
    flips = Stuck(fraction=f, cell=cell, lrs_share=1.0, tie_plus=tie_plus).flips(
        t, fault_rng(3, f, 0))
    plus = np.count_nonzero(values[flips] == 1)
    minus = len(flips) - plus
    for wrong, factor in ((plus, wrong_plus), (minus, wrong_minus)):
        assert within(wrong, 100_000, f * factor)


def test_with_every_device_stuck_a_2t2r_pair_reads_its_amplifier_offset():
    t = stored(10, 100)
    values = t.words.astype(bool)
    for share in (0.0, 1.0):  # both devices of every pair in one state: all ties
        for tie in (0.0, 1.0):
            flips = Stuck(fraction=1.0, lrs_share=share, tie_plus=tie).flips(
                t, np.random.default_rng(0))
            assert np.array_equal(flips, np.flatnonzero(values != bool(tie)))


# ------------------------------------------------------------------ asymmetric, retention, SEC


def test_asymmetric_rates_follow_the_stored_value():
    values = np.tile([1, 0], 200_000)
    t = stored(2, 200_000, values)
    model = Asymmetric(ber=0.01, ratio=4.0)
    plus_rate, minus_rate = model.rates
    assert (plus_rate, minus_rate) == pytest.approx((0.004, 0.016))
    flips = model.flips(t, fault_rng(4, 0.01, 0))
    plus = np.count_nonzero(values[flips] == 1)
    assert within(plus, 200_000, plus_rate) and within(len(flips) - plus, 200_000, minus_rate)
    with pytest.raises(ConfigError, match=r"bit_errors.ber=0.7 is not allowed"):
        Asymmetric(ber=0.7, ratio=4.0)  # -1 would read wrong with probability 1.12


def test_retention_raises_the_device_rate_with_time_and_temperature():
    fresh = Retention(hours=0)
    assert fresh.rate == pytest.approx(HFO2.ber("2T2R", 1e6))
    rates = [Retention(hours=h).rate for h in (0, 1, 24, 8760, 87600)]
    assert rates == sorted(rates) and rates[-1] > 10 * rates[0]
    # ten years at 85 C widen the spread by 1 + 0.05 log10(87601) = 1.247
    assert Retention(hours=87600).spread_factor == pytest.approx(1.2471, abs=1e-4)
    cool = Retention(hours=87600, temperature_c=25)  # Arrhenius: 1.1 eV, about 1300x slower
    assert 1 / cool.acceleration == pytest.approx(1302, rel=0.01)
    assert fresh.rate < cool.rate < rates[-1]
    assert Retention(hours=87600, cell="1T1R").rate > rates[-1]
    t = stored(100, 1000)
    flips = Retention(hours=87600).flips(t, fault_rng(5, 87600, 0))
    assert within(len(flips), t.n, rates[-1])


def test_hamming_decoding_corrects_single_errors_and_miscorrects_double_ones():
    n = 7
    for p in range(n):  # one error per codeword: corrected
        assert len(sec_decode(np.array([3 * n + p]), n)) == 0
    # two errors at positions 1 and 2 (1-based): the syndrome names 3, a third error
    assert list(sec_decode(np.array([0, 1]), n)) == [0, 1, 2]
    # the shortened (6, 3) code: errors at 3 and 4 give syndrome 7, beyond the code: kept
    assert list(sec_decode(np.array([2, 3]), 6)) == [2, 3]
    # Hamming (7, 4): 21 double errors, each leaves a weight-3 word with 12/7 data bits
    # wrong on average: data BER ~ 21 p^2 (12 / 7) / 4 = 9 p^2
    assert sec_ber(1e-4, 4) == pytest.approx(9e-8, rel=0.01)


@pytest.mark.parametrize("data_bits", [1, 3, 4, 11])
def test_sec_monte_carlo_matches_the_exact_data_error_rate(data_bits):
    t = stored(100, 3000)
    p = 0.02
    model = HammingSec(ber=p, data_bits=data_bits)
    wrong = sum(len(model.flips(t, fault_rng(6, p, d))) for d in range(5))
    assert within(wrong, 5 * t.n, sec_ber(p, data_bits))
    assert model.length == {1: 3, 3: 6, 4: 7, 11: 15}[data_bits]


def test_sec_at_equal_devices_is_close_to_2t2r():
    """The (6, 3) code spends 2 devices per bit like 2T2R; at the model's 1T1R rates its
    data error rate is within a factor 3 of 2T2R's (the table of docs/bit_errors.md)."""
    for cycles in (1, 1e6, 7e8):
        one, two = HFO2.ber("1T1R", cycles), HFO2.ber("2T2R", cycles)
        assert 1 / 3 < sec_ber(one, 3) / two < 3


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(("options", "message"), [
    ({"fault_model": "stuk"}, "fault_model='stuk' is not allowed: expected one of bitflip, "),
    ({"fault_model": {"name": "stuck", "fraction": 1.5}},
     "bit_errors.fault_model.fraction=1.5 is not allowed: expected a number in [0, 1]"),
    ({"fault_model": {"name": "stuck", "cell": "3T3R"}},
     "bit_errors.fault_model.cell='3T3R' is not allowed: expected 1T1R or 2T2R"),
    ({"fault_model": {"name": "array", "columns": [0, 40]}},
     "bit_errors.fault_model.columns=40 is not allowed: expected a number in [0, 32]"),
    ({"fault_model": {"name": "array", "spares": 1.5}},
     "bit_errors.fault_model.spares=1.5 is not allowed: expected an integer >= 0"),
    ({"fault_model": {"name": "array", "columns": [0, 1], "spares": [0, 1]}},
     "bit_errors.fault_model.spares=[0, 1] is not allowed: expected one value"),
    ({"fault_model": {"name": "retention", "drift": -1}},
     "bit_errors.fault_model.drift=-1 is not allowed"),
    ({"fault_model": {"name": "sec", "data_bits": 0}},
     "bit_errors.fault_model.data_bits=0 is not allowed"),
    ({"fault_model": {"name": "bitflip", "rate": 0.1}},
     "bit_errors.fault_model.rate=0.1 is not allowed: expected a parameter of "
     "fault_model=bitflip"),
    ({"fault_model": {"name": "asymmetric", "ratio": [1, 3]}},
     "bit_errors.ber=(0.0, 0.0001, 0.001, 0.01, 0.1) is not allowed: expected one rate"),
    # a text parameter is not a sweep (it crashed in rate_label with a traceback)
    ({"fault_model": {"name": "stuck", "cell": ["1T1R", "2T2R"], "fraction": 0.01}},
     "bit_errors.fault_model.cell=['1T1R', '2T2R'] is not allowed: expected one value (a "
     "sweep varies a number: fraction, lrs_share, tie_plus;"),
    ({"fault_model": {"name": "retention", "cell": ["1T1R"]}},
     "bit_errors.fault_model.cell=['1T1R'] is not allowed: expected one value"),
    # the name alone built the model from its dataclass defaults: a sweep without faults
    ({"fault_model": "stuck"}, "bit_errors.fault_model='stuck' is not allowed: expected the "
     "fault_model config group: fault_model=stuck"),
    ({"fault_model": "array", "train_ber": 1}, "bit_errors.fault_model='array' is not "),
    # an error rate given to a model that sweeps another parameter was ignored
    ({"fault_model": {"name": "stuck"}, "ber": [0, 0.5]},
     "bit_errors.ber=[0, 0.5] is not allowed: expected its default with fault_model=stuck, "
     "which sweeps bit_errors.fault_model.fraction"),
    ({"fault_model": {"name": "stuck"}, "cell": "2T2R"}, "bit_errors.cell='2T2R' is not "),
    ({"fault_model": {"name": "stuck"}, "train_ber": 2}, "bit_errors.train_ber=2 is not "),
    ({"fault_model": {"name": "stuck", "fraction": [0.1, 0.1]}},
     "bit_errors.fault_model.fraction=[0.1, 0.1] is not allowed: expected distinct values"),
])
def test_bad_fault_model_options_name_the_option(options, message):
    with pytest.raises(ConfigError) as info:
        bit_error_settings(**options)
    assert str(info.value).startswith(message)


def test_any_parameter_given_as_a_list_is_swept():
    s = bit_error_settings(fault_model={"name": "array", "columns": 1, "spares": [0, 2]})
    assert (s.parameter, s.rates) == ("spares", (0, 2))
    assert s.fault_model.at(2, "spares") == ArrayFaults(columns=1, spares=2)
    s = bit_error_settings(ber=1e-3, fault_model={"name": "asymmetric", "ratio": [1, 10]})
    assert (s.parameter, s.rates, s.fault_model.ber) == ("ratio", (1, 10), 1e-3)
    s = bit_error_settings(cell="1T1R", cycles=[1e6], fault_model={"name": "sec"})
    assert s.parameter == "ber" and s.rates == (pytest.approx(1e-3, rel=1e-3),)


# ------------------------------------------------------------------ in a network


MODELS = [Stuck(), ArrayFaults(rows=1), Asymmetric(), Retention(cell="1T1R"), HammingSec()]
LEVELS = {"stuck": 0.05, "array": 2.0, "asymmetric": 0.05, "retention": 87600, "sec": 0.05}


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(BinaryLinear(40, 70, bias=False), nn.BatchNorm1d(70),
                         SignActivation(), BinaryLinear(70, 3, bias=False)).eval()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_a_persistent_fault_is_the_same_in_every_batch_of_a_draw(model):
    net = small_net()
    seen: list[torch.Tensor] = []
    net[0].register_forward_pre_hook(lambda m, _: seen.append(m.weight.detach().clone()))
    x = torch.randn(60, 40)
    loader = DataLoader(TensorDataset(x, torch.zeros(60, dtype=torch.long)), batch_size=20)
    level = LEVELS[model.name]
    ber_sweep(net, loader, [level], draws=3, fault_model=model)
    assert len(seen) == 9  # 3 draws x 3 batches
    draws = [seen[i:i + 3] for i in range(0, 9, 3)]
    for batches in draws:
        assert all(torch.equal(b, batches[0]) for b in batches)
    assert not torch.equal(draws[0][0], draws[1][0])


@pytest.mark.parametrize("fmt", ["none", "fp32", "int8"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_weights_come_back_bit_for_bit_after_every_model(model, fmt):
    net = build_network("ecg", binarize="classifier", aug=1).eval()
    before = snapshot(net)
    level = LEVELS[model.name]
    with pytest.raises(RuntimeError, match="mid-evaluation"), \
            WeightFaults(net, fmt, model) as faults:
        count = faults.inject(level, fault_rng(0, level, 0))
        assert count.flipped > 0
        net(torch.randn(2, 12, 750))
        raise RuntimeError("mid-evaluation")
    assert_bit_identical(net, before)


def test_the_python_defaults_are_the_configs():
    """bit_error_settings' defaults (the API) and conf/bit_errors/default.yaml (the command
    line) say the same; DEFAULT_BER is what the non-rate models require bit_errors.ber to be."""
    import inspect

    from omegaconf import OmegaConf

    from bnn_edge.hardware.faults.settings import DEFAULT_BER
    from tests.conftest import ROOT

    conf = OmegaConf.load(ROOT / "bnn_edge/conf/bit_errors/default.yaml").bit_errors
    params = inspect.signature(bit_error_settings).parameters
    assert tuple(conf["ber"]) == DEFAULT_BER == params["ber"].default
    for name in ("cell", "draws", "real_format", "seed", "every_n_epochs", "train_ber"):
        assert conf[name] == params[name].default, name
    assert list(conf["cycles"]) == list(params["cycles"].default)
