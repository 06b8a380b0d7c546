"""A conv -> batch norm -> activation -> conv chain trained chunk by chunk, recomputed.

The EEG network's temporal conv output is (batch, 40 aug, 64, 961): at aug=11 and batch 32
one such map is 3.5 GB, and plain autograd keeps several of them for the backward pass.
:func:`conv_norm_act_conv` keeps none. The forward pass takes the batch-norm statistics of
the whole batch in a first pass over chunks of trials, then runs the chain chunk by chunk;
the backward pass recomputes the maps of one chunk at a time, once (twice where the input
needs its gradient: the batch-norm gradient needs two sums over the whole batch first).
Same results as the plain layers, float32 summation order aside; peak memory grows with
the chunk, not the batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from bnn_edge.nn.layers import BinaryLayer, Conv2d
from bnn_edge.nn.quantizers import CLIP_VALUE, SignActivation, binary_sign

_aten = torch.ops.aten


def _activation(act: nn.Module):
    """(forward, gradient mask) of a supported activation; TypeError for another."""
    if isinstance(act, nn.ReLU):
        return torch.relu, lambda h: h > 0
    if isinstance(act, SignActivation):  # straight-through: passes where |h| <= clip
        return binary_sign, lambda h: h.abs() <= CLIP_VALUE
    if isinstance(act, nn.Hardtanh):
        lo, hi = act.min_val, act.max_val
        return (lambda h: F.hardtanh(h, lo, hi)), lambda h: (h > lo) & (h < hi)
    raise TypeError(f"no recomputed form of activation {type(act).__name__}")


def _check_chain(conv1, norm, act, conv2) -> None:
    """TypeError unless the four layers are conv -> BatchNorm2d -> supported activation ->
    conv, both convs Conv2d with numeric zero padding."""
    for conv in (conv1, conv2):
        if not isinstance(conv, nn.Conv2d) or conv.padding_mode != "zeros" or isinstance(
                conv.padding, str):
            raise TypeError(f"no recomputed form of {conv!r}: a Conv2d with numeric zero "
                            "padding is needed")
    if not isinstance(norm, nn.BatchNorm2d):
        raise TypeError(f"no recomputed form of {norm!r} after the first conv: a "
                        "BatchNorm2d is needed")
    _activation(act)


def _weight(conv: nn.Module) -> torch.Tensor:
    """The weight the layer computes with (its +-1 view for a binary layer, with STE)."""
    return conv.binary_weight if isinstance(conv, BinaryLayer) else conv.weight


def _conv_backward(conv: nn.Conv2d, grad: torch.Tensor, x: torch.Tensor, w: torch.Tensor,
                   need: tuple[bool, bool, bool]):
    """(grad input, grad weight, grad bias) of ``conv`` at (x, w), None where not ``need``."""
    if isinstance(conv, Conv2d) and conv.spans_height(x, w):  # as its forward: a 1-D conv
        n, c, h, width = x.shape
        gx, gw, gb = _aten.convolution_backward(
            grad.squeeze(2), x.reshape(n, c * h, width), w.reshape(w.shape[0], -1, w.shape[3]),
            [w.shape[0]], conv.stride[1:], conv.padding[1:], conv.dilation[1:], False, [0], 1,
            list(need))
        return (gx.reshape(x.shape) if need[0] else None,
                gw.reshape(w.shape) if need[1] else None, gb)
    return _aten.convolution_backward(grad, x, w, [w.shape[0]], conv.stride, conv.padding,
                                      conv.dilation, False, [0, 0], conv.groups, list(need))


class _Chain(torch.autograd.Function):
    """conv1 -> batch norm (training, batch statistics) -> activation -> conv2 in chunks."""

    @staticmethod
    def forward(ctx, x, w1, b1, gamma, beta, w2, b2, mods, chunk):
        conv1, norm, act, conv2 = mods
        forward_act, _ = _activation(act)
        parts = range(0, x.shape[0], chunk)
        mean, var, count = _batch_stats(conv1._conv_forward(x[i:i + chunk], w1, b1)
                                        for i in parts)
        _update_running(norm, mean, var, count)
        invstd = torch.rsqrt(var + norm.eps)
        scale = invstd if gamma is None else invstd * gamma
        shift = -mean * scale if beta is None else beta - mean * scale
        outs = []
        for i in parts:
            h = _per_channel(conv1._conv_forward(x[i:i + chunk], w1, b1), scale, shift)
            outs.append(conv2._conv_forward(forward_act(h), w2, b2))
        ctx.save_for_backward(x, w1, b1, gamma, beta, w2, mean, invstd)
        ctx.mods, ctx.chunk, ctx.count = mods, chunk, count
        return torch.cat(outs)

    @staticmethod
    def backward(ctx, gy):
        x, w1, b1, gamma, beta, w2, mean, invstd = ctx.saved_tensors
        conv1, _, act, conv2 = ctx.mods
        forward_act, passes = _activation(act)
        chunk, parts = ctx.chunk, range(0, x.shape[0], ctx.chunk)
        channel = (-1, *[1] * (x.dim() - 2))
        dims = [0, *range(2, x.dim())]

        def recompute(i, need_w2):
            """(normalised map, grad at the batch norm's output, grad of w2) of chunk i."""
            xhat = _per_channel(conv1._conv_forward(x[i:i + chunk], w1, b1), invstd,
                                -mean * invstd)
            h = xhat
            if gamma is not None:
                h = _per_channel(xhat, gamma, beta if beta is not None else torch.zeros_like(gamma))
            gh, gw, _ = _conv_backward(conv2, gy[i:i + chunk], forward_act(h), w2,
                                       (True, need_w2, False))
            return xhat, gh.mul_(passes(h)), gw

        need_x, need_b1 = ctx.needs_input_grad[0], b1 is not None
        gw2 = torch.zeros_like(w2)
        sum_gh = torch.zeros(w1.shape[0], dtype=torch.float64, device=x.device)
        sum_gh_xhat = torch.zeros_like(sum_gh)
        # conv1's weight gradient is linear in d loss / d z = scale (gh - mean(gh) - xhat
        # mean(gh xhat)): its three terms are summed in this same pass over the chunks (the
        # windows against gh, against xhat, and their plain sum), so no second pass is needed
        # unless the input wants its gradient too
        wg_gh, wg_xhat = torch.zeros_like(w1), torch.zeros_like(w1)
        wg_one = torch.zeros_like(w1[:1])
        sum_xhat = torch.zeros_like(sum_gh)
        for i in parts:
            xhat, gh, gw = recompute(i, True)
            gw2 += gw
            sum_gh += gh.sum(dims, dtype=torch.float64)
            sum_gh_xhat += (gh * xhat).sum(dims, dtype=torch.float64)
            if not need_x:
                xi = x[i:i + chunk]
                wg_gh += _conv_backward(conv1, gh, xi, w1, (False, True, False))[1]
                wg_xhat += _conv_backward(conv1, xhat, xi, w1, (False, True, False))[1]
                ones = torch.ones_like(xhat[:, :1])
                wg_one += _conv_backward(conv1, ones, xi, w1[:1], (False, True, False))[1]
                sum_xhat += xhat.sum(dims, dtype=torch.float64)
        mean_gh = (sum_gh / ctx.count).to(x.dtype).view(channel)
        mean_gh_xhat = (sum_gh_xhat / ctx.count).to(x.dtype).view(channel)
        scale = (invstd if gamma is None else invstd * gamma).view(channel)

        gx = torch.empty_like(x) if need_x else None
        gb1 = None
        if not need_x:
            weight_channel = (-1, *[1] * (w1.dim() - 1))
            gw1 = (wg_gh - mean_gh.view(weight_channel) * wg_one
                   - mean_gh_xhat.view(weight_channel) * wg_xhat) * scale.view(weight_channel)
            if need_b1:
                gb1 = ((sum_gh - ctx.count * (sum_gh / ctx.count)
                        - (sum_gh_xhat / ctx.count) * sum_xhat).to(x.dtype) * scale.flatten())
        else:
            gw1 = torch.zeros_like(w1)
            gb1 = torch.zeros_like(b1) if need_b1 else None
            for i in parts:
                xhat, gh, _ = recompute(i, False)
                # d loss / d conv1 output: the batch-norm backward with batch statistics
                gz = (gh - mean_gh).sub_(xhat * mean_gh_xhat).mul_(scale)
                gxi, gw, gb = _conv_backward(conv1, gz, x[i:i + chunk], w1,
                                             (True, True, need_b1))
                gw1 += gw
                if need_b1:
                    gb1 += gb
                gx[i:i + chunk] = gxi
        gb2 = gy.sum(dims) if ctx.needs_input_grad[6] else None
        ggamma = sum_gh_xhat.to(x.dtype) if gamma is not None else None
        gbeta = sum_gh.to(x.dtype) if beta is not None else None
        return gx, gw1, gb1, ggamma, gbeta, gw2, gb2, None, None


def _per_channel(z: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    shape = (-1, *[1] * (z.dim() - 2))
    return torch.addcmul(shift.view(shape), z, scale.view(shape))


def _batch_stats(maps) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel mean, biased variance and count over a stream of chunks (merged in
    float64, Chan et al.'s pairwise update)."""
    count, mean, m2 = 0, None, None
    for z in maps:
        n = z.numel() // z.shape[1]
        var_c, mean_c = torch.var_mean(z, dim=[0, *range(2, z.dim())], correction=0)
        mean_c, m2_c = mean_c.double(), var_c.double() * n
        if mean is None:
            count, mean, m2 = n, mean_c, m2_c
            continue
        delta = mean_c - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + m2_c + delta.square() * (count * n / total)
        count = total
    return mean.float(), (m2 / count).float(), count


@torch.no_grad()
def _update_running(norm: nn.BatchNorm2d, mean, var, count: int) -> None:
    """Running statistics as nn.BatchNorm2d updates them in training (unbiased variance)."""
    if not norm.track_running_stats:
        return
    norm.num_batches_tracked += 1
    m = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
    norm.running_mean.mul_(1 - m).add_(mean, alpha=m)
    norm.running_var.mul_(1 - m).add_(var * (count / max(count - 1, 1)), alpha=m)


def conv_norm_act_conv(x: torch.Tensor, conv1: nn.Conv2d, norm: nn.BatchNorm2d,
                       act: nn.Module, conv2: nn.Conv2d, chunk: int) -> torch.Tensor:
    """``conv2(act(norm(conv1(x))))`` computed ``chunk`` trials at a time.

    In training the batch norm uses (and updates its running statistics from) the whole
    batch, and the backward pass recomputes each chunk's maps instead of keeping them; in
    evaluation the chunks simply run one after the other. Binary convs compute with their
    +-1 weights (straight-through gradient to the latent ones), as in their own forward.
    """
    _check_chain(conv1, norm, act, conv2)
    if not norm.training:
        return torch.cat([conv2(act(norm(conv1(x[i:i + chunk]))))
                          for i in range(0, x.shape[0], chunk)])
    w1, w2 = _weight(conv1), _weight(conv2)
    with torch.autocast(x.device.type, enabled=False):  # the chain runs in its weights' dtype
        return _Chain.apply(x.to(w1.dtype), w1, conv1.bias, norm.weight, norm.bias, w2,
                            conv2.bias, (conv1, norm, act, conv2), chunk)


#: automatic chunking (chunk=None) starts where one whole map of the batch would exceed this
AUTO_MAP_BYTES = 2**30
#: ... and then takes as many trials as keep one chunk's map within this
AUTO_CHUNK_BYTES = 2**27


class RecomputedSequential(nn.Sequential):
    """nn.Sequential whose first four layers, conv -> batch norm -> activation -> conv, run
    through :func:`conv_norm_act_conv` ``chunk`` trials at a time.

    ``chunk=0`` runs them as plain layers; ``None`` decides per batch: plain while the first
    conv's output for the whole batch stays within :data:`AUTO_MAP_BYTES` (1 GiB), else
    chunks of as many trials as fit in :data:`AUTO_CHUNK_BYTES` (128 MiB, one at least).
    The layers, their names and parameters are the plain Sequential's, so checkpoints,
    export and fault injection see the same network.
    """

    def __init__(self, *layers: nn.Module, chunk: int | None = None):
        super().__init__(*layers)
        _check_chain(*(list(layers) + [None] * 4)[:4])
        self.chunk = chunk

    def chunk_for(self, x: torch.Tensor) -> int:
        """Trials per chunk for batch ``x`` (0: plain layers)."""
        if self.chunk is not None:
            return self.chunk
        conv = self[0]
        positions = 1
        for size, k, p, d, s in zip(x.shape[2:], conv.kernel_size, conv.padding, conv.dilation,
                                    conv.stride, strict=True):
            positions *= (size + 2 * p - d * (k - 1) - 1) // s + 1
        per_trial = conv.out_channels * positions * x.element_size()
        if per_trial * x.shape[0] <= AUTO_MAP_BYTES:
            return 0
        return max(1, AUTO_CHUNK_BYTES // per_trial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunk = self.chunk_for(x)
        if not chunk:
            return super().forward(x)
        x = conv_norm_act_conv(x, self[0], self[1], self[2], self[3], chunk)
        for layer in list(self)[4:]:
            x = layer(x)
        return x
