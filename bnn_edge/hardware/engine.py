"""The packed engine: a binarized network's binary part run as packed bits (XNOR-popcount).

:meth:`PackedNet.from_module` (or :meth:`~PackedNet.from_checkpoint`) splits a network
(``features`` + ``classifier`` sequentials, as every network of the registry) into stages:

- **packed convolutions**: a binary conv whose input is a sign (groups 1, no padding,
  dilation 1; 1-D, 2-D spanning the whole input height like EEG's spatial conv, or 1x1).
  With ``[max pool] [batch norm] sign`` after it, pool, norm and sign fold into integer
  thresholds and the stage outputs packed bits (max pooling of the sign is an OR of the
  bits where the rule is d >= t, an AND where it is flipped, d <= t, since the pooled d is
  a max); otherwise it outputs the real conv values (d + bias) to PyTorch (EEG: average
  pool);
- **the packed classifier**: the binary fully connected layers, folded exactly as the
  export does (docs/export.md), run back to back in one kernel call;
- **PyTorch stages** for the rest: the first layer (real input), real convolutions,
  pooling to real values. They run on copies of the modules; the network passed in is
  never modified.

Between packed stages activations stay packed, channels-last: each position of a
sequence holds its features in whole 64-bit words, so the receptive field of a 1-D conv
output is a contiguous run of words and the conv is a product with overlapping input rows
(no im2col). Weights are re-laid out to match once, at build time.

Hidden bits are those of PyTorch; logits agree to float32 rounding (the folded last
layer). :class:`PackedClassifier` runs an exported folder (``model.npz`` +
``manifest.json``). Bit errors: :meth:`PackedNet.flip` XORs positions of a binary layer's
flattened PyTorch weight into the packed words (calling it again undoes them).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bnn_edge.errors import DataError
from bnn_edge.hardware import kernels
from bnn_edge.hardware.packed import FoldedLayer, fold_classifier, threshold_rule
from bnn_edge.models import BinarizableNet, probe
from bnn_edge.nn import (
    BinaryConv1d,
    BinaryConv2d,
    BinaryLayer,
    BinaryLinear,
    SignActivation,
    binary_sign,
)

EXPORT_FORMAT = "bnn_edge-export-1"
MANIFEST_MAX_BYTES = 1 << 20  # an export's manifest.json is a few KiB


# ------------------------------------------------------------------ layouts


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


def _input_tensor(x) -> torch.Tensor:
    """A batch as a float32 CPU tensor: numpy arrays of any strides, tensors needing grad."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32)
    return torch.from_numpy(np.ascontiguousarray(x, np.float32))


def _as_tensor(act) -> torch.Tensor:
    return act.tensor() if isinstance(act, Bits) else act


def _as_words(act, layout: BitLayout) -> np.ndarray:
    if isinstance(act, Bits) and act.layout == layout:
        return act.words
    return layout.pack(_as_tensor(act))


