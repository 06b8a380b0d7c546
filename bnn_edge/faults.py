"""Bit errors in stored weights: inject them into a borrowed model, evaluate, give it back intact.

What is faulted (each bit of the stored representation flips independently with
probability ``ber``):

- **binary layers** (:func:`~bnn_edge.binarize.binary_layers`): the one bit per weight,
  i.e. the sign of ``sign(latent weight)`` (sign(0) = +1, so a latent 0 flips to -1);
- **real weights** of the other conv and linear layers, if ``real_format`` says how they
  are stored: ``fp32`` flips any of the 32 bits of the IEEE-754 word (sign, exponent or
  mantissa), ``int8`` quantizes each tensor symmetrically
  (``q = clamp(round(w / s), -127, 127)``, ``s = max|w| / 127``) and flips any of the 8
  bits of the two's-complement byte before dequantizing (so int8 at rate 0 is the
  quantized model); ``none`` leaves them exact.

Biases and batch-norm parameters are never faulted: in hardware they fold into the
per-neuron thresholds held next to the sense amplifiers.

:class:`WeightFaults` saves the targeted tensors when entered, overwrites them with
faulty copies on :meth:`~WeightFaults.inject` (always starting from the saved values, so
draws do not accumulate) and copies the saved tensors back, bit for bit, when left,
whatever happened inside. :func:`ber_sweep` evaluates a model over error rates and
Monte-Carlo draws with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from bnn_edge.binarize import BinaryLayer, binary_layers, binary_sign

REAL_FORMATS = ("none", "fp32", "int8")
_BITS = {"fp32": 32, "int8": 8}
# 1 << b as a two's-complement int32 (bit 31 is the sign bit: -2**31)
_POW2_INT32 = torch.tensor([1 << b for b in range(31)] + [-(1 << 31)], dtype=torch.int32)


def real_weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers of ``model`` that are not binary, as (name, module)."""
    kinds = (nn.Linear, nn.modules.conv._ConvNd)
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, kinds) and not isinstance(m, BinaryLayer)]


