"""Mapping of binary layers onto RRAM arrays: how many ``size`` x ``size`` 2T2R arrays,
devices and sense amplifiers each one needs (one weight per cell)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from bnn_edge.nn import binary_layers


@dataclass
class ArrayMapping:
    """A binary layer laid out on ``size`` x ``size`` 2T2R arrays (one weight per cell)."""

    name: str
    rows: int  # fan-in: inputs per output neuron
    cols: int  # output neurons (or channels)
    arrays: int
    devices: int  # RRAM devices holding weights: two per weight
    sense_amplifiers: int  # one precharge sense amplifier per array column
    utilization: float


def array_mapping(model: nn.Module, size: int = 32) -> list[ArrayMapping]:
    """How many ``size`` x ``size`` arrays each binary layer needs.

    A layer is a (fan-in x outputs) matrix: a linear layer of n inputs and m outputs needs
    ceil(n/size) * ceil(m/size) arrays; a conv layer's fan-in is in_channels/groups times
    its kernel size. Each weight is a 2T2R cell (two devices); each array column has one
    sense amplifier.
    """
    out = []
    for name, module in binary_layers(model):
        cols = module.weight.shape[0]
        rows = module.weight[0].numel()
        arrays = math.ceil(rows / size) * math.ceil(cols / size)
        out.append(ArrayMapping(name, rows, cols, arrays, 2 * rows * cols, arrays * size,
                                rows * cols / (arrays * size * size)))
    return out
