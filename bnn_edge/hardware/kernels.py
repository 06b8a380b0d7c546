"""Packed binary products: the compiled kernel (``bnn_edge.hardware._xnor``) or its numpy twin.

Bits are 64-bit little-endian words (bit j of word k is feature 64k + j; 1 = +1, padding
0), which is the export contract's byte order read eight bytes at a time. A product takes
input rows of ``k`` words and a :class:`Layer` (``m`` outputs, fan-in ``n``, weights
interleaved by blocks of 8 outputs, see :func:`interleave`) and computes, per row and
output, d = n - 2 * popcount(x XOR w), then returns one of:

- ``DOT``: d as int32 (rows, m);
- ``BITS``: packed output bits (rows, ceil(m / 64)) words, +1 iff d >= t (d <= t where the
  output's flip bit is set), so the next binary layer reads them as they are;
- ``SCORES``: float32 ((float)d + pre) * mul + add.

The instruction set is the best this CPU has (``avx512-vpopcntdq``, ``avx2``, ``scalar``),
capped by the environment variable ``BNN_EDGE_PACKED_ISA`` (``avx512``, ``avx2``,
``scalar``, or ``numpy`` for the numpy twin) or :func:`use_isa`. Without the compiled
module (no C compiler at install) everything runs on the numpy twin, after one warning.
Both give identical results; threads follow ``torch.get_num_threads()``.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch  # noqa: F401  (loads torch's OpenMP runtime first, which the kernel then shares)

from bnn_edge.errors import ConfigError
from bnn_edge.hardware.packed import integer_thresholds

ENV = "BNN_EDGE_PACKED_ISA"
LEVELS = ("scalar", "avx2", "avx512")  # what BNN_EDGE_PACKED_ISA names, lowest first
ISA_NAMES = ("scalar", "avx2", "avx512-vpopcntdq")  # what isa() reports
DOT, BITS, SCORES = 0, 1, 2


class PackedEngineWarning(RuntimeWarning):
    """The compiled kernel is missing; the packed engine runs its (slower) numpy path."""


try:
    from bnn_edge.hardware import _xnor
except ImportError as _error:  # no compiler at install time, or a foreign build
    _xnor = None
    warnings.warn_explicit(
        f"the compiled XNOR kernel bnn_edge.hardware._xnor is not available ({_error}); "
        f"the packed engine runs its numpy path",
        PackedEngineWarning, filename="bnn_edge.hardware.kernels", lineno=0)

_BEST = -1 if _xnor is None else int(_xnor.best_isa())


def _level(value: str | None) -> int:
    """The instruction-set index for a level name (capped at what the CPU has); -1 is numpy."""
    if value is None or value == "":
        return _BEST
    if value == "numpy":
        return -1
    if value not in LEVELS:
        raise ConfigError(ENV, value, f"one of {', '.join(LEVELS)} or numpy (unset: the best)")
    return min(LEVELS.index(value), _BEST)


_active = _level(os.environ.get(ENV))


def isa() -> str:
    """The instruction set products run with now: an ``ISA_NAMES`` entry, or ``numpy``."""
    return "numpy" if _active < 0 else ISA_NAMES[_active]


def best_isa() -> str:
    """The best instruction set of the compiled kernel on this CPU (``numpy`` without it)."""
    return "numpy" if _BEST < 0 else ISA_NAMES[_BEST]


def compiled() -> bool:
    """Whether the compiled kernel is installed."""
    return _xnor is not None


def openmp() -> bool:
    """Whether the compiled kernel runs on several threads (built with OpenMP)."""
    return _xnor is not None and bool(_xnor.openmp())


def set_isa(level: str | None) -> str:
    """Cap the instruction set at ``level`` (a ``LEVELS`` name, ``numpy``, None: the best)."""
    global _active
    _active = _level(level)
    return isa()


@contextmanager
def use_isa(level: str | None):
    """Run the block with the instruction set capped at ``level`` (see :func:`set_isa`)."""
    global _active
    before = _active
    set_isa(level)
    try:
        yield isa()
    finally:
        _active = before


def _threads() -> int:
    return torch.get_num_threads()


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


def run(layer: Layer, x: np.ndarray, rows: int, n_pos: int = 1, sample_stride: int | None = None,
        pos_stride: int = 0) -> np.ndarray:
    """The product of ``layer`` with ``rows`` input rows of ``layer.k`` words taken from ``x``.

    Row r starts at word ``(r // n_pos) * sample_stride + (r % n_pos) * pos_stride`` of
    ``x`` (flat uint64): consecutive rows by default, overlapping windows for a convolution.
    """
    if sample_stride is None:
        sample_stride = layer.k
    out = layer.new_output(rows)
    x = np.ascontiguousarray(x, dtype=np.uint64)
    if _active < 0:
        _run_numpy(layer, x.reshape(-1), out, rows, n_pos, sample_stride, pos_stride)
    else:
        a, b, c = layer.args()
        _xnor.gemm(x, layer.weights, out, a, b, c, rows, n_pos, sample_stride, pos_stride,
                   layer.k, layer.m, layer.n, layer.mode, _active, _threads())
    return out


def pack(x: np.ndarray, words: int | None = None) -> np.ndarray:
    """Float rows (rows, cols) -> bits (rows, words) with bit = x >= 0 (sign(0) = +1; NaN: -1)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, cols = x.shape
    words = -(-cols // 64) if words is None else words
    if _active < 0:
        return _pack_numpy(x, words)
    out = np.empty((rows, words), np.uint64)
    _xnor.pack(x, out, rows, cols, 1, words, _active, _threads())
    return out


def pack_transposed(x: np.ndarray, words: int | None = None) -> np.ndarray:
    """Channel-major floats (n, f, p) -> channels-last bits (n, p, words), bit = x >= 0."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, f, p = x.shape
    words = -(-f // 64) if words is None else words
    if _active < 0:
        rows = np.ascontiguousarray(x.transpose(0, 2, 1)).reshape(n * p, f)
        return _pack_numpy(rows, words).reshape(n, p, words)
    out = np.empty((n, p, words), np.uint64)
    _xnor.pack(x, out, n, f, p, words, _active, _threads())
    return out


def xor_words(words: np.ndarray, index: np.ndarray, masks: np.ndarray) -> None:
    """``words[index[i]] ^= masks[i]`` for every i, in place (repeated indices allowed)."""
    index = np.ascontiguousarray(index, dtype=np.int64)
    masks = np.ascontiguousarray(masks, dtype=np.uint64)
    if _xnor is None or _active < 0:
        if len(index) and (index.min() < 0 or index.max() >= words.size):
            raise IndexError("xor_words: index out of range")
        np.bitwise_xor.at(words, index, masks)
    else:
        _xnor.xor_words(words, index, masks)


class Chain:
    """Fully connected layers run back to back in one kernel call (bits stay packed between)."""

    def __init__(self, layers: list[Layer]):
        if not layers or any(layer.mode != BITS for layer in layers[:-1]):
            raise ValueError("a chain is hidden (BITS) layers and one last layer")
        for a, b in zip(layers, layers[1:], strict=False):
            if a.out_words != b.k:
                raise ValueError("chain layers do not fit: outputs of one != inputs of the next")
        self.layers = layers
        self._m = layers[-1].m
        self._dtype = np.int32 if layers[-1].mode == DOT else np.float32
        self._native = None
        if _xnor is not None:
            self._native = _xnor.make_chain([(layer.weights, layer.k, layer.m, layer.n,
                                              layer.mode, *layer.args()) for layer in layers])

    def __call__(self, x: np.ndarray, packed: bool = False) -> np.ndarray:
        """Scores (or d) of the last layer for float rows (packed as x >= 0) or packed words."""
        rows = x.shape[0]
        if _active < 0 or self._native is None:
            bits = x if packed else _pack_numpy(np.ascontiguousarray(x, np.float32),
                                                self.layers[0].k)
            for layer in self.layers:
                out = layer.new_output(rows)
                _run_numpy(layer, np.ascontiguousarray(bits).reshape(-1), out, rows, 1,
                           layer.k, 0)
                bits = out
            return bits
        x = np.ascontiguousarray(x, np.uint64 if packed else np.float32)
        out = np.empty((rows, self._m), self._dtype)
        _xnor.run_chain(self._native, x, out, rows, x.shape[1], packed, _active,
                        torch.get_num_threads())
        return out


# ------------------------------------------------------------------ the numpy twin


def _pack_numpy(x: np.ndarray, words: int) -> np.ndarray:
    rows, cols = x.shape
    bits = np.zeros((rows, words * 64), bool)
    bits[:, :cols] = x >= 0
    return np.packbits(bits, axis=1, bitorder="little").view("<u8").astype(np.uint64)


def _run_numpy(layer: Layer, x: np.ndarray, out: np.ndarray, rows: int, n_pos: int,
               sample_stride: int, pos_stride: int) -> None:
    """The product in numpy: identical results to the kernel, one word position at a time."""
    k, m = layer.k, layer.m
    mb = -(-m // 8)
    r = np.arange(rows, dtype=np.int64)
    start = (r // n_pos) * sample_stride + (r % n_pos) * pos_stride
    xs = x[start[:, None] + np.arange(k)]  # (rows, k)
    w = layer.weights.reshape(mb, k, 8).transpose(0, 2, 1).reshape(mb * 8, k)[:m]
    mismatches = np.zeros((rows, m), np.int64)
    for kk in range(k):
        mismatches += np.bitwise_count(np.bitwise_xor.outer(xs[:, kk], w[:, kk]))
    d = layer.n - 2 * mismatches
    if layer.mode == DOT:
        out[...] = d.astype(np.int32)
    elif layer.mode == SCORES:
        out[...] = ((d.astype(np.float32) + layer.pre) * layer.mul) + layer.add
    else:
        thr = layer.thresholds[:m].astype(np.int64)
        flip = np.unpackbits(layer.flip_bits, bitorder="little")[:m].astype(bool)
        on = np.where(flip, d <= thr, d >= thr)
        bits = np.zeros((rows, layer.out_words * 64), bool)
        bits[:, :m] = on
        out[...] = np.packbits(bits, axis=1, bitorder="little").view("<u8")
