"""Memory accounting (the paper's Table IV) and mapping of binary layers onto RRAM arrays.

Counting rules (docs/memory.md explains them with the paper's figures):

- A *parameter* is a trainable value: conv and linear weights and biases, batch-norm
  scale and shift. Batch-norm running statistics are buffers, not counted.
- The *reference* is the same network with real weights (``binarize=none``, same
  ``aug``), stored whole at 32 bit (``bytes_fp32``) or 8 bit (``bytes_int8``).
- The *configured* model stores the weights and biases of its binary layers at 1 bit
  (the paper's counting); a batch norm that directly follows a binary layer folds with
  that layer's bias into one threshold per neuron and is not counted again; every other
  parameter is kept at 32 bit (``bytes_mixed_fp32``) or 8 bit (``bytes_mixed_int8``).
  What the folded thresholds themselves cost is reported apart (``threshold_bytes``).
- Savings compare the configured model with the reference.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from torch import nn

from bnn_edge.hardware.mapping import array_mapping
from bnn_edge.nn import binary_layers, layer_precision
from bnn_edge.tasks import build_network

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)


@dataclass
class LayerMemory:
    """One parametrised layer: its parameters and the bits each is stored with."""

    name: str
    kind: str
    part: str
    shape: list[int]
    params: int
    binary: bool
    folded: bool  # batch norm folded into the preceding binary layer's thresholds
    bits_mixed_fp32: int
    bits_mixed_int8: int

    @property
    def bytes_mixed_fp32(self) -> float:
        return self.params * self.bits_mixed_fp32 / 8

    @property
    def bytes_mixed_int8(self) -> float:
        return self.params * self.bits_mixed_int8 / 8


def _part(name: str) -> str:
    return name.split(".")[0] if "." in name else name


def layer_memory(model: nn.Module) -> list[LayerMemory]:
    """Per-layer parameter counts and storage bits of ``model`` (in registration order)."""
    rows: list[LayerMemory] = []
    previous_binary = False
    for name, module in model.named_modules():
        if isinstance(module, _WEIGHTED):
            precision = layer_precision(module)  # None: a real layer, stored as the reference
            binary = precision is not None
            params = sum(p.numel() for p in module.parameters(recurse=False))
            kind = type(module).__name__
            rows.append(LayerMemory(name, kind, _part(name), list(module.weight.shape), params,
                                    binary, False, precision or 32, precision or 8))
            previous_binary = binary
        elif isinstance(module, _NORMS) and module.affine:
            params = sum(p.numel() for p in module.parameters(recurse=False))
            folded = previous_binary
            rows.append(LayerMemory(name, type(module).__name__, _part(name),
                                    [module.num_features], params, False, folded,
                                    0 if folded else 32, 0 if folded else 8))
            previous_binary = False
    return rows


def threshold_bytes(model: nn.Module, bits: int = 32) -> int:
    """Storage of the folded thresholds: one per hidden binary neuron, two (scale, offset)
    per output of a binary layer that ends the network, at ``bits`` each."""
    binary = [m for _, m in binary_layers(model)]
    total = 0
    for i, m in enumerate(binary):
        last = i == len(binary) - 1 and isinstance(m, nn.Linear)
        total += m.weight.shape[0] * (2 if last else 1)
    return total * bits // 8


def _params(rows: list[LayerMemory], part: str | None = None) -> int:
    return sum(r.params for r in rows if part is None or r.part == part)


def memory_report(model_name: str, binarize: str, aug: int = 1, array_size: int = 32,
                  **network_options) -> dict:
    """The Table IV row, per-layer table and array mapping of a configured network.

    The networks are built on PyTorch's meta device: shapes only, no weights in memory,
    so any ``aug`` is counted in milliseconds. ``network_options`` (``num_classes``,
    MobileNet's ``hidden``) go to the network builder.
    """
    import torch

    with torch.device("meta"):
        reference = layer_memory(build_network(model_name, binarize="none", aug=aug,
                                               **network_options))
        configured_model = build_network(model_name, binarize=binarize, aug=aug,
                                         **network_options)
    configured = layer_memory(configured_model)
    total = _params(reference)
    bytes_fp32, bytes_int8 = 4 * total, total
    mixed_fp32 = math.ceil(sum(r.bytes_mixed_fp32 for r in configured))
    mixed_int8 = math.ceil(sum(r.bytes_mixed_int8 for r in configured))
    arrays = array_mapping(configured_model, array_size)
    return {
        "model": model_name, "binarize": binarize, "aug": aug,
        "total_params": total,
        "classifier_params": _params(reference, "classifier"),
        "conv_params": _params(reference) - _params(reference, "classifier"),
        "configured_params": _params(configured),
        "binary_params": sum(r.params for r in configured if r.binary),
        "folded_norm_params": sum(r.params for r in configured if r.folded),
        "bytes_fp32": bytes_fp32,
        "bytes_int8": bytes_int8,
        "bytes_mixed_fp32": mixed_fp32,
        "bytes_mixed_int8": mixed_int8,
        "saving_vs_fp32_pct": round(100 * (1 - mixed_fp32 / bytes_fp32), 2),
        "saving_vs_int8_pct": round(100 * (1 - mixed_int8 / bytes_int8), 2),
        "threshold_bytes": threshold_bytes(configured_model),
        "layers": [asdict(r) | {"bytes_mixed_fp32": r.bytes_mixed_fp32,
                                "bytes_mixed_int8": r.bytes_mixed_int8} for r in configured],
        "arrays": {
            "array_size": array_size,
            "layers": [asdict(a) for a in arrays],
            "total_arrays": sum(a.arrays for a in arrays),
            "total_devices": sum(a.devices for a in arrays),
            "total_sense_amplifiers": sum(a.sense_amplifiers for a in arrays),
        },
    }


def equal_memory_aug(model_name: str, bits: int = 32, max_aug: int = 64) -> float:
    """The aug at which the all-binarized network takes as many bytes as the binarized
    classifier at aug 1 with its real layers at ``bits`` (32 or 8): the paper's "BNN of
    equivalent number of bits", linear between the integer augs around it (1.0 when the
    full network at aug 1 is already as large); ValueError beyond ``max_aug``."""
    key = {32: "bytes_mixed_fp32", 8: "bytes_mixed_int8"}[bits]
    target = memory_report(model_name, "classifier", 1)[key]
    previous = None
    for aug in range(1, max_aug + 1):
        size = memory_report(model_name, "full", aug)[key]
        if size >= target:
            return 1.0 if previous is None else aug - 1 + (target - previous) / (size - previous)
        previous = size
    raise ValueError(f"{model_name}: the full network stays below the classifier's "
                     f"{target:,} B up to aug {max_aug}")


def human_bytes(n: float) -> str:
    """Bytes with a binary unit: '1,222,088 B (1.17 MiB)'."""
    for unit, size in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n:,.0f} B ({n / size:.2f} {unit})"
    return f"{n:,.0f} B"
