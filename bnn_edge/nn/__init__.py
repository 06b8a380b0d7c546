"""Binarization primitives: quantizers that carry their precision, binary layers, fast convs."""

from bnn_edge.nn.layers import (
    BinaryConv1d,
    BinaryConv2d,
    BinaryLayer,
    BinaryLinear,
    Conv2d,
    binary_layers,
    clip_binary_weights_,
    layer_precision,
)
from bnn_edge.nn.modes import evaluation_mode
from bnn_edge.nn.quantizers import CLIP_VALUE, SignActivation, SteSign, binary_sign, ste_sign
from bnn_edge.nn.thresholds import spread_thresholds_, threshold_norms

__all__ = ["CLIP_VALUE", "BinaryConv1d", "BinaryConv2d", "BinaryLayer", "BinaryLinear",
           "Conv2d", "SignActivation", "SteSign", "binary_layers", "binary_sign",
           "clip_binary_weights_", "evaluation_mode", "layer_precision", "spread_thresholds_",
           "ste_sign", "threshold_norms"]
