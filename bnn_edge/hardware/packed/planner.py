"""Planning: a network's layers (in forward order, with their input shapes) split into the
stages of :mod:`~bnn_edge.hardware.packed.stages`, what fits run packed.

A binary conv runs packed where its input is a sign (groups 1, no padding, dilation 1;
1-D, 2-D spanning the whole input height like EEG's spatial conv, or 1x1). With ``[max
pool] [batch norm] sign`` after it, pool, norm and sign fold into integer thresholds and
the stage outputs packed bits (max pooling of the sign is an OR of the bits where the rule
is d >= t, an AND where it is flipped, d <= t, since the pooled d is a max); otherwise it
outputs the real conv values (d + bias) to PyTorch (EEG: average pool). The binary fully
connected layers after a sign run as the packed classifier (from ``int8_min_rows`` rows on,
its scores as exact int8 products); the rest runs in PyTorch.
Weights are re-laid out for the kernels once, here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from bnn_edge.hardware.packed.fold import fold_classifier, threshold_rule
from bnn_edge.hardware.packed.layouts import BitLayout
from bnn_edge.hardware.packed.product import BITS, Layer
from bnn_edge.hardware.packed.stages import ClassifierStage, ConvStage, TorchStage
from bnn_edge.hardware.packed.weights import PackedWeights, TorchWeights, placed_words
from bnn_edge.nn import (
    BinaryConv1d,
    BinaryConv2d,
    BinaryLayer,
    BinaryLinear,
    SignActivation,
    binary_sign,
)


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


@torch.no_grad()
def plan(mods: list[tuple[str, nn.Module]], shapes: list[tuple[int, ...]],
         int8_min_rows: int | None = None) -> list:
    """The stages of layers ``mods`` (name, module) in forward order, ``shapes`` their
    per-sample input shapes; binary layers keep their names in the stages' weights."""
    stages: list = []
    pending: list[tuple[str, nn.Module]] = []
    binary_in = False
    i = 0
    while i < len(mods):
        name, m = mods[i]
        stage, used = None, 0
        if binary_in and isinstance(m, BinaryLinear):
            stage = _classifier(mods[i:], shapes[i], stages, pending, int8_min_rows)
            used = len(mods) - i
        elif binary_in and isinstance(m, BinaryConv1d | BinaryConv2d):
            stage, used = _conv(mods, i, shapes)
        if stage is not None:
            _flush(stages, pending, absorb=True)
            stages.append(stage)
            i += used
            binary_in = isinstance(stage, ConvStage) and stage.layer.mode == BITS
            continue
        pending.append((name, m))
        binary_in = isinstance(m, SignActivation) or (
            binary_in and isinstance(m, nn.Dropout | nn.Flatten | nn.Identity))
        i += 1
    _flush(stages, pending, absorb=False)
    return stages


def _flush(stages: list, pending: list, absorb: bool) -> None:
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


def _conv(mods, i: int, shapes) -> tuple[ConvStage | None, int]:
    """The packed stage of the binary conv ``mods[i]`` and how many modules it takes."""
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
    words = placed_words(w, k * wc, bit_pos)
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
        layer = Layer.hidden(words, fan_in, threshold, flip)
        flips = np.zeros(out_layout.wc * 64, bool)
        flips[:conv.out_channels] = flip
        flip_words = np.packbits(flips, bitorder="little").view("<u8").astype(np.uint64)
        if pool is not None:
            pooled = (positions - pool[0]) // pool[1] + 1
            out_layout = BitLayout("seq", (conv.out_channels, pooled))
        weights = PackedWeights(name, tuple(conv.weight.shape), layer, bit_pos)
        return ConvStage(weights, in_layout, out_layout, k, s, positions, pool,
                         flip_words, sign_name=mods[j][0]), j + 1 - i
    layer = Layer.dot(words, fan_in)
    weights = PackedWeights(name, tuple(conv.weight.shape), layer, bit_pos)
    return ConvStage(weights, in_layout, out_layout, k, s, positions,
                     bias=None if conv.bias is None else bias), 1


def _classifier(mods, shape, stages, pending, int8_min_rows) -> ClassifierStage | None:
    """The packed classifier of the binary FC layers ``mods`` (None where they do not fold)."""
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
            and stages[-1].layer.mode == BITS):
        layout = stages[-1].out_layout  # bits straight from the last conv
    return ClassifierStage.from_folded(names, folded, layout, signs, int8_min_rows)
