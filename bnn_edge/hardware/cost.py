"""Energy, latency and area of a network on 2T2R in-memory arrays, against real baselines.

``python -m bnn_edge.hardware.cost model=ecg binarize=classifier [aug=1] [ckpt_path=...]``
(docs/cost.md). Counting rules, per inference (one input), for a layer with fan-in R
(rows), C outputs (columns) evaluated at P positions (1 for a linear layer, the output
length or area of a convolution before pooling), on arrays of S x S 2T2R cells:

- **binary layers** (weights in the arrays, ``bnn_edge.hardware.memory.array_mapping``):
  ``ceil(R/S) * ceil(C/S)`` arrays; each evaluation reads every input's row once in each
  column tile: ``P * R * ceil(C/S)`` row reads; every used cell is sensed by its column's
  precharge sense amplifier, which computes the XNOR with the input bit:
  ``P * R * C`` PCSA operations and as many XNORs and popcount input bits. A column's count
  over one array has ``ceil(log2(min(R, S) + 1))`` bits; the ``ceil(R/S) - 1`` partial
  counts of the other row tiles move to the first and are added. Bits moved between arrays:
  the input bits delivered to every column tile plus those partial counts. Each output is
  compared with its threshold (``ceil(log2(R + 1))`` bits). A binary layer whose input is
  real (the first convolution of ``binarize=full``) adds its inputs with signs instead:
  ``P * R * C`` real additions at the real precision, no XNOR or popcount.
- **real layers**: ``P * R * C`` multiply-accumulates; every weight and bias is read once
  per inference from SRAM or DRAM (perfect reuse across positions, the baseline's best
  case); input and output activations are read and written once in an 8 KB-class buffer.
  Batch norm folds into the weights; activations and pooling are not counted.
- **latency**: the arrays of a layer work in parallel, one row read per ``read_time_s``:
  ``P * min(R, S) * read_time_s``; real layers ``MACs / (mac_units * clock_hz)``; layers
  run one after another and memory transfers overlap with computation.
- **area**: arrays ``n * S^2 * cell_area`` plus periphery (``periphery_area_ratio`` times
  that); real weights held in SRAM take ``bits * sram_cell_area``; DRAM is off chip.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from bnn_edge.binarize import BinaryLayer
from bnn_edge.errors import BnnEdgeError, ConfigError

PRECISIONS = {"fp32": 32, "int8": 8}
MEMORIES = ("sram", "dram")
VARIANTS = ("none", "classifier", "full")
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class HardwareParams:
    """One parameter set (conf/hardware/*.yaml); None marks a value derived from others."""

    name: str
    array_size: int
    array_feature_size_m: float
    cell_area_f2: float
    periphery_area_ratio: float
    read_voltage_v: float
    read_time_s: float
    r_on_ohm: float
    r_off_ohm: float
    pcsa_read_energy_j: float | None
    popcount_energy_per_bit_j: float | None
    moved_bit_energy_j: float | None
    digital_feature_size_m: float
    add8_energy_j: float
    mult8_energy_j: float
    add32_energy_j: float
    fadd32_energy_j: float
    fmult32_energy_j: float
    sram_buffer_energy_per_64bit_j: float
    sram_weight_energy_per_64bit_j: float
    dram_energy_per_64bit_j: float
    sram_cell_area_f2: float
    clock_hz: float
    mac_units: int

    # values that may be zero (no periphery)
    _MAY_BE_ZERO = ("periphery_area_ratio",)
    _INTEGERS = ("array_size", "mac_units")
    DERIVED = ("pcsa_read_energy_j", "popcount_energy_per_bit_j", "moved_bit_energy_j")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: dict, prefix: str = "hardware") -> HardwareParams:
        """Validated parameters; ConfigError names the first bad key (unknown, missing,
        not a number, NaN or infinite, negative, zero where it must be positive)."""
        values = {k: v for k, v in values.items() if k != "sources"}
        for key in values:
            if key not in cls.names():
                raise ConfigError(f"{prefix}.{key}", values[key],
                                  f"one of the parameters {', '.join(cls.names())}")
        for key in cls.names():
            if key not in values:
                raise ConfigError(f"{prefix}.{key}", None, "a value (the parameter is missing)")
        name = values["name"]
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{prefix}.name", name, "a non-empty name")
        for key in cls.names()[1:]:
            value = values[key]
            if value is None and key in cls.DERIVED:
                continue
            option = f"{prefix}.{key}"
            if key in cls._INTEGERS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigError(option, value, "an integer >= 1")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(option, value, "a number" + (" or null (derived)"
                                                               if key in cls.DERIVED else ""))
            if not math.isfinite(value):
                raise ConfigError(option, value, "a finite number")
            if key in cls._MAY_BE_ZERO:
                if value < 0:
                    raise ConfigError(option, value, "a number >= 0")
            elif value <= 0:
                raise ConfigError(option, value, "a number > 0")
        return cls(**{k: (float(v) if isinstance(v, int) and k not in cls._INTEGERS
                          and k != "name" else v) for k, v in values.items()})

    # --- derived quantities (docs/cost.md, "Parameters") ---
    @property
    def pcsa_energy(self) -> float:
        if self.pcsa_read_energy_j is not None:
            return self.pcsa_read_energy_j
        v = self.read_voltage_v
        return v * v * (1 / self.r_on_ohm + 1 / self.r_off_ohm) * self.read_time_s

    @property
    def popcount_bit_energy(self) -> float:
        if self.popcount_energy_per_bit_j is not None:
            return self.popcount_energy_per_bit_j
        return self.add8_energy_j / 8

    @property
    def moved_bit_energy(self) -> float:
        if self.moved_bit_energy_j is not None:
            return self.moved_bit_energy_j
        return self.sram_buffer_energy_per_64bit_j / 64

    @property
    def cell_area_m2(self) -> float:
        return self.cell_area_f2 * self.array_feature_size_m ** 2

    @property
    def sram_bit_area_m2(self) -> float:
        return self.sram_cell_area_f2 * self.digital_feature_size_m ** 2

    def mac_energy(self, precision: str) -> float:
        """fp32: float multiply + float add; int8: 8-bit multiply + 32-bit accumulate."""
        if precision == "fp32":
            return self.fmult32_energy_j + self.fadd32_energy_j
        return self.mult8_energy_j + self.add32_energy_j

    def add_energy(self, precision: str) -> float:
        return self.fadd32_energy_j if precision == "fp32" else self.add8_energy_j

    def weight_bit_energy(self, memory: str) -> float:
        per_64 = self.sram_weight_energy_per_64bit_j if memory == "sram" \
            else self.dram_energy_per_64bit_j
        return per_64 / 64

    @property
    def buffer_bit_energy(self) -> float:
        return self.sram_buffer_energy_per_64bit_j / 64

    def derived(self) -> dict[str, tuple[float, str]]:
        """The derived quantities with their formula (for the report)."""
        given = "set in the parameter set or on the command line, not derived"

        def rule(key: str, formula: str) -> str:
            return given if getattr(self, key) is not None else formula

        return {
            "pcsa_read_energy_j": (self.pcsa_energy, rule(
                "pcsa_read_energy_j", "read_voltage_v^2 * (1/r_on_ohm + 1/r_off_ohm) * "
                "read_time_s")),
            "popcount_energy_per_bit_j": (self.popcount_bit_energy, rule(
                "popcount_energy_per_bit_j", "add8_energy_j / 8")),
            "moved_bit_energy_j": (self.moved_bit_energy, rule(
                "moved_bit_energy_j", "sram_buffer_energy_per_64bit_j / 64")),
            "cell_area_m2": (self.cell_area_m2, "cell_area_f2 * array_feature_size_m^2"),
            "array_area_m2": (self.cell_area_m2 * self.array_size ** 2,
                              "array_size^2 * cell_area_m2 (cells only)"),
            "mac_energy_fp32_j": (self.mac_energy("fp32"), "fmult32_energy_j + fadd32_energy_j"),
            "mac_energy_int8_j": (self.mac_energy("int8"), "mult8_energy_j + add32_energy_j"),
            "sram_weight_bit_energy_j": (self.weight_bit_energy("sram"),
                                         "sram_weight_energy_per_64bit_j / 64"),
            "dram_bit_energy_j": (self.weight_bit_energy("dram"), "dram_energy_per_64bit_j / 64"),
            "buffer_bit_energy_j": (self.buffer_bit_energy, "sram_buffer_energy_per_64bit_j / 64"),
            "sram_bit_area_m2": (self.sram_bit_area_m2,
                                 "sram_cell_area_f2 * digital_feature_size_m^2"),
        }


@dataclass
class LayerCost:
    """Counts and costs of one conv/linear layer per inference (module docstring)."""

    name: str
    kind: str  # binary | binary_real_input | real
    rows: int  # fan-in R
    cols: int  # outputs C
    positions: int  # evaluations P
    arrays: int = 0
    row_reads: int = 0
    pcsa_ops: int = 0
    xnor_ops: int = 0
    popcount_bits: int = 0
    partial_sum_bits: int = 0
    input_bits_moved: int = 0
    threshold_bits: int = 0
    real_adds: int = 0
    macs: int = 0
    weight_bits: int = 0
    activation_bits: int = 0
    energy_pcsa_j: float = 0.0
    energy_popcount_j: float = 0.0
    energy_moves_j: float = 0.0
    energy_real_j: float = 0.0
    energy_weights_j: float = 0.0
    energy_activations_j: float = 0.0
    latency_s: float = 0.0
    area_arrays_m2: float = 0.0
    area_sram_m2: float = 0.0

    @property
    def bits_moved(self) -> int:
        return self.input_bits_moved + self.partial_sum_bits

    @property
    def energy_j(self) -> float:
        return (self.energy_pcsa_j + self.energy_popcount_j + self.energy_moves_j
                + self.energy_real_j + self.energy_weights_j + self.energy_activations_j)

    @property
    def area_m2(self) -> float:
        return self.area_arrays_m2 + self.area_sram_m2

    def row(self) -> dict:
        return asdict(self) | {"bits_moved": self.bits_moved, "energy_j": self.energy_j,
                               "area_m2": self.area_m2}


def _bits(n: int) -> int:
    """Bits of a counter that holds 0..n."""
    return max(1, math.ceil(math.log2(n + 1)))


def binary_layer_cost(rows: int, cols: int, positions: int, hw: HardwareParams,
                      name: str = "layer", real_input: bool = False,
                      precision: str = "fp32") -> LayerCost:
    """Counts and costs of a binary layer (R x C, P evaluations) on S x S arrays."""
    s = hw.array_size
    row_tiles, col_tiles = math.ceil(rows / s), math.ceil(cols / s)
    c = LayerCost(name, "binary_real_input" if real_input else "binary", rows, cols, positions)
    c.arrays = row_tiles * col_tiles
    c.row_reads = positions * rows * col_tiles
    c.pcsa_ops = positions * rows * cols
    c.input_bits_moved = positions * rows * col_tiles * (PRECISIONS[precision]
                                                         if real_input else 1)
    if real_input:
        c.real_adds = positions * rows * cols
        c.energy_real_j = c.real_adds * hw.add_energy(precision)
    else:
        c.xnor_ops = c.popcount_bits = positions * rows * cols
        c.partial_sum_bits = positions * cols * (row_tiles - 1) * _bits(min(rows, s))
        c.threshold_bits = positions * cols * _bits(rows)
    c.energy_pcsa_j = c.pcsa_ops * hw.pcsa_energy
    c.energy_popcount_j = (c.popcount_bits + c.partial_sum_bits + c.threshold_bits) \
        * hw.popcount_bit_energy
    c.energy_moves_j = c.bits_moved * hw.moved_bit_energy
    c.latency_s = positions * min(rows, s) * hw.read_time_s
    c.area_arrays_m2 = c.arrays * s * s * hw.cell_area_m2 * (1 + hw.periphery_area_ratio)
    return c


def real_layer_cost(rows: int, cols: int, positions: int, params: int, in_elems: int,
                    out_elems: int, hw: HardwareParams, precision: str, memory: str,
                    name: str = "layer") -> LayerCost:
    """Counts and costs of a real-valued layer at ``precision`` with weights in ``memory``."""
    bits = PRECISIONS[precision]
    c = LayerCost(name, "real", rows, cols, positions)
    c.macs = positions * rows * cols
    c.weight_bits = params * bits
    c.activation_bits = (in_elems + out_elems) * bits
    c.energy_real_j = c.macs * hw.mac_energy(precision)
    c.energy_weights_j = c.weight_bits * hw.weight_bit_energy(memory)
    c.energy_activations_j = c.activation_bits * hw.buffer_bit_energy
    c.latency_s = c.macs / (hw.mac_units * hw.clock_hz)
    c.area_sram_m2 = c.weight_bits * hw.sram_bit_area_m2 if memory == "sram" else 0.0
    return c


@dataclass
class LayerShape:
    """What the counting needs from one conv/linear layer, from a forward pass."""

    name: str
    binary: bool
    binary_input: bool
    rows: int
    cols: int
    positions: int
    params: int
    in_elems: int
    out_elems: int


@torch.no_grad()
def layer_shapes(net: nn.Module, input_shape: tuple[int, ...]) -> list[LayerShape]:
    """Conv and linear layers in forward order with fan-in, outputs and positions.

    One forward pass (eval mode, batch 1) on a normal random input: a binary layer's input
    is binary when every value it receives is +-1.
    """
    found: list[LayerShape] = []
    handles = []

    def hook(name: str):
        def record(module, args, out):
            x = args[0]
            cols = module.weight.shape[0]
            found.append(LayerShape(
                name, isinstance(module, BinaryLayer), bool(torch.all(x.abs() == 1)),
                int(module.weight[0].numel()), int(cols), int(out[0].numel() // cols),
                sum(p.numel() for p in module.parameters(recurse=False)),
                int(x[0].numel()), int(out[0].numel())))
        return record

    for name, m in net.named_modules():
        if isinstance(m, _WEIGHTED):
            handles.append(m.register_forward_hook(hook(name)))
    was_training = net.training
    net.eval()
    try:
        net(torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0)))
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    return found


def network_cost(shapes: list[LayerShape], hw: HardwareParams, precision: str = "fp32",
                 memory: str = "sram") -> list[LayerCost]:
    """Per-layer costs; real layers at ``precision`` with weights in ``memory``."""
    out = []
    for s in shapes:
        if s.binary:
            out.append(binary_layer_cost(s.rows, s.cols, s.positions, hw, s.name,
                                         real_input=not s.binary_input, precision=precision))
        else:
            out.append(real_layer_cost(s.rows, s.cols, s.positions, s.params, s.in_elems,
                                       s.out_elems, hw, precision, memory, s.name))
    return out


def totals(layers: list[LayerCost]) -> dict:
    """Sums over the layers, split into the binary (array) and the real part."""
    binary = [c for c in layers if c.kind != "real"]
    real = [c for c in layers if c.kind == "real"]
    keys = ("arrays", "row_reads", "pcsa_ops", "xnor_ops", "popcount_bits", "partial_sum_bits",
            "input_bits_moved", "threshold_bits", "real_adds", "macs", "weight_bits",
            "activation_bits")
    out = {k: sum(getattr(c, k) for c in layers) for k in keys}
    out["bits_moved"] = sum(c.bits_moved for c in layers)
    out["energy_binary_j"] = sum(c.energy_j for c in binary)
    out["energy_real_j"] = sum(c.energy_j for c in real)
    out["energy_j"] = out["energy_binary_j"] + out["energy_real_j"]
    out["latency_s"] = sum(c.latency_s for c in layers)
    out["area_arrays_m2"] = sum(c.area_arrays_m2 for c in layers)
    out["area_sram_m2"] = sum(c.area_sram_m2 for c in layers)
    out["area_m2"] = out["area_arrays_m2"] + out["area_sram_m2"]
    return out


def check_real_options(precision: str, memory: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError("real_precision", precision, f"one of {', '.join(PRECISIONS)}")
    if memory not in MEMORIES:
        raise ConfigError("real_memory", memory, f"one of {', '.join(MEMORIES)}")


def input_shape_of(net: nn.Module, image_size: int = 224) -> tuple[int, ...]:
    spec = getattr(net, "spec", None)
    if spec is not None:
        return tuple(spec.input_shape)
    return (3, image_size, image_size)


def variant_comparison(build, input_shape: tuple[int, ...], hw: HardwareParams) -> list[dict]:
    """Every variant x real precision x real-weight memory: totals per inference.

    ``build(binarize)`` returns the network of that variant.
    """
    rows = []
    for binarize in VARIANTS:
        shapes = layer_shapes(build(binarize), input_shape)
        for precision in PRECISIONS:
            for memory in MEMORIES:
                t = totals(network_cost(shapes, hw, precision, memory))
                rows.append({"binarize": binarize, "real_precision": precision,
                             "real_memory": memory} | t)
    return rows


def cost_report(net: nn.Module, build, meta: dict, hw: HardwareParams, precision: str,
                memory: str, image_size: int = 224) -> dict:
    """The per-layer costs of ``net`` and the comparison of the three variants."""
    check_real_options(precision, memory)
    shape = input_shape_of(net, image_size)
    layers = network_cost(layer_shapes(net, shape), hw, precision, memory)
    return {**meta, "input_shape": list(shape), "real_precision": precision,
            "real_memory": memory, "hardware": asdict(hw),
            "derived": {k: v for k, (v, _) in hw.derived().items()},
            "layers": [c.row() for c in layers], "totals": totals(layers),
            "variants": variant_comparison(build, shape, hw)}


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_variants(path: Path, variants: list[dict], title: str) -> None:
    """Bar chart: energy per inference and chip area of every variant / real storage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{v['binarize']}\n{v['real_precision']} {v['real_memory']}" for v in variants]
    fig, (ax_e, ax_a) = plt.subplots(2, 1, figsize=(max(8, 0.75 * len(labels)), 7), sharex=True)
    x = range(len(labels))
    ax_e.bar(x, [v["energy_binary_j"] for v in variants], label="binary layers (2T2R arrays)")
    ax_e.bar(x, [v["energy_real_j"] for v in variants],
             bottom=[v["energy_binary_j"] for v in variants], label="real layers")
    ax_e.set_yscale("log")
    ax_e.set_ylabel("energy per inference (J)")
    ax_e.legend(fontsize=8)
    ax_e.set_title(title)
    area_arrays = [v["area_arrays_m2"] * 1e6 for v in variants]
    ax_a.bar(x, area_arrays, label="2T2R arrays + periphery")
    ax_a.bar(x, [v["area_sram_m2"] * 1e6 for v in variants], bottom=area_arrays,
             label="SRAM for real weights")
    for i, v in enumerate(variants):
        if v["real_memory"] == "dram" and v["area_sram_m2"] == 0 and v["macs"]:
            ax_a.text(i, area_arrays[i], "real weights\nin DRAM\n(off chip)", ha="center",
                      va="bottom", fontsize=6)
    ax_a.set_ylabel("on-chip area (mm$^2$)")
    ax_a.set_xticks(list(x), labels, fontsize=7)
    ax_a.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def provenance(hw: HardwareParams, sources: dict, preset: dict) -> list[dict]:
    """Every parameter with its value and where it comes from (preset, command line)."""
    rows = []
    for key in HardwareParams.names()[1:]:
        value = getattr(hw, key)
        if value is None:
            continue  # derived: listed with the derived quantities
        source = str(sources.get(key, ""))
        if key in preset and preset[key] != value:
            source = f"command line (the preset has {preset[key]!r}; {source})"
        rows.append({"parameter": key, "value": value, "source": source})
    return rows


def kind_of(source: str) -> str:
    """literature | simulator default | assumption | derived | command line."""
    s = source.lower()
    for kind in ("command line", "assumption", "derived", "simulator default", "literature"):
        if s.startswith(kind) or (kind == "assumption" and "assumption" in s):
            return kind
    return "unstated"


def build_from(name: str, kwargs: dict):
    from bnn_edge.models import build_network

    def build(binarize: str) -> nn.Module:
        return build_network(name, binarize=binarize, **kwargs)

    return build


def _fmt(value: float, unit: str) -> str:
    if value == 0:
        return "0"
    prefixes = [(1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1, "")]
    for scale, p in reversed(prefixes):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {p}{unit}"
    return f"{value:.3g} {unit}"


def print_report(report: dict, param_rows: list[dict], derived: dict, files: list[Path],
                 preset_path: Path) -> None:
    """The parameter set, the per-layer table and the three-variant comparison."""
    import sys

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    hw = report["hardware"]
    console.print(f"Parameter set: {hw['name']} ({preset_path}); array {hw['array_size']} x "
                  f"{hw['array_size']}")
    params = Table(title="Parameters (kind: literature, simulator default, assumption, "
                         "command line)")
    for col in ("parameter", "value", "kind", "source"):
        params.add_column(col, overflow="fold")
    for r in param_rows:
        params.add_row(r["parameter"], f"{r['value']:.4g}" if isinstance(r["value"], float)
                       else str(r["value"]), kind_of(r["source"]), r["source"])
    console.print(params)
    dtable = Table(title="Derived quantities")
    for col in ("quantity", "value", "from"):
        dtable.add_column(col)
    for key, (value, formula) in derived.items():
        dtable.add_row(key, f"{value:.4g}", formula)
    console.print(dtable)

    title = (f"{report['model']} binarize={report['binarize']} aug={report['aug']}, "
             f"real layers {report['real_precision']} in {report['real_memory']}")
    layers = Table(title=f"Per layer, per inference: {title}")
    for col in ("layer", "kind", "R x C x P", "arrays", "row reads", "PCSA ops (=XNOR)",
                "popcount bits", "bits moved", "real MACs / adds", "weight traffic", "energy",
                "latency", "area"):
        layers.add_column(col, justify="left" if col in ("layer", "kind") else "right",
                          no_wrap=col in ("layer", "kind", "R x C x P"))
    rows = report["layers"] + [{"name": "total", "kind": "", **report["totals"]}]
    for r in rows:
        shape = f"{r['rows']} x {r['cols']} x {r['positions']}" if "rows" in r else ""
        xnor = r["pcsa_ops"]
        layers.add_row(r["name"], r["kind"], shape, f"{r['arrays']:,}", f"{r['row_reads']:,}",
                       f"{xnor:,}", f"{r['popcount_bits']:,}", f"{r['bits_moved']:,}",
                       f"{r['macs'] + r['real_adds']:,}", f"{r['weight_bits'] / 8:,.0f} B",
                       _fmt(r["energy_j"], "J"), _fmt(r["latency_s"], "s"),
                       f"{r['area_m2'] * 1e6:.4g} mm2")
    console.print(layers)

    comp = Table(title=f"Variants of {report['model']} aug={report['aug']} per inference "
                       f"(binary layers on 2T2R arrays; real layers at the precision and in "
                       f"the memory given)")
    for col in ("binarize", "real layers", "arrays", "energy: binary", "energy: real",
                "energy total", "vs none fp32 dram", "latency", "area: arrays",
                "area: SRAM", "area total"):
        comp.add_column(col, justify="left" if col in ("binarize", "real layers") else "right")
    base = next(v for v in report["variants"] if v["binarize"] == "none"
                and v["real_precision"] == "fp32" and v["real_memory"] == "dram")
    for v in report["variants"]:
        comp.add_row(v["binarize"], f"{v['real_precision']} {v['real_memory']}",
                     f"{v['arrays']:,}", _fmt(v["energy_binary_j"], "J"),
                     _fmt(v["energy_real_j"], "J"), _fmt(v["energy_j"], "J"),
                     f"{v['energy_j'] / base['energy_j']:.3g}x", _fmt(v["latency_s"], "s"),
                     f"{v['area_arrays_m2'] * 1e6:.4g} mm2",
                     f"{v['area_sram_m2'] * 1e6:.4g} mm2", f"{v['area_m2'] * 1e6:.4g} mm2")
    console.print(comp)
    console.print("energy: binary = the layers on the 2T2R arrays (PCSA reads, popcount, "
                  "moves); area: on-chip 2T2R arrays with periphery and SRAM cells for real "
                  "weights (DRAM is off chip; MAC units and buffers are not counted)")
    console.print("Wrote " + ", ".join(str(f) for f in files))


def markdown_variants(report: dict) -> str:
    """The variant comparison as a Markdown table (docs/cost.md is made of these)."""
    base = next(v for v in report["variants"] if v["binarize"] == "none"
                and v["real_precision"] == "fp32" and v["real_memory"] == "dram")
    lines = [f"{report['model']} aug={report['aug']}, parameter set "
             f"{report['hardware']['name']}, per inference:", "",
             "| binarize | real layers | arrays | energy: binary | energy: real | energy total "
             "| vs none fp32 dram | latency | area: arrays | area: SRAM | area total |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for v in report["variants"]:
        lines.append(
            f"| {v['binarize']} | {v['real_precision']} {v['real_memory']} | {v['arrays']:,} | "
            f"{_fmt(v['energy_binary_j'], 'J')} | {_fmt(v['energy_real_j'], 'J')} | "
            f"{_fmt(v['energy_j'], 'J')} | {v['energy_j'] / base['energy_j']:.3g}x | "
            f"{_fmt(v['latency_s'], 's')} | {v['area_arrays_m2'] * 1e6:.4g} mm2 | "
            f"{v['area_sram_m2'] * 1e6:.4g} mm2 | {v['area_m2'] * 1e6:.4g} mm2 |")
    return "\n".join(lines)


def _preset_choice(cfg) -> str:
    """The ``hardware=`` preset Hydra composed (its name field may have been overridden)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return HydraConfig.get().runtime.choices.get("hardware", cfg.hardware.name)
    return cfg.hardware.name


def run(cfg) -> int:
    """The Hydra app's body; returns the exit status."""
    import json
    import sys

    from omegaconf import OmegaConf

    from bnn_edge.config import (
        CONF_DIR,
        check_output_dir,
        require_choice,
        require_int,
        validate_variant,
    )

    try:
        hw_cfg = OmegaConf.to_container(cfg.hardware, resolve=True)
        sources = hw_cfg.get("sources") or {}
        hw = HardwareParams.from_mapping(hw_cfg)
        require_choice("format", cfg.format, ("table", "json", "markdown"))
        check_real_options(cfg.real_precision, cfg.real_memory)
        require_int("image_size", cfg.image_size, 32)
        check_output_dir("out", cfg.out)
        if cfg.ckpt_path is not None:
            from bnn_edge.experiment.rundir import load_module

            hp = load_module(cfg.ckpt_path).hparams
            name, binarize, aug = hp.network, hp.binarize, int(hp.aug)
            kwargs = {"aug": aug, "num_classes": int(hp.num_classes),
                      **dict(hp.get("net_options") or {})}
            meta = {"checkpoint": str(Path(cfg.ckpt_path).resolve())}
        else:
            validate_variant(cfg)
            name, binarize, aug = cfg.model.name, cfg.binarize, cfg.aug
            classes = cfg.model.get("num_classes")
            if classes is not None:
                require_int("model.num_classes", classes, 2)
            kwargs = {"aug": aug, **({} if classes is None else {"num_classes": classes})}
            if name == "mobilenet":
                kwargs["hidden"] = int(cfg.model.hidden)
            meta = {}
    except BnnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    build = build_from(name, kwargs)
    net = build(binarize)
    report = cost_report(net, build, {"model": name, "binarize": binarize, "aug": aug, **meta},
                         hw, cfg.real_precision, cfg.real_memory, cfg.image_size)
    preset_path = CONF_DIR / "hardware" / f"{_preset_choice(cfg)}.yaml"
    preset = OmegaConf.to_container(OmegaConf.load(preset_path)) if preset_path.is_file() else {}
    param_rows = provenance(hw, sources, preset)
    report["parameters"] = param_rows
    out = Path(str(cfg.out))
    stem = f"cost_{name}_{binarize}_aug{aug}"
    files = [out / f"{stem}_layers.csv", out / f"{stem}_variants.csv",
             out / f"{stem}_variants.png"]
    write_csv(files[0], report["layers"])
    write_csv(files[1], report["variants"])
    plot_variants(files[2], report["variants"],
                  f"{name} aug={aug} on {hw.array_size}x{hw.array_size} 2T2R arrays "
                  f"({hw.name})")
    report["files"] = [str(f) for f in files]
    if cfg.format == "json":
        print(json.dumps(report))
    elif cfg.format == "markdown":
        print(markdown_variants(report))
    else:
        print_report(report, param_rows, hw.derived(), files, preset_path)
    return 0


def check_hardware_keys(argv: list[str]) -> None:
    """``hardware.KEY=...`` must name a parameter: ConfigError before Hydra composes (its
    own message for an unknown key is many lines)."""
    allowed = set(HardwareParams.names())
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and key.startswith("hardware."):
            parts = key.split(".")
            sources = parts[1] == "sources" and len(parts) == 3 and parts[2] in allowed
            if not sources and (parts[1] not in allowed or len(parts) > 2):
                raise ConfigError(key, value, "hardware.<parameter> with one of "
                                  + ", ".join(HardwareParams.names()[1:]))


def main() -> None:
    import sys

    import hydra

    from bnn_edge.cli.app import fail, run_app
    from bnn_edge.config import CONF_DIR

    try:
        check_hardware_keys(sys.argv[1:])
    except ConfigError as e:
        fail(e)

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="cost")
    def _main(cfg) -> None:
        status = run(cfg)
        if status:
            sys.exit(status)

    run_app("cost", _main, output_dir=False)


if __name__ == "__main__":
    main()
