"""Mapping of binary layers onto RRAM arrays: how many ``size`` x ``size`` 2T2R arrays,
devices and sense amplifiers each one needs (one weight per cell), and :class:`ArrayLayout`,
which array, row and column holds each stored bit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
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


@dataclass(frozen=True)
class ArrayLayout:
    """Where a layer's stored bits sit on ``size`` x ``size`` arrays (the counts above).

    The layer is the (fan-in x outputs) matrix of :func:`array_mapping`; a weight with
    ``bits`` stored bits takes ``bits`` adjacent columns (bit ``b`` of output ``j`` in
    matrix column ``j * bits + b``). Stored bit ``p`` (the codecs' position: weight
    ``p // bits`` of the flattened PyTorch weight, output ``j = weight // fan_in``, input
    ``i = weight % fan_in``) sits in matrix row ``i``; the matrix is cut into tiles of
    ``size`` rows and columns, numbered row by row (tile ``(i // size, c // size)`` is
    array ``(i // size) * tiles_across + c // size``), at row ``i % size`` and column
    ``c % size`` of its array. Tiles at the matrix's edges leave rows or columns unused.
    """

    outputs: int
    fan_in: int
    bits: int = 1
    size: int = 32

    @property
    def columns(self) -> int:
        """Matrix columns: outputs times bits per weight."""
        return self.outputs * self.bits

    @property
    def tiles_down(self) -> int:
        return math.ceil(self.fan_in / self.size)

    @property
    def tiles_across(self) -> int:
        return math.ceil(self.columns / self.size)

    @property
    def arrays(self) -> int:
        return self.tiles_down * self.tiles_across

    def locate(self, positions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(array, row, column) of each stored-bit position."""
        positions = np.asarray(positions, np.int64)
        weight, bit = np.divmod(positions, self.bits)
        out, inp = np.divmod(weight, self.fan_in)
        col = out * self.bits + bit
        array = (inp // self.size) * self.tiles_across + col // self.size
        return array, inp % self.size, col % self.size

    def cells(self, arrays, rows, columns) -> tuple[np.ndarray, np.ndarray]:
        """The stored-bit positions of cells (array, row, column), with the index of each
        cell they came from; cells outside the matrix (edge tiles) hold nothing."""
        arrays, rows, columns = (np.asarray(a, np.int64) for a in (arrays, rows, columns))
        tile_down, tile_across = np.divmod(arrays, self.tiles_across)
        inp = tile_down * self.size + rows
        col = tile_across * self.size + columns
        used = np.flatnonzero((inp < self.fan_in) & (col < self.columns))
        out, bit = np.divmod(col[used], self.bits)
        return (out * self.fan_in + inp[used]) * self.bits + bit, used

    def column_cells(self, arrays, columns) -> tuple[np.ndarray, np.ndarray]:
        """Positions of every cell in the given (array, column) pairs, and for each the
        index of its pair."""
        return self._line_cells(arrays, columns, along_rows=False)

    def row_cells(self, arrays, rows) -> tuple[np.ndarray, np.ndarray]:
        """Positions of every cell in the given (array, row) pairs, and for each the index
        of its pair."""
        return self._line_cells(arrays, rows, along_rows=True)

    def _line_cells(self, arrays, lines, along_rows: bool) -> tuple[np.ndarray, np.ndarray]:
        lines = np.asarray(lines, np.int64)
        pair = np.repeat(np.arange(len(lines)), self.size)
        other = np.tile(np.arange(self.size), len(lines))
        arrays = np.repeat(np.asarray(arrays, np.int64), self.size)
        lines = np.repeat(lines, self.size)
        rows, cols = (lines, other) if along_rows else (other, lines)
        positions, used = self.cells(arrays, rows, cols)
        return positions, pair[used]
