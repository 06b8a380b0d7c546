"""The numpy twin of the compiled kernels: the same products, packing and XORs, identical
results; it runs where the kernel is missing or ``BNN_EDGE_PACKED_ISA=numpy`` asks for it."""

from __future__ import annotations

import numpy as np

from bnn_edge.hardware.packed.product import DOT, SCORES, Layer


def dot(x: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """d = n - 2 * popcount(x XOR w) of input words (rows, k) and weight words (m, k).

    One word position at a time: XOR of every input with every weight row, popcount,
    accumulate, so the working set stays (rows, m) whatever the width.
    """
    mismatches = np.zeros((x.shape[0], w.shape[0]), np.int64)
    for kk in range(x.shape[1]):
        mismatches += np.bitwise_count(np.bitwise_xor.outer(x[:, kk], w[:, kk]))
    return n - 2 * mismatches


def pack(x: np.ndarray, words: int) -> np.ndarray:
    """Float32 rows (rows, cols) -> bits (rows, words), bit = x >= 0."""
    rows, cols = x.shape
    bits = np.zeros((rows, words * 64), bool)
    bits[:, :cols] = x >= 0
    return np.packbits(bits, axis=1, bitorder="little").view("<u8").astype(np.uint64)


def pack_transposed(x: np.ndarray, words: int) -> np.ndarray:
    """Channel-major float32 (n, f, p) -> channels-last bits (n, p, words), bit = x >= 0."""
    n, f, p = x.shape
    rows = np.ascontiguousarray(x.transpose(0, 2, 1)).reshape(n * p, f)
    return pack(rows, words).reshape(n, p, words)


def run(layer: Layer, x: np.ndarray, out: np.ndarray, rows: int, n_pos: int,
        sample_stride: int, pos_stride: int) -> None:
    """The product into ``out``: identical results to the kernel, one word position at a time."""
    k, m = layer.k, layer.m
    r = np.arange(rows, dtype=np.int64)
    start = (r // n_pos) * sample_stride + (r % n_pos) * pos_stride
    xs = x[start[:, None] + np.arange(k)]  # (rows, k)
    d = dot(xs, layer.rows(), layer.n)
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


def run_chain(layers: list[Layer], x: np.ndarray, packed: bool) -> np.ndarray:
    """Layers run one after another on float rows (packed as x >= 0) or packed words."""
    rows = x.shape[0]
    bits = x if packed else pack(np.ascontiguousarray(x, np.float32), layers[0].k)
    for layer in layers:
        out = layer.new_output(rows)
        run(layer, np.ascontiguousarray(bits).reshape(-1), out, rows, 1, layer.k, 0)
        bits = out
    return bits


def xor_words(words: np.ndarray, index: np.ndarray, masks: np.ndarray) -> None:
    """``words[index[i]] ^= masks[i]`` in turn; IndexError for an index out of range."""
    if len(index) and (index.min() < 0 or index.max() >= words.size):
        raise IndexError("xor_words: index out of range")
    np.bitwise_xor.at(words, index, masks)
