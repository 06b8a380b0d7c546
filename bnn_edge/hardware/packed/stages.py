"""The stages a packed network runs: PyTorch modules, a packed convolution, the packed
classifier. Each takes the previous stage's output (a tensor or :class:`Bits`) and returns its own.

- **packed convolutions**: a binary conv whose input is a sign, with ``[max pool] [batch
  norm] sign`` after it folded into integer thresholds (outputs packed bits), or else
  outputting the real conv values (d + bias) to PyTorch;
- **the packed classifier**: the binary fully connected layers, folded exactly as the
  export does (docs/export.md), run back to back in one kernel call, or from
  ``int8_min_rows`` rows on as exact int8 products (:mod:`~bnn_edge.hardware.packed.int8`);
- **PyTorch stages** for the rest, on copies of the network's modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from bnn_edge.hardware.packed import kernels
from bnn_edge.hardware.packed.fold import FoldedLayer
from bnn_edge.hardware.packed.int8 import Int8Chain, check_min_rows
from bnn_edge.hardware.packed.layouts import BitLayout, Bits, as_tensor, as_words
from bnn_edge.hardware.packed.product import DOT, Layer
from bnn_edge.hardware.packed.weights import PackedWeights, TorchWeights, placed_words


@dataclass(eq=False)
class TorchStage:
    """Modules run by PyTorch (copies of the network's, in eval mode)."""

    names: list[str]
    modules: nn.Sequential
    weights: list[TorchWeights] = field(default_factory=list)

    @torch.no_grad()
    def run(self, act, hidden: dict | None = None) -> torch.Tensor:
        return self.modules(as_tensor(act))


@dataclass(eq=False)
class ConvStage:
    """A binary convolution on packed input bits: outputs bits (folded) or real conv values."""

    weights: PackedWeights
    in_layout: BitLayout
    out_layout: BitLayout  # after the pool, if any
    kernel: int  # taps along the positions
    stride: int
    conv_positions: int  # output positions before the pool
    pool: tuple[int, int] | None = None  # (kernel, stride) of a max pool, BITS only
    flip_words: np.ndarray | None = None  # (wc,) uint64: channels whose rule is d <= t
    bias: torch.Tensor | None = None  # DOT: added to d, as the conv would
    sign_name: str | None = None  # the sign module whose output this stage computes

    @property
    def layer(self) -> Layer:
        return self.weights.layer

    def run(self, act, hidden: dict | None = None):
        words = as_words(act, self.in_layout)
        n = words.shape[0]
        wc = self.in_layout.wc
        out = kernels.run(self.layer, words, n * self.conv_positions, self.conv_positions,
                          self.in_layout.words, self.stride * wc)
        if self.layer.mode == DOT:
            d = out.reshape(n, self.conv_positions, self.layer.m)
            t = torch.from_numpy(d).to(torch.float32)
            if self.out_layout.kind == "seq":
                t = t.permute(0, 2, 1)
            elif self.out_layout.kind == "cols":
                t = t.permute(0, 2, 1).unsqueeze(2)
            else:
                _, h, w = self.out_layout.shape
                t = t.reshape(n, h, w, self.layer.m).permute(0, 3, 1, 2)
            t = t.contiguous()
            if self.bias is not None:
                t = t + self.bias.reshape(1, -1, *([1] * (t.dim() - 2)))
            return t
        bits = out.reshape(n, self.conv_positions, self.layer.out_words)
        if self.pool is not None:
            bits = pool_bits(bits, *self.pool, self.flip_words)
        result = Bits(np.ascontiguousarray(bits).reshape(n, self.out_layout.words),
                      self.out_layout)
        if hidden is not None and self.sign_name is not None:
            hidden[self.sign_name] = self.out_layout.unpack(result.words)
        return result


def pool_bits(bits: np.ndarray, kernel: int, stride: int, flip_words: np.ndarray) -> np.ndarray:
    """Max pool of sign outputs on bits (N, P, wc): OR over the window, AND where flipped.

    For a channel whose rule is +1 iff d >= t, sign(max d) is +1 iff some d >= t (OR);
    where it is +1 iff d <= t (negative batch-norm scale), iff every d <= t (AND).
    """
    positions = (bits.shape[1] - kernel) // stride + 1
    starts = np.arange(positions) * stride
    any_on = np.zeros((bits.shape[0], positions, bits.shape[2]), np.uint64)
    all_on = np.full_like(any_on, np.uint64(0xFFFFFFFFFFFFFFFF))
    for i in range(kernel):
        window = bits[:, starts + i]
        any_on |= window
        all_on &= window
    return (any_on & ~flip_words) | (all_on & flip_words)


@dataclass(eq=False)
class ClassifierStage:
    """The binary fully connected layers: hidden layers to bits, the last to real scores.

    Scores of batches of at least ``int8_min_rows`` rows (None: never) come from the exact
    int8 route, identical outputs; hidden outputs always from the popcount kernel.
    """

    weights: list[PackedWeights]
    in_layout: BitLayout
    sign_names: list[str]  # the sign after each hidden layer
    int8_min_rows: int | None = None
    chain: kernels.Chain | None = None
    int8: Int8Chain | None = None

    def __post_init__(self):
        check_min_rows(self.int8_min_rows)
        layers = [w.layer for w in self.weights]
        self.chain = kernels.Chain(layers)
        if self.int8_min_rows is not None:
            cols = None if self.in_layout.kind == "flat" else self.in_layout.bit_index()
            self.int8 = Int8Chain(layers, cols)

    def scores(self, x: np.ndarray, packed: bool = False) -> np.ndarray:
        """Scores of float rows (x >= 0 is +1) or packed words: int8 route for large batches."""
        if self.int8 is not None and x.shape[0] >= self.int8_min_rows:
            return self.int8(x, packed)
        return self.chain(x, packed)

    def run(self, act, hidden: dict | None = None) -> np.ndarray:
        if hidden is None:
            if isinstance(act, Bits) and act.layout == self.in_layout:
                return self.scores(act.words, packed=True)
            if not isinstance(act, Bits) and self.in_layout.kind == "flat":
                x = act.reshape(act.shape[0], self.in_layout.features).to(
                    torch.float32).contiguous().numpy()
                return self.scores(x)
        words = as_words(act, self.in_layout)
        n = words.shape[0]
        for w, name in zip(self.weights[:-1], self.sign_names, strict=True):
            words = kernels.run(w.layer, words, n)
            if hidden is not None:
                hidden[name] = BitLayout("flat", (w.layer.m,)).unpack(words)
        return kernels.run(self.weights[-1].layer, words, n)

    @classmethod
    def from_folded(cls, names: list[str], folded: list[FoldedLayer], in_layout: BitLayout,
                    sign_names: list[str], int8_min_rows: int | None = None) -> ClassifierStage:
        """Packed layers from export-form folded layers (uint8 bits in PyTorch order)."""
        weights = []
        for k, (name, f) in enumerate(zip(names, folded, strict=True)):
            first = k == 0
            positions = in_layout.bit_index() if first and in_layout.kind != "flat" else None
            kw = in_layout.words if first else -(-f.in_features // 64)
            bits = np.unpackbits(f.weight_bits, axis=1, count=f.in_features,
                                 bitorder="little").astype(bool)
            words = placed_words(bits, kw, positions)
            if f.is_last:
                layer = Layer.scores(words, f.in_features, f.scale, f.offset)
            else:
                layer = Layer.hidden(words, f.in_features, f.threshold, f.flip)
            weights.append(PackedWeights(name, (f.out_features, f.in_features), layer,
                                         positions))
        return cls(weights, in_layout, sign_names, int8_min_rows)
