"""The numpy reference of folded binary layers: XNOR-popcount on packed bytes (the numpy
twin's product) with the float thresholds of the export, to check the compiled engine and
time it against (docs/export.md)."""

from __future__ import annotations

import numpy as np

from bnn_edge.hardware.packed import numpy_twin
from bnn_edge.hardware.packed.fold import FoldedLayer, pack_pm1


def _as_words(packed: np.ndarray) -> np.ndarray:
    """View packed bytes as little-endian uint64 words (zero-padded to a multiple of 8)."""
    pad = (-packed.shape[-1]) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros((*packed.shape[:-1], pad), np.uint8)], -1)
    return np.ascontiguousarray(packed).view("<u8")


def packed_dot(x_bits: np.ndarray, w_bits: np.ndarray, n: int) -> np.ndarray:
    """d = n - 2 * popcount(x XOR w) for packed inputs (N, B) and weights (M, B) -> (N, M)."""
    return numpy_twin.dot(_as_words(x_bits), _as_words(w_bits), n)


def packed_forward(layers: list[FoldedLayer], x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Run folded layers on +-1 inputs (N, in): the hidden +-1 outputs and the final scores."""
    bits = pack_pm1(x)
    hidden = []
    for layer in layers:
        d = packed_dot(bits, layer.weight_bits, layer.in_features)
        if layer.is_last:
            return hidden, (layer.scale * d.astype(np.float32) + layer.offset).astype(np.float32)
        on = np.where(layer.flip, d <= layer.threshold, d >= layer.threshold)
        out = np.where(on, 1, -1).astype(np.int8)
        hidden.append(out)
        bits = pack_pm1(out)
    raise ValueError("the last folded layer must produce scores (scale and offset)")
