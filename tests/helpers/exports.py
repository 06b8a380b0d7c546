"""Native exports of small random binary classifiers, and model.npz rewritten to use all of
the contract: real (non-integer) and huge thresholds (docs/export.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from bnn_edge.hardware.export import export_model
from bnn_edge.models import BinarizableNet
from bnn_edge.nn import BinaryLinear, SignActivation

HUGE = (3e9, 1e12, -1e12, -3e9)  # beyond int32 and float32-inexact: never or always fires


class Head(BinarizableNet):
    """A network that is only a classifier (its features do nothing), as export_model takes."""

    def __init__(self, classifier: nn.Sequential, inputs: int):
        super().__init__()
        self.input_shape = (inputs,)
        self.features = nn.Sequential()
        self.classifier = classifier


def random_classifier(widths: tuple[int, ...], seed: int) -> Head:
    """sign, then binary linear + batch norm (+ sign) for each step of ``widths``; random
    weights and batch-norm statistics (negative scales included), eval mode."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = [SignActivation()]
    for k, (n, m) in enumerate(zip(widths, widths[1:], strict=False)):
        norm = nn.BatchNorm1d(m)
        norm.running_mean.uniform_(-3, 3)
        norm.running_var.uniform_(0.5, 4)
        norm.weight.data.normal_()
        norm.bias.data.normal_()
        mods += [BinaryLinear(n, m), norm]
        if k < len(widths) - 2:
            mods.append(SignActivation())
    return Head(nn.Sequential(*mods), widths[0]).eval()


def classifier_export(folder: Path, widths: tuple[int, ...], seed: int,
                      samples: int = 64) -> tuple[Head, np.ndarray]:
    """Export a :func:`random_classifier` to ``folder``; the net and its +-1 test inputs."""
    net = random_classifier(widths, seed)
    x = torch.randn(samples, widths[0], generator=torch.Generator().manual_seed(seed))
    export_model(net, Path(folder), x, {"model": "test", "binarize": "classifier", "aug": 1})
    return net, np.load(Path(folder) / "vectors.npz")["classifier_input"]


def rewrite_thresholds(folder: Path, seed: int) -> None:
    """Give every hidden layer of ``folder``'s model.npz random non-integer and integer
    thresholds near the reachable d, :data:`HUGE` ones on its first outputs, random flips."""
    rng = np.random.default_rng(seed)
    path = Path(folder) / "model.npz"
    model = dict(np.load(path))
    for key in [k for k in model if k.endswith(".threshold")]:
        name = key.removesuffix(".threshold")
        n, m = int(model[f"{name}.in_features"]), len(model[key])
        t = (rng.integers(-n // 3, n // 3 + 1, m)
             + rng.choice([-0.75, -0.5, 0.0, 0.25, 0.5], m)).astype(np.float64)
        flip = rng.random(m) < 0.5
        t[:len(HUGE)], flip[:len(HUGE)] = HUGE, [False, True, False, True]
        model[key], model[f"{name}.flip"] = t, flip
    np.savez(path, **model)
