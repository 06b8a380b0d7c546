"""Cost report: counts of hand-checked layers, linear energies, parameter validation, CLI."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from bnn_edge.cli.app import CONF_DIR
from bnn_edge.errors import BnnEdgeError, ConfigError
from bnn_edge.hardware.cost import (
    HardwareParams,
    binary_layer_cost,
    build_from,
    check_results,
    cost_report,
    layer_shapes,
    network_cost,
    real_layer_cost,
    si,
    totals,
)
from bnn_edge.hardware.memory import array_mapping, memory_report
from bnn_edge.nn import BinaryConv1d, BinaryLayer, BinaryLinear, SignActivation
from bnn_edge.tasks import build_network
from tests.conftest import run_cli, stderr_lines

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


@pytest.mark.parametrize("key, value, expected", [
    ("pcsa_read_energy_j", -1e-15, "a number > 0"),
    ("read_time_s", math.nan, "a finite number"),
    ("array_size", 0, r"an integer in \[1, 9007199254740992\]"),
    ("mac_units", 2**60, r"an integer in \[1, 9007199254740992\]"),
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
    ("hardware.r_on_ohm=1e7", "error: hardware.r_on_ohm=10000000.0 is not allowed: expected a "
                              "value below hardware.r_off_ohm=900000.0"),
    ("overwrite=maybe", "error: overwrite='maybe' is not allowed: expected true or false"),
    ("aug=20000000", "error: aug=20000000 is not allowed: expected a network whose tensors "
                     "take fewer than 2**63 bytes each"),
])
def test_cli_rejects_a_bad_parameter_in_one_line(arg, line, tmp_path):
    proc = run_cli("bnn_edge.cost", arg, f"out={tmp_path}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), proc.stderr


def test_cli_report_files_and_variants(tmp_path):
    proc = run_cli("bnn_edge.cost", "model=ecg", "binarize=classifier", "aug=1",
                   f"out={tmp_path}", "hardware.mac_units=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Parameter set: rram_2t2r_130nm" in out
    for word in ("literature", "simulator default", "assumption", "command line", "derived"):
        assert word in out.lower()
    stem = tmp_path / "cost_ecg_aug1"  # the comparison holds the three variants
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
    with open(tmp_path / "cost_ecg_classifier_aug1_layers.csv") as f:
        layers = list(csv.DictReader(f))
    assert [r["kind"] for r in layers] == ["real"] * 5 + ["binary"] * 2
    with open(f"{stem}_variants.png", "rb") as f:
        png = f.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    js = run_cli("bnn_edge.cost", "model=eeg", "binarize=full",
                 f"out={tmp_path / 'eeg'}", "format=json", "hardware=rram_2t2r_45nm")
    assert js.returncode == 0, js.stderr[-3000:]
    report = json.loads(js.stdout)
    assert report["hardware"]["name"] == "rram_2t2r_45nm"
    assert report["totals"]["energy_j"] == pytest.approx(sum(r["energy_j"]
                                                             for r in report["layers"]))
    assert report["derived"]["pcsa_read_energy_j"] == pytest.approx(0.25 * (1 / 6e3 + 1 / 9e5)
                                                                    * 1e-8)


def test_the_command_is_bnn_edge_cost_like_the_others(tmp_path):
    """python -m bnn_edge.cost is the command and bnn-edge cost the same; the hardware layer
    is not a command (it would make hardware run cli)."""
    now = run_cli("bnn_edge.cost", "model=eeg", f"out={tmp_path / 'a'}", "format=json")
    same = run_cli("bnn_edge.cli.main", "cost", "model=eeg", f"out={tmp_path / 'b'}",
                   "format=json")
    assert now.returncode == same.returncode == 0, now.stderr + same.stderr
    a, b = json.loads(now.stdout), json.loads(same.stdout)
    assert a.pop("files") != b.pop("files") and a == b


@pytest.mark.parametrize("columns", [None, "80"])
def test_printed_tables_fit_the_terminal_and_fold_rather_than_cut(columns, tmp_path):
    """In 100 columns the tables cut values ("17… uJ"); now they fit 100 columns (the
    width of a log) whole, and in 80 they fold."""
    proc = run_cli("bnn_edge.cost", "model=ecg", "binarize=classifier", f"out={tmp_path}",
                   env={"COLUMNS": columns} if columns else {"COLUMNS": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    width = int(columns or 100)
    lines = proc.stdout.splitlines()
    assert "…" not in proc.stdout and max(map(len, lines)) <= width
    if columns is None:  # every value whole on its line
        report = cost_report(build_from("ecg", {"aug": 1}), "classifier",
                             {"model": "ecg", "binarize": "classifier", "aug": 1},
                             HardwareParams.from_mapping(preset()), "fp32", "sram")
        rows = [line.split() for line in lines]
        for v in report["variants"]:
            words = [v["binarize"], v["real_precision"], v["real_memory"], f"{v['arrays']:,}",
                     *si(v["energy_binary_j"], "J").split(),
                     *si(v["energy_real_j"], "J").split(), *si(v["energy_j"], "J").split()]
            assert words in [r[:len(words)] for r in rows], words
        for layer in report["layers"]:
            assert [layer["name"], layer["kind"], *si(layer["energy_j"], "J").split()] == [
                r[:2] + r[4:6] for r in rows if r[:1] == [layer["name"]]][1]


def test_chart_draws_each_energy_from_the_axis_of_its_log_scale():
    """Stacked on a log axis, the classifier's binary-layer energy (178 nJ under 54 uJ) was
    invisible: each part is now a bar of its own from the axis, the area chart is linear."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bnn_edge.hardware.cost import ENERGY_BARS, draw_variants

    report = cost_report(build_from("ecg", {"aug": 1}), "classifier",
                         {"model": "ecg", "binarize": "classifier", "aug": 1},
                         HardwareParams.from_mapping(preset()), "fp32", "sram")
    variants = report["variants"]
    fig, (ax_e, ax_a) = plt.subplots(2, 1)
    draw_variants(ax_e, ax_a, variants, "test")
    assert ax_e.get_yscale() == "log" and ax_a.get_yscale() == "linear"
    bars = ax_e.patches
    assert len(bars) == len(ENERGY_BARS) * len(variants)
    assert all(bar.get_y() == 0 for bar in bars)  # none stands on another
    low, high = ax_e.get_ylim()
    for k, (key, _) in enumerate(ENERGY_BARS):
        heights = [bar.get_height() for bar in bars[k * len(variants):(k + 1) * len(variants)]]
        assert heights == [v[key] for v in variants]
        assert all(low < h < high for h in heights if h > 0)
    classifier = next(v for v in variants if v["binarize"] == "classifier")
    assert 0 < classifier["energy_binary_j"] < classifier["energy_real_j"] / 100
    assert {t.get_text() for t in ax_e.texts} >= {si(classifier["energy_binary_j"], "J"), "0"}
    plt.close(fig)


