"""Evaluating a model over error rates and Monte-Carlo fault draws, weights given back.

:func:`ber_sweep` evaluates a model at each bit error rate (or value of another fault-model
parameter) over ``draws`` fault draws (one where the model is fault-free), through
:class:`~bnn_edge.hardware.faults.inject.WeightFaults`, in eval mode; the weights and
train/eval modes are restored exactly afterwards, exceptions included. On a CUDA device
the sweep computes in IEEE float32 (TF32 off, :func:`ieee_float32`) so that it gives the
table the CPU gives for the same seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from bnn_edge.hardware.faults.inject import WeightFaults
from bnn_edge.hardware.faults.models import FaultModel, fault_rng
from bnn_edge.nn import evaluation_mode


@contextmanager
def ieee_float32(device: torch.device | str) -> Iterator[None]:
    """On CUDA, full float32 convolutions and matrix products (no TF32) while inside.

    cuDNN convolutions use TF32 (a 10-bit mantissa) by default on Ampere and later GPUs, and
    that rounding moves pre-activations near a sign's threshold to the other side. The flags
    are restored on the way out; elsewhere this does nothing.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


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
    """Accuracy at one error rate over its Monte-Carlo draws (one draw at rate 0).

    ``ber`` is the swept value: the error rate, or the value of the fault model's swept
    parameter (a fraction of stuck devices, failed columns per array, hours, ...).
    """

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
        """Bits read wrong over bits exposed, all draws together (estimates ``ber``; for
        other models, the bit error rate they cause)."""
        return self.flipped / self.bits if self.bits else 0.0


def ber_sweep(model: nn.Module, loaders, rates: Iterable[float], draws: int,
              real_format: str = "none", seed: int = 0,
              device: torch.device | str | None = None,
              reduce: Reduce | None = None, fault_model: FaultModel | str = "bitflip",
              parameter: str | None = None,
              progress: Callable[[], None] | None = None) -> list[SweepPoint]:
    """Accuracy of ``model`` at each bit error rate, over ``draws`` fault draws per rate.

    ``rates`` are the values of ``fault_model``'s ``parameter`` (default: its level, the
    error rate for ``bitflip``). A fault-free value (rate 0) is evaluated once (it is
    deterministic). Draw ``d`` at value ``r`` uses :func:`fault_rng(seed, r, d)
    <fault_rng>`, so results do not depend on which other values are swept; the faults of
    a draw hold for every batch. The model runs in eval mode and gets its weights and modes
    back exactly, also if an exception interrupts the sweep. ``reduce`` pools the counts of
    all processes (see :func:`accuracy`); every process draws the same faults.
    ``progress`` is called after each evaluated draw.
    """
    points = []
    where = device if device is not None else next(model.parameters()).device
    with evaluation_mode(model), ieee_float32(where), \
            WeightFaults(model, real_format, fault_model, parameter) as faults:
        for rate in rates:
            point = SweepPoint(float(rate))
            for draw in range(1 if faults.model_at(rate).fault_free else draws):
                count = faults.inject(rate, fault_rng(seed, rate, draw))
                point.flipped += count.flipped
                point.bits += count.bits
                point.accuracies.append(accuracy(model, loaders, device, reduce))
                if progress is not None:
                    progress()
            points.append(point)
    return points


def rate_label(ber: float) -> str:
    """A short, stable name for an error rate in metric names and tables (3 significant)."""
    return "0" if ber == 0 else f"{ber:.3g}"
