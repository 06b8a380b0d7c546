"""Energy, latency and area of a network on 2T2R in-memory arrays, against real baselines.

``python -m bnn_edge.cost model=ecg binarize=classifier [aug=1] [ckpt_path=...]``
(docs/cost.md) counts with this module; its parameters are :mod:`.params`, its output
:mod:`.report`. Counting rules, per inference (one input), for a layer with fan-in R
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

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from bnn_edge.errors import BnnEdgeError, ConfigError
from bnn_edge.hardware.cost.params import HardwareParams
from bnn_edge.models import BINARIZE_CHOICES, BinarizableNet, probe
from bnn_edge.nn import BinaryLayer

PRECISIONS = {"fp32": 32, "int8": 8}
MEMORIES = ("sram", "dram")
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)
#: a result at or above this counts as an overflow: the sums, the mm^2 and ratio columns and
#: the chart need headroom below the largest float (1.8e308)
RESULT_LIMIT = 1e300


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
    for binarize in BINARIZE_CHOICES:
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


def baseline(variants: list[dict]) -> dict:
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
    base = baseline(report["variants"])["energy_j"]
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


def build_from(name: str, kwargs: dict):
    """``build(binarize)``: the network of task ``name`` with ``kwargs`` in that variant."""
    from bnn_edge.tasks import build_network

    def build(binarize: str) -> nn.Module:
        return build_network(name, binarize=binarize, **kwargs)

    return build
