"""Networks built from one description: a feature extractor of conv blocks and a classifier.

A :class:`NetworkSpec` lists the layers of a paper table once; :class:`SpecNet` turns it
into a model for any ``binarize`` variant and filter augmentation ``aug``:

- ``none``: real weights, real activations (hardtanh or ReLU, as the spec says);
- ``classifier``: the fully connected layers are binary and see binary inputs (the
  flattened features pass through sign), the convolutions stay real; with ReLU the
  last conv block has no activation of its own, since sign(ReLU(x)) would always be +1;
- ``full``: every conv and FC weight binary, sign activations everywhere; the first
  layer still sees the real input and the last layer outputs real scores.

Every conv block is ``[dropout] conv [pool] [batch norm] activation``; every FC layer is
``[dropout] linear [batch norm] [activation]`` (no activation after the last one).
Dropout precedes every layer but the first, so the input itself is never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from bnn_edge.models.base import BinarizableNet, check_variant
from bnn_edge.nn import BinaryConv1d, BinaryConv2d, BinaryLinear, Conv2d, SignActivation

_CONV = {1: nn.Conv1d, 2: Conv2d}
_BINARY_CONV = {1: BinaryConv1d, 2: BinaryConv2d}
_POOL = {("max", 1): nn.MaxPool1d, ("max", 2): nn.MaxPool2d,
         ("avg", 1): nn.AvgPool1d, ("avg", 2): nn.AvgPool2d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_ACTIVATION = {"hardtanh": nn.Hardtanh, "relu": nn.ReLU}


@dataclass(frozen=True)
class Pool:
    """Pooling applied right after a convolution, before its batch norm."""

    kind: Literal["max", "avg"]
    kernel: int | tuple[int, int]
    stride: int | tuple[int, int] | None = None


@dataclass(frozen=True)
class Conv:
    """A convolution with ``filters`` kernels (multiplied by ``aug``)."""

    filters: int
    kernel: int | tuple[int, int]
    padding: int | tuple[int, int] = 0
    pool: Pool | None = None


@dataclass(frozen=True)
class Dense:
    """A fully connected layer with ``units`` outputs (not multiplied by ``aug``)."""

    units: int


@dataclass(frozen=True)
class NetworkSpec:
    """One paper table: input shape (without batch), conv blocks, classifier layers."""

    name: str
    input_shape: tuple[int, ...]
    features: tuple[Conv, ...]
    classifier: tuple[Dense, ...]
    conv_dim: int = 1
    activation: Literal["hardtanh", "relu"] = "hardtanh"
    input_norm: bool = True
    batch_norm: bool = True
    conv_dropout: float = 0.0
    fc_dropout: float = 0.0


class SpecNet(BinarizableNet):
    """A network built from a :class:`NetworkSpec` in one ``binarize`` variant.

    ``features`` holds the input norm and conv blocks, ``classifier`` the flatten and FC
    layers; memory accounting and the exporter rely on this split.
    """

    def __init__(self, spec: NetworkSpec, binarize: str = "none", aug: int = 1):
        super().__init__()
        check_variant(binarize, aug)
        self.spec, self.binarize, self.aug = spec, binarize, aug
        self.input_shape = tuple(spec.input_shape)
        dim = spec.conv_dim
        binary_convs = binarize == "full"
        binary_fc = binarize in ("classifier", "full")

        def activation(binary: bool) -> nn.Module:
            return SignActivation() if binary else _ACTIVATION[spec.activation]()

        features: list[nn.Module] = []
        if spec.input_norm:
            features.append(_BATCH_NORM[dim](spec.input_shape[0]))
        channels = spec.input_shape[0]
        for i, conv in enumerate(spec.features):
            if i > 0 and spec.conv_dropout > 0:
                features.append(nn.Dropout(spec.conv_dropout))
            filters = conv.filters * aug
            conv_cls = _BINARY_CONV[dim] if binary_convs else _CONV[dim]
            features.append(conv_cls(channels, filters, conv.kernel, padding=conv.padding))
            if conv.pool is not None:
                pool = conv.pool
                features.append(_POOL[(pool.kind, dim)](pool.kernel, stride=pool.stride))
            if spec.batch_norm:
                features.append(_BATCH_NORM[dim](filters))
            last = i == len(spec.features) - 1
            # ReLU >= 0 would make the sign at the binary classifier's input always +1;
            # there the sign replaces the ReLU (sign(hardtanh(x)) == sign(x), kept as is).
            if not (last and binarize == "classifier" and spec.activation == "relu"):
                features.append(activation(binary_convs))
            channels = filters
        self.features = nn.Sequential(*features)
        self.flat_features = self._flat_size()

        classifier: list[nn.Module] = [nn.Flatten()]
        if binarize == "classifier":
            classifier.append(SignActivation())
        width = self.flat_features
        for j, dense in enumerate(spec.classifier):
            if spec.fc_dropout > 0:
                classifier.append(nn.Dropout(spec.fc_dropout))
            linear_cls = BinaryLinear if binary_fc else nn.Linear
            classifier.append(linear_cls(width, dense.units))
            if spec.batch_norm:
                classifier.append(nn.BatchNorm1d(dense.units))
            if j < len(spec.classifier) - 1:
                classifier.append(activation(binary_fc))
            width = dense.units
        self.classifier = nn.Sequential(*classifier)
        self.num_classes = width

    def _flat_size(self) -> int:
        was_training = self.features.training
        self.features.eval()
        with torch.no_grad():
            out = self.features(torch.zeros(1, *self.spec.input_shape))
        self.features.train(was_training)
        return int(out[0].numel())