def flip_positions(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices in [0, n) of the bits an independent Bernoulli(``p``) draw per bit flips.

    The gaps between successive flips of a Bernoulli process are geometric, so the
    positions are cumulative sums of geometric draws: exact, and the cost follows the
    number of flips, not ``n``.
    """
    if p <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if p >= 1:
        return np.arange(n, dtype=np.int64)
    parts, last = [], -1
    while True:
        expected = (n - 1 - last) * p
        size = int(expected + 6 * math.sqrt(expected) + 16)
        positions = last + np.cumsum(rng.geometric(p, size=size))
        inside = positions[positions < n]
        parts.append(inside)
        if len(inside) < size:
            return np.concatenate(parts)
        last = int(positions[-1])


def fault_rng(seed: int, ber: float, draw: int) -> np.random.Generator:
    """The generator of draw ``draw`` at rate ``ber``: reproducible whatever else is swept."""
    rate_bits = int(np.array(ber, dtype=np.float64).view(np.uint64))
    return np.random.default_rng([seed, draw, rate_bits])


@dataclass(frozen=True)
class FlipCount:
    """How many stored bits one injection flipped, out of how many it could have."""

    binary_flipped: int = 0
    binary_bits: int = 0
    real_flipped: int = 0
    real_bits: int = 0

    @property
    def flipped(self) -> int:
        return self.binary_flipped + self.real_flipped

    @property
    def bits(self) -> int:
        return self.binary_bits + self.real_bits


@dataclass
class _Target:
    name: str
    param: nn.Parameter
    kind: str  # "binary", "fp32" or "int8"
    saved: torch.Tensor | None = None
    stored: torch.Tensor | None = None  # flat: +-1 signs, int32 words or uint8 bytes
    scale: float = 1.0

    @property
    def bits(self) -> int:
        return self.param.numel() * (1 if self.kind == "binary" else _BITS[self.kind])


class WeightFaults:
    """Borrow ``model``'s weights to inject bit errors; give them back bit for bit on exit.

    >>> with WeightFaults(model, real_format="int8") as faults:
    ...     faults.inject(1e-3, np.random.default_rng(0))  # a faulty copy of the weights
    ...     accuracy(model, loader)
    ... # every parameter is now exactly what it was before the ``with``

    Entering saves the targeted tensors (binary-layer weights; real conv/linear weights
    unless ``real_format="none"``); leaving copies them back, also when an exception is
    raised. The parameter objects stay the same, so optimizers and hooks keep working.
    """

    def __init__(self, model: nn.Module, real_format: str = "none"):
        if real_format not in REAL_FORMATS:
            raise ValueError(f"real_format={real_format!r}: expected one of "
                             f"{', '.join(REAL_FORMATS)}")
        self.model, self.real_format = model, real_format
        self.targets = [_Target(name, m.weight, "binary") for name, m in binary_layers(model)]
        if real_format != "none":
            self.targets += [_Target(name, m.weight, real_format)
                             for name, m in real_weight_layers(model)]
        for t in self.targets:
            if t.kind == "fp32" and t.param.dtype != torch.float32:
                raise ValueError(f"{t.name}: real_format=fp32 needs float32 weights, "
                                 f"got {t.param.dtype}")
        self.binary_bits = sum(t.bits for t in self.targets if t.kind == "binary")
        self.real_bits = sum(t.bits for t in self.targets if t.kind != "binary")
        self.borrowed = False

    @property
    def bits(self) -> int:
        """Stored bits that can fail (1 per binary weight, 32 or 8 per real weight)."""
        return self.binary_bits + self.real_bits

    @torch.no_grad()
    def borrow(self) -> WeightFaults:
        """Save the targeted weights and their stored form (signs, words, bytes)."""
        if self.borrowed:
            raise RuntimeError("WeightFaults is already holding the weights")
        for t in self.targets:
            t.saved = t.param.detach().clone()
            flat = t.saved.reshape(-1)
            if t.kind == "binary":
                t.stored = binary_sign(flat)
            elif t.kind == "fp32":
                t.stored = flat.view(torch.int32)
            else:
                max_abs = float(flat.abs().max()) if flat.numel() else 0.0
                t.scale = max_abs / 127 if max_abs > 0 else 1.0
                q = torch.clamp(torch.round(flat / t.scale), -127, 127).to(torch.int8)
                t.stored = q.view(torch.uint8)
        self.borrowed = True
        return self

    @torch.no_grad()
    def restore(self) -> None:
        """Copy the saved weights back (bit for bit) and drop the copies; no-op if not held."""
        if not self.borrowed:
            return
        for t in self.targets:
            t.param.copy_(t.saved)
            t.saved = t.stored = None
        self.borrowed = False

    def __enter__(self) -> WeightFaults:
        return self.borrow()

    def __exit__(self, *exc) -> None:
        self.restore()

    @torch.no_grad()
    def inject(self, ber: float, rng: np.random.Generator) -> FlipCount:
        """Overwrite the weights with their stored form, each bit flipped with prob. ``ber``.

        Starts from the saved weights every time. At ``ber=0`` binary layers compute
        exactly as before and int8 weights are the quantized ones.
        """
        if not self.borrowed:
            raise RuntimeError("inject() needs the weights borrowed: use `with WeightFaults(...)`")
        if not 0 <= ber <= 1:
            raise ValueError(f"ber={ber!r}: expected a number in [0, 1]")
        counts = {"binary": 0, "real": 0}
        for t in self.targets:
            pos = flip_positions(t.bits, ber, rng)
            counts["binary" if t.kind == "binary" else "real"] += len(pos)
            t.param.copy_(self._faulty(t, torch.from_numpy(pos).to(t.param.device)))
        return FlipCount(counts["binary"], self.binary_bits, counts["real"], self.real_bits)

    @staticmethod
    def _faulty(t: _Target, pos: torch.Tensor) -> torch.Tensor:
        shape = t.param.shape
        if t.kind == "binary":
            signs = t.stored.clone()
            signs[pos] = -signs[pos]
            return signs.view(shape)
        nbits = _BITS[t.kind]
        word, bit = pos // nbits, pos % nbits
        mask = torch.zeros(t.stored.numel(), dtype=torch.int32, device=t.stored.device)
        # distinct bits of one word: adding their values is OR-ing them
        mask.index_add_(0, word, _POW2_INT32.to(mask.device)[bit])
        if t.kind == "fp32":
            return (t.stored ^ mask).view(torch.float32).view(shape)
        flipped = (t.stored ^ mask.to(torch.uint8)).view(torch.int8)
        return (flipped.to(torch.float32) * t.scale).to(t.param.dtype).view(shape)


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode; restore every submodule's own train/eval flag afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def _batches(loaders) -> Iterable:
    if isinstance(loaders, list | tuple):
        for loader in loaders:
            yield from loader
    else:
        yield from loaders


Reduce = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def accuracy(model: nn.Module, loaders, device: torch.device | str | None = None,
             reduce: Reduce | None = None) -> float:
    """Top-1 accuracy of ``model`` in eval mode over (x, y) batches of one or more loaders.

    A sample whose scores are not all finite (an exponent bit flip can make them inf or
    NaN) counts as wrong. The model's train/eval modes are restored afterwards.
    ``reduce`` sums the (correct, total) counts over processes, so that under DDP every
    rank gets the accuracy of all samples rather than of its own shard.
    """
    if device is None:
        device = next(model.parameters()).device
    correct = total = 0
    with evaluation_mode(model):
        for batch in _batches(loaders):
            x, y = batch[0].to(device), batch[1].to(device)
            scores = model(x)
            ok = (scores.argmax(dim=1) == y) & torch.isfinite(scores).all(dim=1)
            correct += int(ok.sum())
            total += len(y)
    if reduce is not None:
        counts = reduce(torch.tensor([correct, total], dtype=torch.float64, device=device))
        correct, total = (int(round(float(c))) for c in counts)
    if total == 0:
        raise ValueError("no samples to evaluate")
    return correct / total


@dataclass
class SweepPoint:
    """Accuracy at one error rate over its Monte-Carlo draws (one draw at rate 0)."""

    ber: float
    accuracies: list[float] = field(default_factory=list)
    flipped: int = 0
    bits: int = 0

    @property
    def draws(self) -> int:
        return len(self.accuracies)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        """Sample standard deviation over draws (0 with one draw)."""
        return float(np.std(self.accuracies, ddof=1)) if self.draws > 1 else 0.0

    @property
    def flipped_fraction(self) -> float:
        """Bits flipped over bits exposed, all draws together (estimates ``ber``)."""
        return self.flipped / self.bits if self.bits else 0.0


def ber_sweep(model: nn.Module, loaders, rates: Iterable[float], draws: int,
              real_format: str = "none", seed: int = 0,
              device: torch.device | str | None = None,
              reduce: Reduce | None = None) -> list[SweepPoint]:
    """Accuracy of ``model`` at each bit error rate, over ``draws`` fault draws per rate.

    Rate 0 is evaluated once (it is deterministic). Draw ``d`` at rate ``r`` uses
    :func:`fault_rng(seed, r, d) <fault_rng>`, so results do not depend on which other
    rates are swept. The model runs in eval mode and gets its weights and modes back
    exactly, also if an exception interrupts the sweep. ``reduce`` pools the counts of
    all processes (see :func:`accuracy`); every process draws the same faults.
    """
    points = []
    with evaluation_mode(model), WeightFaults(model, real_format) as faults:
        for rate in rates:
            point = SweepPoint(float(rate))
            for draw in range(1 if rate == 0 else draws):
                count = faults.inject(rate, fault_rng(seed, rate, draw))
                point.flipped += count.flipped
                point.bits += count.bits
                point.accuracies.append(accuracy(model, loaders, device, reduce))
            points.append(point)
    return points


def rate_label(ber: float) -> str:
    """A short, stable name for an error rate in metric names and tables (3 significant)."""
    return "0" if ber == 0 else f"{ber:.3g}"
