"""The exact int8 route for large batches: packed layers run as +-1 int8 matrix products.

For +-1 inputs and weights, ``d = x . w`` summed in int32 (``torch._int_mm``) is the same
integer as the popcount kernel's ``n - 2 * popcount(x XOR w)``, so thresholds (hidden
layers) and ``((float)d + pre) * mul + add`` (scores, three float32 roundings as in the
kernel, which is built with ``-ffp-contract=off``) give bit-identical outputs.
It wins where int8 matrix units outrun VPOPCNTDQ (AMX-INT8); :class:`Int8Chain` is used
from a batch of ``int8_min_rows`` rows (docs/export.md has the measured crossover).
"""

from __future__ import annotations

import numpy as np
import torch

from bnn_edge.hardware.packed.product import BITS, DOT, Layer


def check_min_rows(value) -> int | None:
    """``int8_min_rows`` as given, or ValueError: a batch size >= 1, or None (never)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ValueError(f"int8_min_rows: {value!r}; a batch size >= 1 or None (never) expected")
    return value


def pm1_columns(words: np.ndarray, cols: np.ndarray) -> torch.Tensor:
    """Packed rows (N, k) uint64 -> +-1 int8 (N, len(cols)) of the bits at ``cols``."""
    n = words.shape[0]
    bytes_ = np.ascontiguousarray(words, np.uint64).view(np.uint8).reshape(n, -1)
    bits = np.unpackbits(bytes_, axis=1, bitorder="little")[:, cols]
    return pm1(torch.from_numpy(bits))


def pm1(on: torch.Tensor) -> torch.Tensor:
    """+1 where ``on``, else -1, as int8 (an int8 multiply-add: ``torch.where`` is ~10x slower)."""
    return on.to(torch.int8).mul_(2).sub_(1)


def firing_rule(layer: Layer) -> tuple[torch.Tensor, torch.Tensor]:
    """A BITS layer's rule as (s, s * t), int32: +1 iff s * d >= s * t (s = -1 where flipped)."""
    m = layer.m
    flip = np.unpackbits(layer.flip_bits, bitorder="little")[:m].astype(bool)
    s = np.where(flip, -1, 1).astype(np.int32)
    return torch.from_numpy(s), torch.from_numpy(s * layer.thresholds[:m])


def fire(d: torch.Tensor, rule: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """+-1 int8 outputs of int32 products ``d`` under a :func:`firing_rule`."""
    s, st = rule
    return pm1(d * s >= st)


def layer_matrix(layer: Layer, cols: np.ndarray) -> torch.Tensor:
    """A layer's weights as +-1 int8 (fan-in, m), the fan-in taken at bit positions ``cols``."""
    return pm1_columns(layer.rows(), cols).T.contiguous()


class Int8Chain:
    """The layers of a :class:`~bnn_edge.hardware.packed.kernels.Chain` as int8 products.

    ``cols``: bit position of each fan-in element of the first layer in its input words
    (None: the first ``n`` bits); later layers read the previous one's outputs in order.
    """

    def __init__(self, layers: list[Layer], cols: np.ndarray | None = None):
        if layers[-1].mode == BITS or any(layer.mode != BITS for layer in layers[:-1]):
            raise ValueError("an int8 chain is hidden (BITS) layers and one DOT or SCORES layer")
        self.layers = layers
        self.cols = np.arange(layers[0].n) if cols is None else np.asarray(cols, np.int64)
        self.words = [layer.weights.copy() for layer in layers]  # what self.mats were made of
        self.mats = [self._matrix(k) for k in range(len(layers))]
        self.rules = [firing_rule(layer) if layer.mode == BITS else None for layer in layers]

    def _matrix(self, k: int) -> torch.Tensor:
        return layer_matrix(self.layers[k], self.cols if k == 0 else np.arange(self.layers[k].n))

    def _refresh(self) -> None:
        """Rebuild the matrices of layers whose packed words changed (bit errors, flip())."""
        for k, layer in enumerate(self.layers):
            if not np.array_equal(layer.weights, self.words[k]):
                self.words[k] = layer.weights.copy()
                self.mats[k] = self._matrix(k)

    def __call__(self, x: np.ndarray, packed: bool = False) -> np.ndarray:
        """Scores (or d) of the last layer for float rows (+1 iff x >= 0) or packed words."""
        self._refresh()
        return self.forward(x, packed)

    @torch.inference_mode()
    def forward(self, x: np.ndarray, packed: bool = False) -> np.ndarray:
        """As calling it, without checking the packed weights for changes first."""
        if packed:
            act = pm1_columns(x, self.cols)
        else:
            rows = torch.from_numpy(np.ascontiguousarray(x, np.float32))
            act = pm1(rows >= 0)
        for mat, rule in zip(self.mats, self.rules, strict=True):
            d = torch._int_mm(act, mat)
            if rule is not None:
                act = fire(d, rule)
        if self.layers[-1].mode == DOT:
            return d.numpy()
        last = self.layers[-1]
        return (((d.to(torch.float32) + torch.from_numpy(last.pre)) *
                 torch.from_numpy(last.mul)) + torch.from_numpy(last.add)).numpy()
