"""Energy, latency and area of a network on 2T2R in-memory arrays, against real baselines.

``python -m bnn_edge.cost model=ecg binarize=classifier [aug=1] [ckpt_path=...]``
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

The networks are built on PyTorch's meta device (shapes only, no weights), so any ``aug`` is
counted; every result must stay below :data:`RESULT_LIMIT` (:func:`check_results`).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bnn_edge.errors import BnnEdgeError, ConfigError
from bnn_edge.models import BinarizableNet, probe
from bnn_edge.nn import BinaryLayer
from bnn_edge.validation import require_int

PRECISIONS = {"fp32": 32, "int8": 8}
MEMORIES = ("sram", "dram")
VARIANTS = ("none", "classifier", "full")
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)
#: integer parameters up to 2**53 stay exact in the float arithmetic of the costs
INT_MAX = 2**53
#: a result at or above this counts as an overflow: the sums, the mm^2 and ratio columns and
#: the chart need headroom below the largest float (1.8e308)
RESULT_LIMIT = 1e300
#: physical relations between parameters, (lower, upper, strict, why): docs/cost.md
RELATIONS = (
    ("r_on_ohm", "r_off_ohm", True, "the on state is the low-resistance state"),
    ("add8_energy_j", "add32_energy_j", False, "an 8-bit adder is a part of a 32-bit adder"),
    ("sram_buffer_energy_per_64bit_j", "sram_weight_energy_per_64bit_j", False,
     "a read of the 8 KB buffer costs no more than one of the 1 MB SRAM"),
    ("sram_weight_energy_per_64bit_j", "dram_energy_per_64bit_j", False,
     "a read of the on-chip 1 MB SRAM costs no more than one of the off-chip DRAM"),
)


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
        not a number, NaN or infinite, negative, zero where it must be positive, an integer
        above 2**53) or the first broken relation of :data:`RELATIONS` (naming both)."""
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
                require_int(option, value, 1, INT_MAX)
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
        for low, high, strict, why in RELATIONS:
            if values[low] > values[high] or (strict and values[low] == values[high]):
                raise ConfigError(f"{prefix}.{low}", values[low],
                                  f"a value {'below' if strict else 'at most'} "
                                  f"{prefix}.{high}={values[high]!r} ({why})")
        return cls(**{k: (float(v) if isinstance(v, int) and k not in cls._INTEGERS
                          and k != "name" else v) for k, v in values.items()})

    def inputs(self) -> dict[str, tuple[str, ...]]:
        """The parameters each result (a LayerCost field, a total, a derived quantity) is
        computed from, to name those that make it overflow."""
        def own_or(key: str, *formula: str) -> tuple[str, ...]:
            return (key,) if getattr(self, key) is not None else formula

        pcsa = own_or("pcsa_read_energy_j", "read_voltage_v", "r_on_ohm", "r_off_ohm",
                      "read_time_s")
        popcount = own_or("popcount_energy_per_bit_j", "add8_energy_j")
        moves = own_or("moved_bit_energy_j", "sram_buffer_energy_per_64bit_j")
        fp32, int8 = ("fmult32_energy_j", "fadd32_energy_j"), ("mult8_energy_j", "add32_energy_j")
        real = fp32 + int8 + ("add8_energy_j",)
        weights = ("sram_weight_energy_per_64bit_j", "dram_energy_per_64bit_j")
        buffer = ("sram_buffer_energy_per_64bit_j",)
        binary = pcsa + popcount + moves + real
        cell = ("cell_area_f2", "array_feature_size_m")
        arrays = ("array_size", *cell, "periphery_area_ratio")
        sram = ("sram_cell_area_f2", "digital_feature_size_m")
        return {
            "energy_pcsa_j": pcsa, "energy_popcount_j": popcount, "energy_moves_j": moves,
            "energy_real_j": real, "energy_weights_j": weights, "energy_activations_j": buffer,
            "energy_binary_j": binary, "energy_j": binary + weights + buffer,
            "latency_s": ("read_time_s", "clock_hz", "mac_units"),
            "area_arrays_m2": arrays, "area_sram_m2": sram, "area_m2": arrays + sram,
            "pcsa_read_energy_j": pcsa, "popcount_energy_per_bit_j": popcount,
            "moved_bit_energy_j": moves, "cell_area_m2": cell,
            "array_area_m2": (*cell, "array_size"), "mac_energy_fp32_j": fp32,
            "mac_energy_int8_j": int8,
            "sram_weight_bit_energy_j": weights[:1], "dram_bit_energy_j": weights[1:],
            "buffer_bit_energy_j": buffer, "sram_bit_area_m2": sram,
        }

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
    """Bits of a counter that holds 0..n (ceil(log2(n + 1)), exact for any n)."""
    return max(1, n.bit_length())


