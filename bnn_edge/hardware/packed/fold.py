"""Binary layers as packed bits: batch norm and sign folded into thresholds, XNOR-popcount.

For a binary layer with n inputs, weights w and inputs x in {-1, +1}, the +-1 dot product
is ``d = 2 * popcount(XNOR(w, x)) - n = n - 2 * popcount(w XOR x)`` on bits where 1 means +1.

- A hidden layer (binary layer, optional bias, optional batch norm, then sign) outputs +1
  iff ``d >= threshold`` (``flip`` false) or iff ``d <= threshold`` (``flip`` true, where
  the batch-norm scale is negative). Thresholds are found by evaluating the PyTorch layers
  on every reachable d (n, n-2, ..., -n) in float32, so the rule reproduces the PyTorch
  model's bits exactly, rounding included.
- The last layer outputs real scores ``scale * d + offset`` (bias and batch norm folded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bnn_edge.models import layers_of
from bnn_edge.nn import BinaryLayer, SignActivation, binary_sign


@dataclass
class FoldedLayer:
    """A binary FC layer in export form (see the module docstring for the rule)."""

    name: str
    in_features: int
    out_features: int
    weight_bits: np.ndarray  # uint8 (out, ceil(in / 8)), bitorder little, 1 = +1
    threshold: np.ndarray | None = None  # float64 (out,), hidden layers
    flip: np.ndarray | None = None  # bool (out,), hidden layers
    scale: np.ndarray | None = None  # float32 (out,), last layer
    offset: np.ndarray | None = None  # float32 (out,), last layer

    @property
    def is_last(self) -> bool:
        return self.scale is not None

    def check(self) -> None:
        """ValueError naming the key where this layer breaks the contract (docs/export.md)."""
        n, m, name = self.in_features, self.out_features, self.name
        if n < 1:
            raise ValueError(f"{name}.in_features: {n}; at least 1 expected")
        bits = self.weight_bits
        if bits.dtype != np.uint8 or bits.shape != (m, -(-n // 8)) or m < 1:
            raise ValueError(f"{name}.weight_bits: uint8 (outputs >= 1, ceil({n} / 8)) "
                             f"expected, got {bits.dtype} {bits.shape}")
        rows = np.flatnonzero(bits[:, -1] >> (n % 8)) if n % 8 else []
        if len(rows):
            raise ValueError(f"{name}.weight_bits: bits beyond in_features={n} are set in "
                             f"{len(rows)} rows (the first: row {rows[0]}); padding bits "
                             f"must be 0")
        keys = ("scale", "offset") if self.is_last else ("threshold", "flip")
        for key in keys:
            v = getattr(self, key)
            if v is None or v.shape != (m,):
                raise ValueError(f"{name}.{key}: shape ({m},) expected, got "
                                 f"{None if v is None else v.shape}")
            if key == "flip":
                if v.dtype != bool:
                    raise ValueError(f"{name}.flip: bool expected, got {v.dtype}")
            elif not np.all(np.isfinite(v)):
                i = int(np.flatnonzero(~np.isfinite(v))[0])
                raise ValueError(f"{name}.{key}: not finite ({v[i]} at output {i})")


def integer_thresholds(threshold: np.ndarray, flip: np.ndarray, n: int) -> np.ndarray:
    """The exact integer form of float64 thresholds for a fan-in of ``n`` (int64).

    d is an integer, so d >= t iff d >= ceil(t), and d <= t iff d <= floor(t); beyond
    [-(n+1), n+1] a neuron always or never fires, so the result is clamped there.
    """
    t = np.asarray(threshold, np.float64)
    t = np.where(np.asarray(flip, bool), np.floor(t), np.ceil(t))
    return np.clip(t, -(n + 1), n + 1).astype(np.int64)


def pack_pm1(x: np.ndarray) -> np.ndarray:
    """Pack +-1 values along the last axis into uint8 bytes (little bit order, 1 = +1)."""
    return np.packbits(np.asarray(x) > 0, axis=-1, bitorder="little")


def _segments(classifier: nn.Sequential):
    """Yield (name, binary linear, modules after it up to the next binary layer)."""
    mods = layers_of(classifier)
    idx = [i for i, (_, m) in enumerate(mods) if isinstance(m, BinaryLayer)]
    for k, i in enumerate(idx):
        end = idx[k + 1] if k + 1 < len(idx) else len(mods)
        yield mods[i][0], mods[i][1], [m for _, m in mods[i + 1:end]]


@torch.no_grad()
def fold_classifier(classifier: nn.Sequential, prefix: str = "classifier") -> list[FoldedLayer]:
    """Fold the binary FC layers of a classifier (eval-mode batch norm) into export form.

    The classifier's modules are visited in order; between two binary linear layers only
    batch norm, dropout (identity at inference) and one sign activation may stand. The
    last binary layer must end the classifier (batch norm allowed), producing scores, which
    must fold into finite constants (ValueError otherwise).
    """
    was_training = classifier.training
    classifier.eval()
    try:
        segments = list(_segments(classifier))
        if not segments:
            raise ValueError("the classifier has no binary layers")
        layers = []
        for k, (name, linear, after) in enumerate(segments):
            if not isinstance(linear, nn.Linear):
                raise ValueError(f"{prefix}.{name}: only binary linear layers can be folded")
            post = [m for m in after if not isinstance(m, nn.Dropout)]
            has_sign = any(isinstance(m, SignActivation) for m in post)
            last = k == len(segments) - 1
            if last == has_sign or any(not isinstance(m, nn.BatchNorm1d | SignActivation)
                                       for m in post):
                raise ValueError(f"{prefix}.{name}: expected [batch norm] + sign between "
                                 f"binary layers and [batch norm] after the last one")
            norm = next((m for m in post if isinstance(m, nn.BatchNorm1d)), nn.Identity())
            n, m = linear.in_features, linear.out_features
            bias = linear.bias if linear.bias is not None else torch.zeros(m)
            w = binary_sign(linear.weight).cpu().numpy()
            layer = FoldedLayer(f"{prefix}.{name}", n, m, pack_pm1(w))
            if last:
                if isinstance(norm, nn.BatchNorm1d):
                    inv = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                    layer.scale = inv.cpu().numpy().astype(np.float32)
                    layer.offset = ((bias - norm.running_mean) * inv + norm.bias).cpu().numpy()
                else:
                    layer.scale = np.ones(m, np.float32)
                    layer.offset = bias.cpu().numpy()
                layer.offset = layer.offset.astype(np.float32)
            else:
                layer.threshold, layer.flip = _thresholds(norm, bias, n)
            layer.check()  # a non-finite scale or offset (batch-norm statistics) is refused
            layers.append(layer)
        return layers
    finally:
        classifier.train(was_training)


def _thresholds(norm: nn.Module, bias: torch.Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-neuron thresholds: evaluate sign(norm(d + bias)) for every reachable d."""
    d = torch.arange(-n, n + 1, 2, dtype=torch.float32)  # ascending
    on = (norm(d[:, None] + bias[None, :]) >= 0).cpu().numpy()  # (len(d), out)
    return threshold_rule(on, n)


def threshold_rule(on: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds and flips from ``on[i, j]``: is output j +1 at d = -n + 2i (ascending d)?

    Each column must be monotonic in d (off...on: +1 iff d >= threshold; on...off: flip,
    +1 iff d <= threshold); constant columns get -(n+1) (always) or n+1 (never).
    """
    d = np.arange(-n, n + 1, 2, dtype=np.float64)
    threshold = np.empty(on.shape[1])
    flip = np.zeros(on.shape[1], dtype=bool)
    for j in range(on.shape[1]):
        col = on[:, j]
        if col.all() or not col.any():  # constant output: always or never +1
            threshold[j] = -(n + 1) if col.all() else n + 1
        elif np.all(np.diff(col.astype(np.int8)) >= 0):  # off ... off on ... on
            threshold[j] = d[np.argmax(col)]
        elif np.all(np.diff(col.astype(np.int8)) <= 0):  # on ... on off ... off
            flip[j] = True
            threshold[j] = d[len(col) - 1 - np.argmax(col[::-1])]
        else:
            raise ValueError(f"neuron {j}: sign(batch norm) is not monotonic in d")
    return threshold, flip