def test_cli_from_a_checkpoint(ecg_checkpoint, tmp_path):
    """The checkpoint decides; options that agree with it may be given."""
    proc = run_cli("bnn_edge.cost", f"ckpt_path={ecg_checkpoint}", f"out={tmp_path}",
                   "format=json", "model=ecg", "binarize=classifier", "aug=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert (report["model"], report["binarize"], report["aug"]) == ("ecg", "classifier", 1)
    assert report["checkpoint"] == str(ecg_checkpoint.resolve())
    assert report["totals"]["arrays"] == 486


def test_cli_refuses_options_that_contradict_the_checkpoint(ecg_checkpoint, tmp_path):
    """model=/binarize=/aug= that disagree with the checkpoint used to be ignored silently."""
    out = tmp_path / "out"
    proc = run_cli("bnn_edge.cost", f"ckpt_path={ecg_checkpoint}", f"out={out}",
                   "model=eeg", "binarize=none", "aug=1")
    assert proc.returncode == 2
    lines = stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(
        f"error: model=eeg, binarize=none on the command line contradict "
        f"ckpt_path={ecg_checkpoint}, a checkpoint of ecg binarize=classifier aug=1 "), proc.stderr
    assert not out.exists()


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


def ecg_report(hw: HardwareParams) -> dict:
    return cost_report(build_from("ecg", {"aug": 1}), "classifier",
                       {"model": "ecg", "binarize": "classifier", "aug": 1}, hw, "fp32", "sram")


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


@pytest.mark.parametrize("low, high, value, strict", [
    ("r_on_ohm", "r_off_ohm", 900000.0, True),
    ("add8_energy_j", "add32_energy_j", 2e-13, False),
    ("sram_buffer_energy_per_64bit_j", "sram_weight_energy_per_64bit_j", 2e-10, False),
    ("sram_weight_energy_per_64bit_j", "dram_energy_per_64bit_j", 2e-9, False),
])
def test_parameters_must_be_physically_consistent(low, high, value, strict):
    """R_on < R_off; an 8-bit add costs no more than a 32-bit one; 8 KB buffer <= 1 MB SRAM
    <= DRAM per access. The error names both parameters."""
    base = preset()
    with pytest.raises(ConfigError, match=f"hardware.{high}={base[high]!r}") as info:
        HardwareParams.from_mapping(base | {low: value})
    assert info.value.option == f"hardware.{low}"
    equal = base | {low: base[high]}
    if strict:
        with pytest.raises(ConfigError):
            HardwareParams.from_mapping(equal)
    else:
        HardwareParams.from_mapping(equal)


@pytest.mark.parametrize("arg, named", [
    ("hardware.pcsa_read_energy_j=1e308", "hardware.pcsa_read_energy_j=1e+308"),
    ("hardware.read_time_s=1e300", "hardware.read_time_s=1e+300"),
])
def test_cli_stops_on_an_overflow_before_writing(tmp_path, arg, named):
    """An energy of 1e308 used to write inf into the CSVs (exit 0), a read time of 1e300 to
    end in a traceback in the chart after writing the CSVs."""
    out = tmp_path / "out"
    proc = run_cli("bnn_edge.cost", "model=ecg", arg, f"out={out}")
    assert proc.returncode == 2
    lines = stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(f"error: {named} is not allowed"), \
        proc.stderr
    assert not out.exists()


def test_cli_refuses_a_folder_with_files_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = run_cli("bnn_edge.cost", "model=ecg", f"out={out}", "format=markdown")
    assert proc.returncode == 2
    assert stderr_lines(proc) == [
        f"error: out='{out}' is not allowed: expected an empty or new folder (it holds files; "
        f"overwrite=true replaces the cost report's files in it)"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    stale = out / "cost_ecg_aug1_variants.csv"
    stale.write_text("old")
    proc = run_cli("bnn_edge.cost", "model=ecg", f"out={out}", "format=markdown",
                   "overwrite=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "cost_ecg_aug1_variants.csv", "cost_ecg_aug1_variants.png",
        "cost_ecg_classifier_aug1_layers.csv", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    with open(stale) as f:
        assert len(list(csv.DictReader(f))) == 12
