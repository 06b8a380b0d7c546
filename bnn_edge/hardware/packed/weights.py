"""A binary layer's weights inside the engine: packed for the kernels (:class:`PackedWeights`)
or run by PyTorch (:class:`TorchWeights`); both negate flat PyTorch positions (bit errors)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bnn_edge.hardware.packed import kernels
from bnn_edge.hardware.packed.product import Layer, interleaved_index


def placed_words(bits: np.ndarray, k: int, positions: np.ndarray | None) -> np.ndarray:
    """(m, n) bool weight bits, fan-in element i moved to bit ``positions[i]`` -> (m, k) words."""
    m, n = bits.shape
    full = np.zeros((m, k * 64), bool)
    if positions is None:
        full[:, :n] = bits
    else:
        full[:, positions] = bits
    return np.packbits(full, axis=1, bitorder="little").view("<u8").astype(np.uint64)


@dataclass(eq=False)
class PackedWeights:
    """A binary layer's weights inside a packed stage; maps PyTorch positions to words."""

    name: str
    shape: tuple[int, ...]  # the PyTorch weight shape
    layer: Layer
    positions: np.ndarray | None  # bit of each fan-in element (None: the same index)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def locate(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Word indices (in ``layer.weights``) and bit masks of flat PyTorch positions."""
        flat = np.asarray(flat, np.int64)
        fan_in = self.numel // self.shape[0]
        rows, col = np.divmod(flat, fan_in)
        bit = col if self.positions is None else self.positions[col]
        index = interleaved_index(rows, bit // 64, self.layer.k)
        return index, np.left_shift(np.uint64(1), (bit % 64).astype(np.uint64))

    def flip(self, flat: np.ndarray) -> None:
        """Negate the weights at flat PyTorch positions (an XOR; a second call undoes it)."""
        if len(flat):
            kernels.xor_words(self.layer.weights, *self.locate(flat))


@dataclass(eq=False)
class TorchWeights:
    """A binary layer run by PyTorch inside the engine (its weight holds the +-1 values)."""

    name: str
    module: nn.Module

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.module.weight.shape)

    @property
    def numel(self) -> int:
        return self.module.weight.numel()

    @torch.no_grad()
    def flip(self, flat: np.ndarray) -> None:
        if len(flat):
            w = self.module.weight.data.view(-1)
            idx = torch.from_numpy(np.asarray(flat, np.int64))
            w[idx] = -w[idx]

