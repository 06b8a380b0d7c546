"""What every network of the project is: an input shape, then features, then classifier.

Memory accounting, fault injection, cost, the exporters and the packed engine rely on this
contract, so it is a class rather than a habit:

- ``input_shape``: one trial as ``forward`` takes it (no batch axis);
- ``prepare(x)``: what the first layer sees (EEG adds a plane axis; the identity otherwise);
- ``features`` (input norm and conv blocks) and ``classifier`` (flatten or pool, then the
  fully connected layers) are ``nn.Sequential`` of single layers, so that
  ``forward(x) = classifier(features(prepare(x)))`` and :meth:`BinarizableNet.layers` lists
  them in order;
- ``binarize``, ``aug`` and ``num_classes`` name the variant.

:func:`layers_of` is the one layer walker and :func:`probe` the one shape probe the
hardware side uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from bnn_edge.nn import SignActivation, evaluation_mode
from bnn_edge.validation import require_choice, require_int

BINARIZE_CHOICES = ("none", "classifier", "full")
#: layers that pass +-1 values on as +-1 values (a sign's output stays binary through them)
KEEPS_BINARY = (nn.Dropout, nn.Flatten, nn.Identity, nn.MaxPool1d, nn.MaxPool2d)


def check_variant(binarize: str, aug: int) -> None:
    """ConfigError (a ValueError) for an unknown ``binarize`` or an ``aug`` that is not an
    integer >= 1."""
    require_choice("binarize", binarize, BINARIZE_CHOICES)
    require_int("aug", aug, 1)


class BinarizableNet(nn.Module):
    """A network in one ``binarize`` variant: ``input_shape``, ``features``, ``classifier``."""

    input_shape: tuple[int, ...]
    features: nn.Sequential
    classifier: nn.Sequential
    binarize: str
    aug: int
    num_classes: int

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The batch as the first layer takes it (a subclass may add an axis)."""
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.prepare(x)))

    def layers(self) -> list[tuple[str, nn.Module]]:
        """``(name, layer)`` in forward order: ``features.<i>`` then ``classifier.<i>``."""
        return [(f"{part}.{name}", m) for part in ("features", "classifier")
                for name, m in getattr(self, part).named_children()]


def layers_of(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ordered layers of a :class:`BinarizableNet` or of a plain ``nn.Sequential``;
    ValueError for anything else (its order could not be known)."""
    if isinstance(net, BinarizableNet):
        return net.layers()
    if isinstance(net, nn.Sequential):
        return list(net.named_children())
    raise ValueError(f"{type(net).__name__}: expected a BinarizableNet (features and "
                     f"classifier) or an nn.Sequential")


@dataclass(frozen=True)
class LayerIO:
    """One layer seen by :func:`probe`: its shapes for one sample (no batch axis), and whether
    its input is binary (a sign's output, through layers in :data:`KEEPS_BINARY`)."""

    name: str
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    binary_in: bool


@torch.no_grad()
def probe(net: nn.Module, input_shape: Sequence[int] | None = None) -> list[LayerIO]:
    """Every layer of :func:`layers_of` with its shapes, from one pass of a zero trial (batch
    1, eval mode) on the device of the weights, which may be the meta device (shapes only).

    ``input_shape`` defaults to the network's own; a plain ``nn.Sequential`` needs it.
    """
    if input_shape is None:
        input_shape = getattr(net, "input_shape", None)
        if input_shape is None:
            raise ValueError(f"{type(net).__name__}: give the input shape to probe")
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(1, *input_shape, device=device)
    if isinstance(net, BinarizableNet):
        x = net.prepare(x)
    found, binary = [], False
    with evaluation_mode(net):
        for name, m in layers_of(net):
            out = m(x)
            found.append(LayerIO(name, m, tuple(x.shape[1:]), tuple(out.shape[1:]), binary))
            binary = isinstance(m, SignActivation) or (binary and isinstance(m, KEEPS_BINARY))
            x = out
    return found
