"""Cost report: counts of hand-checked layers, linear energies, parameter validation, CLI."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import pytest
from omegaconf import OmegaConf
from torch import nn

from bnn_edge.cli.app import CONF_DIR
from bnn_edge.errors import ConfigError
from bnn_edge.hardware.cost import (
    HardwareParams,
    binary_layer_cost,
    layer_shapes,
    network_cost,
    real_layer_cost,
    totals,
)
from bnn_edge.hardware.memory import array_mapping, memory_report
from bnn_edge.models import build_network
from bnn_edge.nn import BinaryConv1d, BinaryLinear, SignActivation
from tests.conftest import run_cli

ENERGY_KEYS = ("add8_energy_j", "mult8_energy_j", "add32_energy_j", "fadd32_energy_j",
               "fmult32_energy_j", "sram_buffer_energy_per_64bit_j",
               "sram_weight_energy_per_64bit_j", "dram_energy_per_64bit_j")


def preset(name: str = "rram_2t2r_130nm") -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "hardware" / f"{name}.yaml"))


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

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.sign = SignActivation()
            self.conv = BinaryConv1d(4, 8, 3)  # fan-in 12, 8 outputs, length 10 -> 8
            self.fc = BinaryLinear(64, 32)

        def forward(self, x):
            return self.fc(self.sign(self.conv(self.sign(x))).flatten(1))

    shapes = layer_shapes(Net(), (4, 10))
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


@pytest.mark.parametrize("key, value, expected", [
    ("pcsa_read_energy_j", -1e-15, "a number > 0"),
    ("read_time_s", math.nan, "a finite number"),
    ("array_size", 0, "an integer >= 1"),
    ("periphery_area_ratio", -0.5, "a number >= 0"),
    ("clock_hz", "fast", "a number"),
])
def test_bad_parameters_are_named(key, value, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        HardwareParams.from_mapping(preset() | {key: value})
    assert info.value.option == f"hardware.{key}"
    with pytest.raises(ConfigError, match="one of the parameters"):
        HardwareParams.from_mapping(preset() | {"pcsa_energy": 1e-15})


def test_presets_are_valid_and_every_parameter_has_a_source():
    for path in (CONF_DIR / "hardware").glob("*.yaml"):
        values = OmegaConf.to_container(OmegaConf.load(path))
        HardwareParams.from_mapping(values)
        assert set(values["sources"]) == set(HardwareParams.names()[1:]), path.name
        assert values["name"] == path.stem


@pytest.mark.parametrize("arg, line", [
    ("hardware.pcsa_read_energy_j=-1",
     "error: hardware.pcsa_read_energy_j=-1 is not allowed: expected a number > 0"),
    ("hardware.read_time_s=nan",
     "error: hardware.read_time_s=nan is not allowed: expected a finite number"),
    ("hardware.pcsa_energy=1e-15", "error: hardware.pcsa_energy='1e-15' is not allowed"),
    ("hardware=rram_1t1r", "error: hardware='rram_1t1r' is not allowed: expected one of "
                           "rram_2t2r_130nm, rram_2t2r_45nm"),
    ("real_precision=fp16", "error: real_precision='fp16' is not allowed: expected one of "
                            "fp32, int8"),
])
def test_cli_rejects_a_bad_parameter_in_one_line(arg, line, tmp_path):
    proc = run_cli("bnn_edge.hardware.cost", arg, f"out={tmp_path}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), proc.stderr


def test_cli_report_files_and_variants(tmp_path):
    proc = run_cli("bnn_edge.hardware.cost", "model=ecg", "binarize=classifier", "aug=1",
                   f"out={tmp_path}", "hardware.mac_units=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Parameter set: rram_2t2r_130nm" in out
    for word in ("literature", "simulator default", "assumption", "command line", "derived"):
        assert word in out.lower()
    stem = tmp_path / "cost_ecg_classifier_aug1"
    with open(f"{stem}_variants.csv") as f:
        variants = list(csv.DictReader(f))
    assert len(variants) == 12
    by = {(v["binarize"], v["real_precision"], v["real_memory"]): v for v in variants}
    assert int(by["classifier", "fp32", "sram"]["arrays"]) == 486
    assert float(by["none", "fp32", "dram"]["energy_binary_j"]) == 0
    # real weights in DRAM cost more than in SRAM, fp32 more than int8
    energy = {key: float(v["energy_j"]) for key, v in by.items()}
    assert energy["none", "fp32", "dram"] > energy["none", "fp32", "sram"] > \
        energy["none", "int8", "sram"]
    with open(f"{stem}_layers.csv") as f:
        layers = list(csv.DictReader(f))
    assert [r["kind"] for r in layers] == ["real"] * 5 + ["binary"] * 2
    with open(f"{stem}_variants.png", "rb") as f:
        png = f.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    js = run_cli("bnn_edge.hardware.cost", "model=eeg", "binarize=full", f"out={tmp_path}",
                 "format=json", "hardware=rram_2t2r_45nm")
    assert js.returncode == 0, js.stderr[-3000:]
    report = json.loads(js.stdout)
    assert report["hardware"]["name"] == "rram_2t2r_45nm"
    assert report["totals"]["energy_j"] == pytest.approx(sum(r["energy_j"]
                                                             for r in report["layers"]))
    assert report["derived"]["pcsa_read_energy_j"] == pytest.approx(0.25 * (1 / 6e3 + 1 / 9e5)
                                                                    * 1e-8)


def test_cli_from_a_checkpoint(ecg_checkpoint, tmp_path):
    proc = run_cli("bnn_edge.hardware.cost", f"ckpt_path={ecg_checkpoint}", f"out={tmp_path}",
                   "format=json", "binarize=full")  # binarize is the checkpoint's, not this
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert (report["model"], report["binarize"], report["aug"]) == ("ecg", "classifier", 1)
    assert report["checkpoint"] == str(ecg_checkpoint.resolve())
    assert report["totals"]["arrays"] == 486


def test_layer_shapes_see_binary_inputs():
    shapes = layer_shapes(build_network("mobilenet", "full", 1, num_classes=10, hidden=64),
                          (3, 32, 32))
    assert not shapes[0].binary and not shapes[0].binary_input  # the first conv stays real
    assert all(s.binary and s.binary_input for s in shapes[1:])
