"""Where a batch of +-1 activations sits in packed 64-bit words (:class:`BitLayout`), and
packed activations (:class:`Bits`) as they pass between the engine's stages.

Between packed stages activations stay packed, channels-last: each position of a
sequence holds its features in whole 64-bit words, so the receptive field of a 1-D conv
output is a contiguous run of words and the conv is a product with overlapping input rows
(no im2col).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from bnn_edge.hardware.packed import kernels


@dataclass(frozen=True)
class BitLayout:
    """Where the elements of a per-sample (C, *S) +-1 tensor sit in packed words.

    ``kind``: ``flat`` (one position, PyTorch's flatten order), ``seq`` ((C, L): L
    positions of C features), ``cols`` ((C, H, W): W positions of C*H features, c major),
    ``pixels`` ((C, H, W): H*W positions of C features). Every position takes ``wc`` whole
    words; padding bits are 0.
    """

    kind: str
    shape: tuple[int, ...]

    @property
    def positions(self) -> int:
        if self.kind == "flat":
            return 1
        if self.kind == "seq":
            return self.shape[1]
        if self.kind == "cols":
            return self.shape[2]
        return self.shape[1] * self.shape[2]

    @property
    def features(self) -> int:
        if self.kind == "flat":
            return math.prod(self.shape)
        if self.kind == "cols":
            return self.shape[0] * self.shape[1]
        return self.shape[0]

    @property
    def wc(self) -> int:
        """Words per position."""
        return -(-self.features // 64)

    @property
    def words(self) -> int:
        """Words per sample."""
        return self.positions * self.wc

    def bit_index(self) -> np.ndarray:
        """Bit position (in a sample's words) of every element, in PyTorch's flatten order."""
        idx = np.arange(math.prod(self.shape), dtype=np.int64)
        if self.kind == "flat":
            return idx
        if self.kind == "seq":
            c, t = np.divmod(idx, self.shape[1])
            return t * self.wc * 64 + c
        ch, w = np.divmod(idx, self.shape[2])  # ch = c * H + h
        if self.kind == "cols":
            return w * self.wc * 64 + ch
        c, h = np.divmod(ch, self.shape[1])
        return (h * self.shape[2] + w) * self.wc * 64 + c

    def pack(self, t: torch.Tensor) -> np.ndarray:
        """Pack a real tensor (N, C, *S) as bits t >= 0: (N, words) uint64."""
        n = t.shape[0]
        arr = t.detach().to(torch.float32).contiguous().numpy()
        if self.kind == "flat":
            return kernels.pack(arr.reshape(n, self.features), self.wc)
        # channel-major (N, features, positions) as stored for seq, cols and pixels
        arr = arr.reshape(n, self.features, self.positions)
        return kernels.pack_transposed(arr, self.wc).reshape(n, self.words)

    def unpack(self, words: np.ndarray) -> np.ndarray:
        """Bits (N, words) -> +-1 int8 (N, C, *S) in PyTorch's layout."""
        n = words.shape[0]
        b = np.ascontiguousarray(words, np.uint64).view(np.uint8).reshape(
            n, self.positions, self.wc * 8)
        bits = np.unpackbits(b, axis=2, bitorder="little")[:, :, :self.features]
        pm1 = bits.astype(np.int8) * 2 - 1
        if self.kind == "flat":
            return pm1.reshape(n, *self.shape)
        if self.kind == "seq":
            return np.ascontiguousarray(pm1.transpose(0, 2, 1))
        c, h, w = self.shape
        if self.kind == "cols":
            return np.ascontiguousarray(pm1.reshape(n, w, c, h).transpose(0, 2, 3, 1))
        return np.ascontiguousarray(pm1.reshape(n, h, w, c).transpose(0, 3, 1, 2))


@dataclass
class Bits:
    """A batch of packed activations: ``words`` (N, layout.words) uint64."""

    words: np.ndarray
    layout: BitLayout

    def tensor(self) -> torch.Tensor:
        return torch.from_numpy(self.layout.unpack(self.words)).to(torch.float32)


def as_tensor(act) -> torch.Tensor:
    """An activation as a tensor: packed bits unpacked to +-1, a tensor as it is."""
    return act.tensor() if isinstance(act, Bits) else act


def as_words(act, layout: BitLayout) -> np.ndarray:
    """An activation's words in ``layout``: packed bits as they are where the layout matches."""
    if isinstance(act, Bits) and act.layout == layout:
        return act.words
    return layout.pack(as_tensor(act))