def _tiles(n: int, size: int) -> int:
    """ceil(n / size) in integers (exact for any n)."""
    return -(-n // size)


def binary_layer_cost(rows: int, cols: int, positions: int, hw: HardwareParams,
                      name: str = "layer", real_input: bool = False,
                      precision: str = "fp32") -> LayerCost:
    """Counts and costs of a binary layer (R x C, P evaluations) on S x S arrays."""
    s = hw.array_size
    row_tiles, col_tiles = _tiles(rows, s), _tiles(cols, s)
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
    """Conv and linear layers in forward order with fan-in, outputs and positions, from the
    network's shape probe (:func:`bnn_edge.models.probe`, which may run on the meta device).
    A layer's input is binary when it comes from a sign activation."""
    found = []
    for layer in probe(net, input_shape):
        m = layer.module
        if not isinstance(m, _WEIGHTED):
            continue
        cols, outputs = int(m.weight.shape[0]), math.prod(layer.out_shape)
        found.append(LayerShape(
            layer.name, isinstance(m, BinaryLayer), layer.binary_in, int(m.weight[0].numel()),
            cols, outputs // cols, sum(p.numel() for p in m.parameters(recurse=False)),
            math.prod(layer.in_shape), outputs))
    return found


def meta_shapes(build, binarize: str,
                image_size: int = 224) -> tuple[tuple[int, ...], list[LayerShape]]:
    """Input shape and layer shapes of ``build(binarize)`` built on PyTorch's meta device:
    no weight is allocated, so any ``aug`` is counted (as ``bnn_edge.memory`` does)."""
    with torch.device("meta"):
        net = build(binarize)
    shape = input_shape_of(net, image_size)
    return shape, layer_shapes(net, shape)


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


def input_shape_of(net: BinarizableNet, image_size: int = 224) -> tuple[int, ...]:
    """The network's input shape; an image network's (channels x height x width) at
    ``image_size`` x ``image_size``."""
    shape = tuple(net.input_shape)
    return (shape[0], image_size, image_size) if len(shape) == 3 else shape


def variant_comparison(build, hw: HardwareParams, image_size: int = 224) -> list[dict]:
    """Every variant x real precision x real-weight memory: totals per inference.

    ``build(binarize)`` returns the network of that variant (built on the meta device).
    """
    rows = []
    for binarize in VARIANTS:
        shapes = meta_shapes(build, binarize, image_size)[1]
        for precision in PRECISIONS:
            for memory in MEMORIES:
                t = totals(network_cost(shapes, hw, precision, memory))
                rows.append({"binarize": binarize, "real_precision": precision,
                             "real_memory": memory} | t)
    return rows


def cost_report(build, binarize: str, meta: dict, hw: HardwareParams, precision: str,
                memory: str, image_size: int = 224) -> dict:
    """The per-layer costs of ``build(binarize)`` and the comparison of the three variants."""
    check_real_options(precision, memory)
    shape, shapes = meta_shapes(build, binarize, image_size)
    layers = network_cost(shapes, hw, precision, memory)
    return {**meta, "input_shape": list(shape), "real_precision": precision,
            "real_memory": memory, "hardware": asdict(hw),
            "derived": {k: v for k, (v, _) in hw.derived().items()},
            "layers": [c.row() for c in layers], "totals": totals(layers),
            "variants": variant_comparison(build, hw, image_size)}


def _baseline(variants: list[dict]) -> dict:
    """The variant the ratios refer to: the real network in fp32 with its weights in DRAM."""
    return next(v for v in variants if v["binarize"] == "none"
                and v["real_precision"] == "fp32" and v["real_memory"] == "dram")


def overflowing(report: dict) -> list[str]:
    """The results of ``report`` that are not finite or reach :data:`RESULT_LIMIT` (per-layer
    fields, totals, variants, derived quantities, the ratios to the baseline), by name."""
    bad: list[str] = []

    def visit(row: dict) -> None:
        for key, value in row.items():
            if (isinstance(value, float) and not abs(value) < RESULT_LIMIT
                    and key not in bad):
                bad.append(key)

    for row in [*report["layers"], report["totals"], *report["variants"], report["derived"]]:
        visit(row)
    base = _baseline(report["variants"])["energy_j"]
    if any(not v["energy_j"] < RESULT_LIMIT * base for v in report["variants"]):
        visit({"energy_j": math.inf})
    return bad


def check_results(report: dict, hw: HardwareParams, preset: dict,
                  prefix: str = "hardware") -> None:
    """BnnEdgeError naming the parameters whose values make a result overflow: those a
    result is computed from that differ from ``preset`` (all of them if none differs)."""
    bad = overflowing(report)
    if not bad:
        return
    inputs = hw.inputs()
    used = {p for key in bad for p in inputs[key]}
    candidates = [p for p in HardwareParams.names() if p in used]
    named = [p for p in candidates if preset.get(p) != getattr(hw, p)] or candidates
    values = ", ".join(f"{prefix}.{p}={getattr(hw, p)!r}" for p in named)
    one = len(named) == 1
    raise BnnEdgeError(f"{values} {'is' if one else 'are'} not allowed: expected "
                       f"{'a value' if one else 'values'} for which every result of the "
                       f"cost model stays below {RESULT_LIMIT:g} ({', '.join(bad)} "
                       f"overflow{'s' if len(bad) == 1 else ''})")


def csv_text(rows: list[dict]) -> str:
    """``rows`` as CSV (header from the first row)."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def variants_chart(variants: list[dict], title: str) -> bytes:
    """PNG chart of every variant / real storage: energy per inference and chip area
    (rendered in memory, so that a failure leaves no file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_e, ax_a) = plt.subplots(2, 1, figsize=(max(8, 0.9 * len(variants)), 8),
                                     sharex=True)
    try:
        draw_variants(ax_e, ax_a, variants, title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120)
        return buf.getvalue()
    finally:
        plt.close(fig)


#: the energy bars of a variant, side by side (a log axis cannot stack: a small part drawn
#: on top of a large one would not show)
ENERGY_BARS = (("energy_binary_j", "binary layers (2T2R arrays)"),
               ("energy_real_j", "real layers"), ("energy_j", "total"))


def draw_variants(ax_e, ax_a, variants: list[dict], title: str) -> None:
    """Energy per inference, each part its own bar from the axis on a log scale, its value
    written above it ("0" for none); on-chip area stacked on a linear scale."""
    x = np.arange(len(variants))
    width = 0.8 / len(ENERGY_BARS)
    positive = [v[key] for v in variants for key, _ in ENERGY_BARS if v[key] > 0]
    ax_e.set_yscale("log")
    ax_e.set_ylim(min(positive) / 3, max(positive) * 30)
    for k, (key, label) in enumerate(ENERGY_BARS):
        pos = x + (k - (len(ENERGY_BARS) - 1) / 2) * width
        values = [v[key] for v in variants]
        ax_e.bar(pos, values, width, label=label)
        for p, value in zip(pos, values, strict=True):
            ax_e.annotate(si(value, "J"), (p, value or min(positive) / 3), xytext=(0, 2),
                          textcoords="offset points", ha="center", va="bottom", fontsize=5,
                          rotation=90)
    ax_e.set_ylabel("energy per inference (J, log scale)")
    ax_e.legend(fontsize=8, loc="upper right")
    ax_e.set_title(title)
    area_arrays = [v["area_arrays_m2"] * 1e6 for v in variants]
    ax_a.bar(x, area_arrays, label="2T2R arrays + periphery")
    ax_a.bar(x, [v["area_sram_m2"] * 1e6 for v in variants], bottom=area_arrays,
             label="SRAM for real weights")
    for i, v in enumerate(variants):
        if v["real_memory"] == "dram" and v["area_sram_m2"] == 0 and v["macs"]:
            ax_a.text(i, area_arrays[i], "real weights\nin DRAM\n(off chip)", ha="center",
                      va="bottom", fontsize=6)
    ax_a.set_ylabel("on-chip area (mm$^2$, linear)")
    ax_a.set_xticks(list(x), [f"{v['binarize']}\n{v['real_precision']} {v['real_memory']}"
                              for v in variants], fontsize=7)
    ax_a.legend(fontsize=8)


def write_files(contents: dict[Path, str | bytes]) -> list[Path]:
    """Write every file (its folder created if missing); return their paths."""
    for path, content in contents.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, newline="")
    return list(contents)


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
    from bnn_edge.tasks import build_network

    def build(binarize: str) -> nn.Module:
        return build_network(name, binarize=binarize, **kwargs)

    return build


