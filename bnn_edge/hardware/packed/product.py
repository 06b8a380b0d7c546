"""One packed binary product as the kernels take it: a :class:`Layer` and its output mode.

A product takes input rows of ``k`` 64-bit words (bit j of word k is feature 64k + j;
1 = +1, padding 0) and a layer (``m`` outputs, fan-in ``n``, weights interleaved by blocks
of 8 outputs, see :func:`interleave`) and computes, per row and output,
d = n - 2 * popcount(x XOR w), then returns one of:

- ``DOT``: d as int32 (rows, m);
- ``BITS``: packed output bits (rows, ceil(m / 64)) words, +1 iff d >= t (d <= t where the
  output's flip bit is set), so the next binary layer reads them as they are;
- ``SCORES``: float32 ((float)d + pre) * mul + add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnn_edge.hardware.packed.fold import integer_thresholds

DOT, BITS, SCORES = 0, 1, 2


def interleave(words: np.ndarray) -> np.ndarray:
    """(m, k) weight words -> the kernels' layout: blocks of 8 rows, word-major in a block.

    Word k of row 8b + l lands at ``[(b * k_words + k) * 8 + l]``; rows are zero-padded to
    a multiple of 8.
    """
    m, k = words.shape
    mb = -(-m // 8)
    padded = np.zeros((mb * 8, k), np.uint64)
    padded[:m] = words
    return np.ascontiguousarray(padded.reshape(mb, 8, k).transpose(0, 2, 1)).reshape(-1)


def interleaved_index(rows: np.ndarray, words: np.ndarray, k: int) -> np.ndarray:
    """Position in the interleaved array of word ``words`` of weight row ``rows``."""
    return ((rows // 8) * k + words) * 8 + rows % 8


@dataclass(eq=False)
class Layer:
    """One packed binary product, its weights in the kernels' layout, ready to run."""

    k: int  # words per input row
    m: int  # outputs
    n: int  # fan-in in features (d = n - 2 * mismatches)
    weights: np.ndarray  # uint64, interleave() layout, mb * k * 8
    mode: int = DOT
    thresholds: np.ndarray | None = None  # BITS: int32 (mb * 8,), padding INT32_MAX
    flip_bits: np.ndarray | None = None  # BITS: uint8 (mb,), bit l of byte b: output 8b + l
    pre: np.ndarray | None = None  # SCORES: float32 (m,)
    mul: np.ndarray | None = None
    add: np.ndarray | None = None

    @property
    def out_words(self) -> int:
        return -(-self.m // 64)

    @classmethod
    def hidden(cls, words: np.ndarray, n: int, threshold: np.ndarray, flip: np.ndarray) -> Layer:
        """A layer whose outputs are bits: +1 iff d >= threshold (d <= threshold if flip).

        Real thresholds become their exact integer form here, once (integer_thresholds).
        """
        m = words.shape[0]
        mb = -(-m // 8)
        thr = np.full(mb * 8, np.iinfo(np.int32).max, np.int32)
        thr[:m] = integer_thresholds(threshold, flip, n)
        flips = np.zeros(mb * 8, np.uint8)
        flips[:m] = np.asarray(flip, bool)
        return cls(words.shape[1], m, n, interleave(words), BITS, thr,
                   np.packbits(flips, bitorder="little"))

    @classmethod
    def scores(cls, words: np.ndarray, n: int, mul: np.ndarray, add: np.ndarray,
               pre: np.ndarray | None = None) -> Layer:
        """A layer whose outputs are real scores ((float)d + pre) * mul + add."""
        m = words.shape[0]
        pre = np.zeros(m, np.float32) if pre is None else pre
        return cls(words.shape[1], m, n, interleave(words), SCORES, pre=_f32(pre),
                   mul=_f32(mul), add=_f32(add))

    @classmethod
    def dot(cls, words: np.ndarray, n: int) -> Layer:
        """A layer whose outputs are the int32 dot products d."""
        return cls(words.shape[1], words.shape[0], n, interleave(words), DOT)

    def rows(self) -> np.ndarray:
        """The weight words back in row order: (m, k), undoing :func:`interleave`."""
        mb = -(-self.m // 8)
        return self.weights.reshape(mb, self.k, 8).transpose(0, 2, 1).reshape(
            mb * 8, self.k)[:self.m]

    def args(self) -> tuple:
        """The (a, b, c) parameter buffers of the kernel call for this layer's mode."""
        if self.mode == BITS:
            return self.thresholds, self.flip_bits, None
        if self.mode == SCORES:
            return self.pre, self.mul, self.add
        return None, None, None

    def new_output(self, rows: int) -> np.ndarray:
        if self.mode == BITS:
            return np.empty((rows, self.out_words), np.uint64)
        return np.empty((rows, self.m), np.int32 if self.mode == DOT else np.float32)


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)
