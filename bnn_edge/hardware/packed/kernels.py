"""Packed binary products (see :mod:`~bnn_edge.hardware.packed.product`): the compiled
kernel (``bnn_edge.hardware.packed._xnor``) or its :mod:`~bnn_edge.hardware.packed.numpy_twin`.

Bits are 64-bit little-endian words (bit j of word k is feature 64k + j; 1 = +1, padding
0), which is the export contract's byte order read eight bytes at a time.

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

import numpy as np
import torch  # noqa: F401  (loads torch's OpenMP runtime first, which the kernel then shares)

from bnn_edge.errors import ConfigError
from bnn_edge.hardware.packed import numpy_twin
from bnn_edge.hardware.packed.product import BITS, DOT, Layer

ENV = "BNN_EDGE_PACKED_ISA"
LEVELS = ("scalar", "avx2", "avx512")  # what BNN_EDGE_PACKED_ISA names, lowest first
ISA_NAMES = ("scalar", "avx2", "avx512-vpopcntdq")  # what isa() reports


class PackedEngineWarning(RuntimeWarning):
    """The compiled kernel is missing; the packed engine runs its (slower) numpy path."""


try:
    from bnn_edge.hardware.packed import _xnor
except ImportError as _error:  # no compiler at install time, or a foreign build
    _xnor = None
    warnings.warn_explicit(
        f"the compiled XNOR kernel bnn_edge.hardware.packed._xnor is not available "
        f"({_error}); the packed engine runs its numpy path",
        PackedEngineWarning, filename="bnn_edge.hardware.packed.kernels", lineno=0)

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
        numpy_twin.run(layer, x.reshape(-1), out, rows, n_pos, sample_stride, pos_stride)
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
        return numpy_twin.pack(x, words)
    out = np.empty((rows, words), np.uint64)
    _xnor.pack(x, out, rows, cols, 1, words, _active, _threads())
    return out


def pack_transposed(x: np.ndarray, words: int | None = None) -> np.ndarray:
    """Channel-major floats (n, f, p) -> channels-last bits (n, p, words), bit = x >= 0."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, f, p = x.shape
    words = -(-f // 64) if words is None else words
    if _active < 0:
        return numpy_twin.pack_transposed(x, words)
    out = np.empty((n, p, words), np.uint64)
    _xnor.pack(x, out, n, f, p, words, _active, _threads())
    return out


def xor_words(words: np.ndarray, index: np.ndarray, masks: np.ndarray) -> None:
    """``words[index[i]] ^= masks[i]`` for every i, in place (repeated indices allowed)."""
    index = np.ascontiguousarray(index, dtype=np.int64)
    masks = np.ascontiguousarray(masks, dtype=np.uint64)
    if _xnor is None or _active < 0:
        numpy_twin.xor_words(words, index, masks)
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
            return numpy_twin.run_chain(self.layers, x, packed)
        x = np.ascontiguousarray(x, np.uint64 if packed else np.float32)
        out = np.empty((rows, self._m), self._dtype)
        _xnor.run_chain(self._native, x, out, rows, x.shape[1], packed, _active,
                        torch.get_num_threads())
        return out
