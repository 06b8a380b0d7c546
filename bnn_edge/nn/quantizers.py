"""Quantizers: the sign with a straight-through gradient, as small objects that carry their
precision (in bits), after larq's quantizers.

Convention: ``sign(0) = +1``. A zero has to map to one of the two states a 1-bit cell can
hold; +1 matches the hardware (a 2T2R cell read as LRS/HRS) and keeps every binarized
tensor strictly two-valued.
"""

from __future__ import annotations

import torch
from torch import nn

CLIP_VALUE = 1.0


def binary_sign(x: torch.Tensor) -> torch.Tensor:
    """Sign with sign(0) = +1 and no gradient; the value every binary layer uses."""
    return (x >= 0).to(x.dtype).mul_(2).sub_(1)


class _SteSign(torch.autograd.Function):
    """sign(x) forward; straight-through gradient where |x| <= clip, zero outside.

    Only the boolean pass mask is kept for the backward pass: a quarter of the memory of
    the float input, which matters for the EEG network's (batch, 440, 64, 961) maps. The
    mask is one comparison of |x| and the backward one product (a masked fill of the
    gradient took twice as long on these maps).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, clip_value: float) -> torch.Tensor:
        ctx.save_for_backward(x.abs() <= clip_value)
        return binary_sign(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (passes,) = ctx.saved_tensors
        return grad_output * passes, None


def ste_sign(x: torch.Tensor, clip_value: float = CLIP_VALUE) -> torch.Tensor:
    """Binarize ``x`` to +-1 with the straight-through estimator (hardtanh gradient)."""
    return _SteSign.apply(x, clip_value)


class SignActivation(nn.Module):
    """Binary activation: ste_sign of its input (replaces hardtanh/ReLU when binarized)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ste_sign(x)


class SteSign:
    """The 1-bit quantizer of binary layers: ``ste_sign`` with its clip value and precision.

    ``precision`` is what memory accounting, fault injection and export read to know how a
    tensor quantized by it is stored (1 bit per value).
    """

    name = "ste_sign"
    precision = 1

    def __init__(self, clip_value: float = CLIP_VALUE):
        self.clip_value = float(clip_value)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ste_sign(x, self.clip_value)

    def __repr__(self) -> str:
        return f"SteSign(clip_value={self.clip_value:g})"


__all__ = ["CLIP_VALUE", "SignActivation", "SteSign", "binary_sign", "ste_sign"]