def _placed_words(bits: np.ndarray, k: int, positions: np.ndarray | None) -> np.ndarray:
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
    layer: kernels.Layer
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
        index = kernels.interleaved_index(rows, bit // 64, self.layer.k)
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


# ------------------------------------------------------------------ stages


@dataclass(eq=False)
class TorchStage:
    """Modules run by PyTorch (copies of the network's, in eval mode)."""

    names: list[str]
    modules: nn.Sequential
    weights: list[TorchWeights] = field(default_factory=list)

    @torch.no_grad()
    def run(self, act, hidden: dict | None = None) -> torch.Tensor:
        return self.modules(_as_tensor(act))


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
    def layer(self) -> kernels.Layer:
        return self.weights.layer

    def run(self, act, hidden: dict | None = None):
        words = _as_words(act, self.in_layout)
        n = words.shape[0]
        wc = self.in_layout.wc
        out = kernels.run(self.layer, words, n * self.conv_positions, self.conv_positions,
                          self.in_layout.words, self.stride * wc)
        if self.layer.mode == kernels.DOT:
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
    """The binary fully connected layers: hidden layers to bits, the last to real scores."""

    weights: list[PackedWeights]
    in_layout: BitLayout
    sign_names: list[str]  # the sign after each hidden layer
    chain: kernels.Chain | None = None

    def __post_init__(self):
        self.chain = kernels.Chain([w.layer for w in self.weights])

    def run(self, act, hidden: dict | None = None) -> np.ndarray:
        if hidden is None:
            if isinstance(act, Bits) and act.layout == self.in_layout:
                return self.chain(act.words, packed=True)
            if not isinstance(act, Bits) and self.in_layout.kind == "flat":
                x = act.reshape(act.shape[0], self.in_layout.features).to(
                    torch.float32).contiguous().numpy()
                return self.chain(x)
        words = _as_words(act, self.in_layout)
        n = words.shape[0]
        for w, name in zip(self.weights[:-1], self.sign_names, strict=True):
            words = kernels.run(w.layer, words, n)
            if hidden is not None:
                hidden[name] = BitLayout("flat", (w.layer.m,)).unpack(words)
        return kernels.run(self.weights[-1].layer, words, n)

    @classmethod
    def from_folded(cls, names: list[str], folded: list[FoldedLayer], in_layout: BitLayout,
                    sign_names: list[str]) -> ClassifierStage:
        """Packed layers from export-form folded layers (uint8 bits in PyTorch order)."""
        weights = []
        for k, (name, f) in enumerate(zip(names, folded, strict=True)):
            first = k == 0
            positions = in_layout.bit_index() if first and in_layout.kind != "flat" else None
            kw = in_layout.words if first else -(-f.in_features // 64)
            bits = np.unpackbits(f.weight_bits, axis=1, count=f.in_features,
                                 bitorder="little").astype(bool)
            words = _placed_words(bits, kw, positions)
            if f.is_last:
                layer = kernels.Layer.scores(words, f.in_features, f.scale, f.offset)
            else:
                layer = kernels.Layer.hidden(words, f.in_features, f.threshold, f.flip)
            weights.append(PackedWeights(name, (f.out_features, f.in_features), layer,
                                         positions))
        return cls(weights, in_layout, sign_names)


# ------------------------------------------------------------------ the network


def _int(v) -> int:
    return v[0] if isinstance(v, tuple) else v


def _conv_geometry(m: nn.Module, shape: tuple[int, ...]):
    """(input layout, kernel taps, stride, output positions, output layout) or None."""
    if m.groups != 1 or any(p != 0 for p in m.padding) or any(d != 1 for d in m.dilation):
        return None
    if isinstance(m, BinaryConv1d):
        c, length = shape
        k, s = m.kernel_size[0], m.stride[0]
        out = (length - k) // s + 1
        return BitLayout("seq", (c, length)), k, s, out, BitLayout("seq", (m.out_channels, out))
    c, h, w = shape
    if m.kernel_size[0] == h:
        k, s = m.kernel_size[1], m.stride[1]
        out = (w - k) // s + 1
        return (BitLayout("cols", (c, h, w)), k, s, out,
                BitLayout("cols", (m.out_channels, 1, out)))
    if m.kernel_size == (1, 1) and m.stride == (1, 1):
        return (BitLayout("pixels", (c, h, w)), 1, 1, h * w,
                BitLayout("pixels", (m.out_channels, h, w)))
    return None


def _simple_max_pool(m: nn.Module) -> tuple[int, int] | None:
    if not isinstance(m, nn.MaxPool1d) or m.ceil_mode or m.return_indices:
        return None
    if _int(m.padding) != 0 or _int(m.dilation) != 1:
        return None
    k = _int(m.kernel_size)
    return k, _int(m.stride if m.stride is not None else k)


class PackedNet:
    """A network with its binary part packed (see the module docstring); predictions as numpy.

    >>> engine = PackedNet.from_checkpoint("logs/train/runs/<run>/checkpoints/last.ckpt")
    >>> scores = engine(x)           # (N, classes) float32, x: (N, *input shape)
    >>> engine.predict(x)            # classes
    """

    def __init__(self, net: nn.Module, input_shape: Sequence[int] | None = None):
        self.net = copy.deepcopy(net).cpu().float().eval()
        for m in self.net.modules():  # the copy must not call the caller's hooks
            m._forward_hooks.clear()
            m._forward_pre_hooks.clear()
        self.input_shape = None
        self._direct = None
        self.stages: list = []
        self.binary: list[PackedWeights | TorchWeights] = []
        self._fixed = input_shape is not None  # else another shape the network takes rebuilds
        if input_shape is None and isinstance(self.net, BinarizableNet):
            input_shape = self.net.input_shape
        if input_shape is not None:
            self._build(tuple(int(v) for v in input_shape))

    @classmethod
    def from_module(cls, net: nn.Module, input_shape: Sequence[int] | None = None) -> PackedNet:
        """The engine of ``net`` (a network, or a BNNClassifier whose ``net`` it takes)."""
        net = getattr(net, "net", net)
        return cls(net, input_shape)

    # -- planning

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.prepare(x) if isinstance(self.net, BinarizableNet) else x

    @torch.no_grad()
    def _build(self, input_shape: tuple[int, ...]) -> None:
        try:
            layers = probe(self.net, input_shape)
        except ValueError as e:
            raise ValueError(f"{e}: the packed engine runs networks of known layer order") \
                from None
        mods = [(layer.name, layer.module) for layer in layers]
        shapes = [layer.in_shape for layer in layers]
        self.input_shape = shapes[0]  # as the first layer sees it (after net.prepare)
        self._direct = None
        stages: list = []
        pending: list[tuple[str, nn.Module]] = []
        binary_in = False
        i = 0
        while i < len(mods):
            name, m = mods[i]
            stage, used = None, 0
            if binary_in and isinstance(m, BinaryLinear):
                stage = self._classifier(mods[i:], shapes[i], stages, pending)
                used = len(mods) - i
            elif binary_in and isinstance(m, BinaryConv1d | BinaryConv2d):
                stage, used = self._conv(mods, i, shapes)
            if stage is not None:
                self._flush(stages, pending, absorb=True)
                stages.append(stage)
                i += used
                binary_in = isinstance(stage, ConvStage) and stage.layer.mode == kernels.BITS
                continue
            pending.append((name, m))
            binary_in = isinstance(m, SignActivation) or (
                binary_in and isinstance(m, nn.Dropout | nn.Flatten | nn.Identity))
            i += 1
        self._flush(stages, pending, absorb=False)
        self.stages = stages
        if (len(stages) == 1 and isinstance(stages[0], ClassifierStage)
                and stages[0].in_layout.kind == "flat" and len(input_shape) == 1):
            self._direct = stages[0]  # rows in, scores out: no PyTorch on the way
        order = {name: k for k, (name, _) in enumerate(mods)}
        found = {w.name: w for s in stages for w in
                 (s.weights if isinstance(s, TorchStage | ClassifierStage) else [s.weights])}
        names = [n for n, m in mods if isinstance(m, BinaryLayer)]
        self.binary = [found[n] for n in sorted(names, key=order.__getitem__)]

    def _flush(self, stages: list, pending: list, absorb: bool) -> None:
        """Close the pending PyTorch modules as a stage; before a packed stage, trailing
        sign/dropout/flatten are dropped (packing takes the sign and flattens)."""
        if absorb:
            while pending and isinstance(pending[-1][1], SignActivation | nn.Dropout |
                                         nn.Flatten | nn.Identity):
                pending.pop()
        if pending:
            names = [n for n, _ in pending]
            modules = nn.Sequential(*[m for _, m in pending])
            weights = []
            for n, m in pending:
                if isinstance(m, BinaryLayer):
                    m.weight.data = binary_sign(m.weight.data)  # the stored +-1 form
                    weights.append(TorchWeights(n, m))
            stages.append(TorchStage(names, modules, weights))
        pending.clear()

    def _conv(self, mods, i: int, shapes) -> tuple[ConvStage | None, int]:
        name, conv = mods[i]
        geometry = _conv_geometry(conv, shapes[i])
        if geometry is None:
            return None, 0
        in_layout, k, s, positions, out_layout = geometry
        wc = in_layout.wc
        fan_in = conv.weight[0].numel()
        feat, tap = np.divmod(np.arange(fan_in, dtype=np.int64), k)
        bit_pos = tap * wc * 64 + feat
        w = (binary_sign(conv.weight.detach()).reshape(conv.out_channels, -1) > 0).numpy()
        words = _placed_words(w, k * wc, bit_pos)
        bias = (conv.bias.detach().clone() if conv.bias is not None
                else torch.zeros(conv.out_channels))

        j, pool = i + 1, None
        if out_layout.kind == "seq" and j < len(mods):
            pool = _simple_max_pool(mods[j][1])
            if pool is not None:
                j += 1
        while j < len(mods) and isinstance(mods[j][1], nn.Dropout):
            j += 1
        norm = None
        if j < len(mods) and isinstance(mods[j][1], nn.BatchNorm1d | nn.BatchNorm2d):
            norm = mods[j][1]
            j += 1
        while j < len(mods) and isinstance(mods[j][1], nn.Dropout):
            j += 1
        if j < len(mods) and isinstance(mods[j][1], SignActivation):
            d = torch.arange(-fan_in, fan_in + 1, 2, dtype=torch.float32)
            vals = d[None, None, :] + bias[None, :, None]  # (1, C, len(d))
            if isinstance(conv, BinaryConv2d):
                vals = vals.unsqueeze(2)
            on = (norm(vals) >= 0) if norm is not None else vals >= 0
            on = on.reshape(conv.out_channels, -1).T.numpy()
            try:
                threshold, flip = threshold_rule(on, fan_in)
            except ValueError:
                return None, 0
            layer = kernels.Layer.hidden(words, fan_in, threshold, flip)
            flips = np.zeros(out_layout.wc * 64, bool)
            flips[:conv.out_channels] = flip
            flip_words = np.packbits(flips, bitorder="little").view("<u8").astype(np.uint64)
            if pool is not None:
                pooled = (positions - pool[0]) // pool[1] + 1
                out_layout = BitLayout("seq", (conv.out_channels, pooled))
            weights = PackedWeights(name, tuple(conv.weight.shape), layer, bit_pos)
            return ConvStage(weights, in_layout, out_layout, k, s, positions, pool,
                             flip_words, sign_name=mods[j][0]), j + 1 - i
        layer = kernels.Layer.dot(words, fan_in)
        weights = PackedWeights(name, tuple(conv.weight.shape), layer, bit_pos)
        return ConvStage(weights, in_layout, out_layout, k, s, positions,
                         bias=None if conv.bias is None else bias), 1

    def _classifier(self, mods, shape, stages, pending) -> ClassifierStage | None:
        try:
            folded = fold_classifier(nn.Sequential(*[m for _, m in mods]))
        except ValueError:
            return None
        names = [n for n, m in mods if isinstance(m, BinaryLayer)]
        signs = []
        binary_seen = 0
        for n, m in mods:
            if isinstance(m, BinaryLayer):
                binary_seen += 1
            elif isinstance(m, SignActivation) and binary_seen:
                signs.append(n)
        layout = BitLayout("flat", (math.prod(shape),))
        rest = [m for _, m in pending if not isinstance(m, nn.Dropout | nn.Flatten |
                                                        nn.Identity | SignActivation)]
        if (not rest and stages and isinstance(stages[-1], ConvStage)
                and stages[-1].layer.mode == kernels.BITS):
            layout = stages[-1].out_layout  # bits straight from the last conv
        return ClassifierStage.from_folded(names, folded, layout, signs)

    # -- running

    def prepare(self, x) -> torch.Tensor:
        """``x`` as the tensor the first stage takes; builds the engine for its shape on
        first use. Another shape rebuilds it where the network takes that shape too
        (MobileNet: any image size) and no ``input_shape`` was given; else ValueError."""
        x = self._prepare(_input_tensor(x))
        shape, built = tuple(x.shape[1:]), self.input_shape
        if built is None:
            self._build(shape)
        elif shape != built:
            if not self._fixed:
                with contextlib.suppress(RuntimeError):  # the layers refuse it: state kept
                    self._build(shape)
            if self.input_shape != shape:
                raise ValueError(f"input of shape {tuple(x.shape)}: this engine was built "
                                 f"for (N, {', '.join(map(str, built))})")
        return x

    def run(self, x, hidden: bool = False, start: int = 0, act=None):
        """Scores (N, classes) float32; with ``hidden``, also {sign module name: +-1 int8}.

        ``start``/``act``: resume at stage ``start`` from its input ``act`` (used by sweeps).
        """
        found = {} if hidden else None
        if act is None and not hidden and start == 0 and self._direct is not None:
            rows = np.asarray(x.detach() if isinstance(x, torch.Tensor) else x)
            if rows.ndim == 2 and rows.shape[1] == self._direct.in_layout.features:
                return self._direct.chain(np.ascontiguousarray(rows, np.float32))
        if act is None:
            act = self.prepare(x)
        for stage in self.stages[start:]:
            act = stage.run(act, found)
        scores = _as_tensor(act).numpy() if isinstance(act, torch.Tensor | Bits) else act
        return (scores, found) if hidden else scores

    def __call__(self, x) -> np.ndarray:
        """Scores (N, classes) float32 of a batch ``x`` (N, *input shape)."""
        direct = self._direct  # a float32 matrix into a classifier-only engine: straight in
        if (direct is not None and type(x) is np.ndarray and x.dtype == np.float32
                and x.ndim == 2 and x.flags.c_contiguous
                and x.shape[1] == direct.in_layout.features):
            return direct.chain(x)
        return self.run(x)

    def predict(self, x) -> np.ndarray:
        """Predicted classes (the first maximum of the scores)."""
        return np.argmax(self.run(x), axis=1)

    def describe(self) -> list[str]:
        """One line per stage: what runs packed and what runs in PyTorch."""
        lines = []
        for s in self.stages:
            if isinstance(s, TorchStage):
                lines.append("torch: " + ", ".join(f"{n} {type(m).__name__}"
                                                   for n, m in zip(s.names, s.modules,
                                                                   strict=True)))
            elif isinstance(s, ConvStage):
                mode = "bits" if s.layer.mode == kernels.BITS else "int32 sums"
                lines.append(f"packed conv: {s.weights.name} {s.in_layout.kind} "
                             f"{s.in_layout.shape} -> {s.out_layout.shape} ({mode}"
                             f"{', max pool' if s.pool else ''})")
            else:
                lines.append("packed classifier: " + " -> ".join(
                    f"{w.name} {w.layer.n}->{w.layer.m}" for w in s.weights))
        return lines

    def stage_of(self, index: int) -> int:
        """The stage holding binary layer ``index`` (of :attr:`binary`)."""
        target = self.binary[index]
        for k, s in enumerate(self.stages):
            held = s.weights if isinstance(s, TorchStage | ClassifierStage) else [s.weights]
            if any(w is target for w in held):
                return k
        raise KeyError(index)

    def flip(self, index: int, flat: np.ndarray) -> None:
        """Negate binary layer ``index``'s weights at flat PyTorch positions (again: undo)."""
        self.binary[index].flip(flat)

    def weight_bytes(self) -> int:
        """Bytes of the packed binary weights (padding included) the engine holds."""
        return sum(w.layer.weights.nbytes for w in self.binary if isinstance(w, PackedWeights))


class PackedClassifier:
    """The binary classifier of an export folder (``model.npz`` + ``manifest.json``), packed.

    >>> clf = PackedClassifier.from_export("export/")
    >>> scores = clf(vectors["classifier_input"])   # +-1 inputs of the first binary FC layer
    """

    def __init__(self, names: list[str], folded: list[FoldedLayer]):
        self.names = names
        self.folded = folded
        self.stage = ClassifierStage.from_folded(
            names, folded, BitLayout("flat", (folded[0].in_features,)),
            [f"{n}.sign" for n in names[:-1]])

    @classmethod
    def from_module(cls, classifier: nn.Sequential) -> PackedClassifier:
        """From a classifier sequential whose binary FC layers fold (see fold_classifier)."""
        folded = fold_classifier(classifier)
        return cls([f.name for f in folded], folded)

    @classmethod
    def from_export(cls, folder: str | Path) -> PackedClassifier:
        """Read an export folder written by ``python -m bnn_edge.cli.export`` (docs/export.md).

        Whatever breaks the contract (a truncated file, a wrong type, shape or value, padding
        bits set, a non-finite constant) is a DataError naming the file and the key.
        """
        folder = Path(folder)
        manifest_path, model_path = folder / "manifest.json", folder / "model.npz"
        for path in (manifest_path, model_path):
            if not path.is_file():
                raise DataError(f"{path}: missing; an export folder holds manifest.json and "
                                f"model.npz (python -m bnn_edge.cli.export)")
        size = manifest_path.stat().st_size
        if size > MANIFEST_MAX_BYTES:
            raise DataError(f"{manifest_path}: {size:,} bytes, more than an export writes "
                            f"({MANIFEST_MAX_BYTES:,} at most)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            names, fmt = manifest["classifier_layers"], manifest.get("format")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{manifest_path}: not an export manifest ({e})") from e
        if (fmt != EXPORT_FORMAT or not isinstance(names, list) or not names
                or not all(isinstance(n, str) for n in names)):
            raise DataError(f"{manifest_path}: format {fmt!r} with classifier_layers "
                            f"{str(names)[:80]}; expected {EXPORT_FORMAT!r} with a list of "
                            f"at least one layer name")
        try:
            with np.load(model_path, allow_pickle=False) as model:
                folded = [_folded_from_npz(model, name, last=k == len(names) - 1)
                          for k, name in enumerate(names)]
        except (OSError, ValueError, KeyError, EOFError, MemoryError, zipfile.BadZipFile,
                zlib.error) as e:
            raise DataError(f"{model_path}: cannot read the classifier layers ({e})") from e
        for a, b in zip(folded, folded[1:], strict=False):
            if a.out_features != b.in_features:
                raise DataError(f"{model_path}: {a.name} has {a.out_features} outputs but "
                                f"{b.name} {b.in_features} inputs")
        return cls(names, folded)

    @property
    def in_features(self) -> int:
        return self.folded[0].in_features

    def __call__(self, x) -> np.ndarray:
        """Scores (N, classes) float32 of +-1 (or real, taken as x >= 0) inputs (N, in)."""
        return self.stage.run(self._input(x))

    def run(self, x, hidden: bool = False):
        """Scores, and with ``hidden`` the +-1 outputs of every hidden layer (by layer name)."""
        if not hidden:
            return self(x)
        found: dict = {}
        scores = self.stage.run(self._input(x), found)
        return scores, {name[:-len(".sign")]: v for name, v in found.items()}

    def predict(self, x) -> np.ndarray:
        return np.argmax(self(x), axis=1)

    def _input(self, x) -> torch.Tensor:
        x = _input_tensor(x)
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"input of shape {tuple(x.shape)}: expected (N, {self.in_features})")
        return x


def _folded_from_npz(model, name: str, last: bool) -> FoldedLayer:
    """One layer of model.npz, its types checked before use (ValueError naming the key)."""
    key = f"{name}.in_features"
    n = np.asarray(model[key])
    if n.ndim != 0 or n.dtype.kind not in "iu" or n < 1:
        shown = repr(n.tolist()) if n.size == 1 else f"of shape {n.shape}"
        raise ValueError(f"{key}: {n.dtype} {shown}; a positive integer scalar expected")
    bits = np.asarray(model[f"{name}.weight_bits"])
    if bits.ndim != 2:
        raise ValueError(f"{name}.weight_bits: 2 dimensions expected, got shape {bits.shape}")
    layer = FoldedLayer(name, int(n), bits.shape[0], bits)
    keys = ("scale", "offset") if last else ("threshold", "flip")
    for k in keys:
        v = np.asarray(model[f"{name}.{k}"])
        if k == "flip":
            if v.dtype != bool and not (v.dtype.kind in "iu" and np.all((v == 0) | (v == 1))):
                raise ValueError(f"{name}.flip: {v.dtype}; booleans (or 0/1) expected")
            v = v.astype(bool)
        elif v.dtype.kind not in "fiu":
            raise ValueError(f"{name}.{k}: {v.dtype}; real numbers expected")
        else:
            with np.errstate(over="ignore"):  # beyond float32: inf, refused by check()
                v = v.astype(np.float32 if last else np.float64)
        setattr(layer, k, v)
    layer.check()
    return layer