def si(value: float, unit: str) -> str:
    """``value`` with an SI prefix: si(4.2e-6, "J") == "4.2 uJ"."""
    if value == 0:
        return "0"
    prefixes = [(1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1, "")]
    for scale, p in reversed(prefixes):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {p}{unit}"
    return f"{value:.3g} {unit}"


def markdown_variants(report: dict) -> str:
    """The variant comparison as a Markdown table (docs/cost.md is made of these)."""
    base = _baseline(report["variants"])
    lines = [f"{report['model']} aug={report['aug']}, parameter set "
             f"{report['hardware']['name']}, per inference:", "",
             "| binarize | real layers | arrays | energy: binary | energy: real | energy total "
             "| vs none fp32 dram | latency | area: arrays | area: SRAM | area total |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for v in report["variants"]:
        lines.append(
            f"| {v['binarize']} | {v['real_precision']} {v['real_memory']} | {v['arrays']:,} | "
            f"{si(v['energy_binary_j'], 'J')} | {si(v['energy_real_j'], 'J')} | "
            f"{si(v['energy_j'], 'J')} | {v['energy_j'] / base['energy_j']:.3g}x | "
            f"{si(v['latency_s'], 's')} | {v['area_arrays_m2'] * 1e6:.4g} mm2 | "
            f"{v['area_sram_m2'] * 1e6:.4g} mm2 | {v['area_m2'] * 1e6:.4g} mm2 |")
    return "\n".join(lines)
