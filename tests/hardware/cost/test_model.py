"""The counting: hand-checked layers, the memory mapping's arrays, linear energies, binary
inputs found from the structure, any aug counted exactly on the meta device, overflows."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from bnn_edge.errors import BnnEdgeError
from bnn_edge.hardware.cost.model import (
    binary_layer_cost,
    check_results,
    cost_report,
    layer_shapes,
    network_cost,
    real_layer_cost,
    totals,
)
from bnn_edge.hardware.cost.params import HardwareParams
from bnn_edge.hardware.memory import array_mapping, memory_report
from bnn_edge.nn import BinaryConv1d, BinaryLayer, BinaryLinear, SignActivation
from bnn_edge.tasks import build_network
from tests.helpers.cost import ecg_report, preset

ENERGY_KEYS = ("add8_energy_j", "mult8_energy_j", "add32_energy_j", "fadd32_energy_j",
               "fmult32_energy_j", "sram_buffer_energy_per_64bit_j",
               "sram_weight_energy_per_64bit_j", "dram_energy_per_64bit_j")


@pytest.fixture
def hw() -> HardwareParams:
    return HardwareParams.from_mapping(preset())


def test_binary_dense_64_to_32_on_32x32_arrays(hw):
    """64 inputs x 32 outputs on 32 x 32 arrays, counted by hand:

    - arrays: ceil(64/32) * ceil(32/32) = 2 (inputs 0-31 in one, 32-63 in the other);
    - row reads: each of the 64 input rows is read once, in the one column tile: 64;
    - PCSA operations: every row read senses the 32 columns: 64 * 32 = 2048, each an XNOR,
      and 2048 bits enter the popcount;
    - the second array's 32 partial counts (0..32: 6 bits each) move to the first: 192 bits;
      with the 64 input bits delivered, 256 bits moved;
    - each output's count (0..64: 7 bits) is compared with its threshold: 32 * 7 = 224 bits;
    - latency: both arrays read their 32 rows in parallel: 32 read times.
    """
    c = binary_layer_cost(64, 32, 1, hw)
    assert (c.arrays, c.row_reads, c.pcsa_ops, c.xnor_ops, c.popcount_bits) == \
        (2, 64, 2048, 2048, 2048)
    assert (c.partial_sum_bits, c.input_bits_moved, c.bits_moved, c.threshold_bits) == \
        (192, 64, 256, 224)
    assert c.macs == c.real_adds == c.weight_bits == 0
    assert c.latency_s == pytest.approx(32 * 1e-8)
    assert c.energy_pcsa_j == pytest.approx(2048 * hw.pcsa_energy)
    assert c.energy_popcount_j == pytest.approx((2048 + 192 + 224) * hw.add8_energy_j / 8)
    assert c.energy_moves_j == pytest.approx(256 * hw.sram_buffer_energy_per_64bit_j / 64)
    # 2 arrays of 1024 cells of 96 F^2 at 130 nm, and as much periphery
    assert c.area_arrays_m2 == pytest.approx(2 * 1024 * 96 * 130e-9 ** 2 * 2)


def test_tiling_and_convolution_counts(hw):
    """33 x 33 needs 2 x 2 arrays; a binary conv is one evaluation per output position."""
    c = binary_layer_cost(33, 33, 1, hw)
    assert (c.arrays, c.row_reads, c.pcsa_ops) == (4, 66, 1089)
    assert c.partial_sum_bits == 33 * 1 * 6 and c.threshold_bits == 33 * 6
    assert c.latency_s == pytest.approx(32 * 1e-8)

    net = nn.Sequential(SignActivation(), BinaryConv1d(4, 8, 3),  # fan-in 12, 8 outputs,
                        SignActivation(), nn.Flatten(), BinaryLinear(64, 32))  # length 8
    shapes = layer_shapes(net, (4, 10))
    conv, fc = network_cost(shapes, hw)
    assert (conv.kind, conv.rows, conv.cols, conv.positions) == ("binary", 12, 8, 8)
    assert (conv.arrays, conv.row_reads, conv.pcsa_ops) == (1, 8 * 12, 8 * 12 * 8)
    assert conv.latency_s == pytest.approx(8 * 12 * 1e-8)
    assert (fc.row_reads, fc.pcsa_ops, fc.partial_sum_bits) == (64, 2048, 192)


def test_binary_layer_with_real_input_adds_instead_of_xnor(hw):
    net = build_network("ecg", "full", 1)
    first = network_cost(layer_shapes(net, (12, 750)), hw)[0]
    assert first.kind == "binary_real_input"
    assert (first.rows, first.cols, first.positions) == (12 * 13, 32, 738)
    assert first.real_adds == first.pcsa_ops == 156 * 32 * 738
    assert first.xnor_ops == first.popcount_bits == 0
    assert first.energy_real_j == pytest.approx(first.real_adds * hw.fadd32_energy_j)


def test_real_layer_counts(hw):
    c = real_layer_cost(100, 10, 1, 1010, 100, 10, hw, "fp32", "dram")
    assert (c.macs, c.weight_bits, c.activation_bits) == (1000, 1010 * 32, 110 * 32)
    assert c.energy_real_j == pytest.approx(1000 * (3.7e-12 + 0.9e-12))
    assert c.energy_weights_j == pytest.approx(1010 * 32 * 1.3e-9 / 64)
    assert c.area_sram_m2 == 0 and c.latency_s == pytest.approx(1000 / 1e9)
    c8 = real_layer_cost(100, 10, 1, 1010, 100, 10, hw, "int8", "sram")
    assert c8.energy_real_j == pytest.approx(1000 * (0.2e-12 + 0.1e-12))
    assert c8.area_sram_m2 == pytest.approx(1010 * 8 * 280 * 45e-9 ** 2)


def test_array_counts_match_the_memory_mapping(hw):
    for model, binarize in (("ecg", "full"), ("eeg", "classifier"), ("ecg", "classifier")):
        net = build_network(model, binarize, 1)
        shape = tuple(net.spec.input_shape)
        costs = {c.name: c.arrays for c in network_cost(layer_shapes(net, shape), hw)
                 if c.kind != "real"}
        assert costs == {m.name: m.arrays for m in array_mapping(net, 32)}
    ecg = totals(network_cost(layer_shapes(build_network("ecg", "classifier", 1), (12, 750)),
                              hw))
    assert ecg["arrays"] == memory_report("ecg", "classifier", 1)["arrays"]["total_arrays"]


@pytest.mark.parametrize("k", [2.0, 0.25])
def test_energies_scale_linearly_with_their_parameters(hw, k):
    shapes = layer_shapes(build_network("ecg", "classifier", 1), (12, 750))
    base = network_cost(shapes, hw, "fp32", "dram")
    # the PCSA energy alone: only the PCSA part moves, by exactly the factor
    scaled = network_cost(shapes, replace(hw, pcsa_read_energy_j=k * hw.pcsa_energy),
                          "fp32", "dram")
    for a, b in zip(base, scaled, strict=True):
        assert b.energy_pcsa_j == pytest.approx(k * a.energy_pcsa_j)
        assert b.energy_j - b.energy_pcsa_j == pytest.approx(a.energy_j - a.energy_pcsa_j)
    # the derived read energy is V^2 * t / R: linear in the read time
    assert replace(hw, read_time_s=k * hw.read_time_s).pcsa_energy == \
        pytest.approx(k * hw.pcsa_energy)
    # every energy parameter at once: every layer's energy scales by k
    everything = replace(hw, pcsa_read_energy_j=k * hw.pcsa_energy,
                         **{key: k * getattr(hw, key) for key in ENERGY_KEYS})
    for precision in ("fp32", "int8"):
        for memory in ("sram", "dram"):
            e0 = totals(network_cost(shapes, hw, precision, memory))["energy_j"]
            e1 = totals(network_cost(shapes, everything, precision, memory))["energy_j"]
            assert e1 == pytest.approx(k * e0)


def test_layer_shapes_see_binary_inputs():
    shapes = layer_shapes(build_network("mobilenet", "full", 1, num_classes=10, hidden=64),
                          (3, 32, 32))
    assert not shapes[0].binary and not shapes[0].binary_input  # the first conv stays real
    assert all(s.binary and s.binary_input for s in shapes[1:])


@pytest.mark.parametrize("model, binarize, size", [
    (m, b, s) for m, s in (("ecg", None), ("eeg", None), ("mobilenet", 32))
    for b in ("none", "classifier", "full")])
def test_binary_inputs_found_from_the_structure_match_the_values(model, binarize, size):
    """Shapes are taken on the meta device, so the +-1 inputs are found from the modules
    (sign, then dropout / flatten / max pool / views); on a real network the values agree."""
    options = {"num_classes": 10, "hidden": 64} if model == "mobilenet" else {}
    net = build_network(model, binarize, 1, **options).eval()
    shape = (3, size, size) if size else tuple(net.spec.input_shape)
    seen = {}

    def record(name):
        def hook(module, args, out):
            seen[name] = bool(torch.all(args[0].abs() == 1))
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in net.named_modules()
             if isinstance(m, BinaryLayer)]
    with torch.no_grad():
        net(torch.randn(1, *shape, generator=torch.Generator().manual_seed(0)))
    for h in hooks:
        h.remove()
    found = {s.name: s.binary_input for s in layer_shapes(net, shape) if s.binary}
    assert found == seen
    # the first conv of ECG/EEG `full` is binary and sees the signal; MobileNet's stays real
    real_input = binarize == "full" and model != "mobilenet"
    assert sum(found.values()) == len(found) - real_input


def ecg_layers(aug: int) -> list[tuple[int, int, int]]:
    """(R, C, P) of every ECG layer at ``aug``, from Table II: 12 x 750 input, convs of
    32 * aug kernels of 13, 11, 9, 7, 5 taps (max pool 2 after the first two), FC 75, FC 2."""
    c = 32 * aug
    return [(12 * 13, c, 738), (c * 11, c, 359), (c * 9, c, 171), (c * 7, c, 165),
            (c * 5, c, 161), (161 * c, 75, 1), (75, 2, 1)]


def tiles(n: int) -> int:
    return -(-n // 32)


@pytest.mark.parametrize("aug", [2, 100_000])
def test_any_aug_is_counted_exactly_on_the_meta_device(hw, aug):
    """aug=100000 would need 450 TB of ECG weights: the networks are built on the meta
    device, and the counts equal the closed form of the counting rules (docs/cost.md)."""
    devices = []

    def build(binarize):
        net = build_network("ecg", binarize, aug)
        devices.append(next(net.parameters()).device.type)
        return net

    report = cost_report(build, "full", {"model": "ecg", "binarize": "full", "aug": aug}, hw,
                         "fp32", "sram")
    assert set(devices) == {"meta"} and len(devices) == 4
    layers = ecg_layers(aug)
    hidden = layers[1:]  # binary inputs: every layer but the first conv
    full = report["totals"]
    assert full["arrays"] == sum(tiles(r) * tiles(c) for r, c, _ in layers)
    assert full["pcsa_ops"] == sum(r * c * p for r, c, p in layers)
    assert full["row_reads"] == sum(p * r * tiles(c) for r, c, p in layers)
    assert full["real_adds"] == 156 * 32 * aug * 738
    assert full["xnor_ops"] == full["pcsa_ops"] - full["real_adds"]
    assert full["partial_sum_bits"] == sum(p * c * (tiles(r) - 1) * 6 for r, c, p in hidden)
    assert full["threshold_bits"] == sum(p * c * r.bit_length() for r, c, p in hidden)
    by = {(v["binarize"], v["real_precision"], v["real_memory"]): v for v in report["variants"]}
    classifier = by["classifier", "fp32", "sram"]
    convs = layers[:5]
    assert classifier["macs"] == sum(r * c * p for r, c, p in convs)
    assert classifier["weight_bits"] == 32 * sum(r * c + c for r, c, _ in convs)
    assert classifier["arrays"] == sum(tiles(r) * tiles(c) for r, c, _ in layers[5:])
    assert by["full", "fp32", "sram"]["arrays"] == full["arrays"]
    assert by["none", "int8", "dram"]["macs"] == sum(r * c * p for r, c, p in layers)


@pytest.mark.parametrize("changes, named", [
    ({"pcsa_read_energy_j": 1e308}, "hardware.pcsa_read_energy_j=1e+308 is not allowed"),
    ({"read_time_s": 1e300}, "hardware.read_time_s=1e+300 is not allowed"),
    ({"clock_hz": 1e-300}, "hardware.clock_hz=1e-300 is not allowed"),
    ({"sram_cell_area_f2": 1e308}, "hardware.sram_cell_area_f2=1e+308 is not allowed"),
    ({"dram_energy_per_64bit_j": 1e300}, "hardware.dram_energy_per_64bit_j=1e+300 is not"),
    ({"read_voltage_v": 1e150, "read_time_s": 1e150},
     "hardware.read_voltage_v=1e+150, hardware.read_time_s=1e+150 are not allowed"),
])
def test_overflowing_results_name_the_parameters(changes, named):
    """Every result must stay finite (below 1e300): the parameters that differ from the
    preset and feed an overflowing result are named."""
    base = preset()
    hw = HardwareParams.from_mapping(base | changes)
    report = ecg_report(hw)
    with pytest.raises(BnnEdgeError, match="stays below 1e\\+300") as info:
        check_results(report, hw, base)
    assert str(info.value).startswith(named)
    default = HardwareParams.from_mapping(base)
    check_results(ecg_report(default), default, base)  # the preset's values pass
