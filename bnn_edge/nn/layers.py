"""Binary layers: latent real weights, computed with their 1-bit quantized view.

One mechanism serves every network: a layer is binary when it is an instance of
:class:`BinaryLayer`. Such a layer keeps *latent* real weights (what the optimizer
updates, clipped to [-1, 1]) and uses ``weight_quantizer(weight)`` (``sign``) in its
forward pass, so the weights seen by the computation are exactly +1 or -1. Its
``precision`` (bits per stored weight, from the quantizer) is what memory accounting,
fault injection and export read; :func:`binary_layers` finds the layers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from bnn_edge.nn.quantizers import CLIP_VALUE, SteSign


class BinaryLayer:
    """Mixin for layers whose forward pass uses sign(latent weight).

    ``weight`` holds the latent real weights; :attr:`binary_weight` is what the layer
    computes with. Bias, if any, stays real: in hardware it folds into the neuron
    threshold together with the batch norm that follows.
    """

    weight: nn.Parameter
    weight_quantizer = SteSign()

    @property
    def precision(self) -> int:
        """Bits per stored weight (1: the sign)."""
        return self.weight_quantizer.precision

    @property
    def binary_weight(self) -> torch.Tensor:
        """The +-1 weights used in the forward pass (gradients reach ``weight`` by STE)."""
        return self.weight_quantizer(self.weight)

    @torch.no_grad()
    def clip_weights_(self, clip_value: float = CLIP_VALUE) -> None:
        """Clamp latent weights to [-clip, clip] so the STE keeps passing gradients."""
        self.weight.clamp_(-clip_value, clip_value)


class BinaryLinear(BinaryLayer, nn.Linear):
    """Fully connected layer with +-1 weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.binary_weight, self.bias)


class BinaryConv1d(BinaryLayer, nn.Conv1d):
    """1-D convolution with +-1 weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.binary_weight, self.bias)


class Conv2d(nn.Conv2d):
    """nn.Conv2d that runs a kernel spanning the whole input height as a 1-D convolution.

    Same parameters and results; such a kernel (the EEG network's spatial conv over all
    64 electrodes) is a plain matrix product over (in_channels x height), which the 1-D
    path computes about a quarter faster on CPU than the 2-D one.
    """

    def spans_height(self, x: torch.Tensor, weight: torch.Tensor) -> bool:
        """Whether the kernel covers the whole input height, unpadded (the 1-D case)."""
        return (x.dim() == 4 and x.shape[2] == weight.shape[2] and self.groups == 1
                and self.padding_mode == "zeros" and isinstance(self.padding, tuple)
                and self.padding[0] == 0 and self.stride[0] == 1 and self.dilation[0] == 1)

    def _conv_forward(self, x, weight, bias):
        if self.spans_height(x, weight):
            n, c, h, w = x.shape
            rows = weight.reshape(weight.shape[0], -1, weight.shape[3])
            y = F.conv1d(x.reshape(n, c * h, w), rows, bias,
                         self.stride[1], self.padding[1], self.dilation[1])
            return y.unsqueeze(2)
        return super()._conv_forward(x, weight, bias)


class BinaryConv2d(BinaryLayer, Conv2d):
    """2-D convolution with +-1 weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.binary_weight, self.bias)


def binary_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The binary layers of ``model`` as (qualified name, module), in registration order.

    Registration order is forward order for the sequential networks of this project.
    """
    return [(name, m) for name, m in model.named_modules() if isinstance(m, BinaryLayer)]


def clip_binary_weights_(model: nn.Module, clip_value: float = CLIP_VALUE) -> None:
    """Clip the latent weights of every binary layer of ``model`` in place."""
    for _, module in binary_layers(model):
        module.clip_weights_(clip_value)


def layer_precision(module: nn.Module) -> int | None:
    """Bits per stored weight of a binary layer; None for a real layer (its storage is the
    reference format's: 32 or 8 bits)."""
    return module.precision if isinstance(module, BinaryLayer) else None
