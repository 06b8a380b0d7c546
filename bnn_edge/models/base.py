"""What every network of the project is: feature extractor, then classifier.

Memory accounting, fault injection, the exporters and the packed engine rely on this
contract, so it is a class rather than a habit: ``features`` (input norm and conv blocks)
and ``classifier`` (flatten or pool, then the fully connected layers) are
``nn.Sequential``; ``binarize``, ``aug`` and ``num_classes`` name the variant;
``forward(x) = classifier(features(x))``.
"""

from __future__ import annotations

import torch
from torch import nn

from bnn_edge.validation import require_choice, require_int

BINARIZE_CHOICES = ("none", "classifier", "full")


def check_variant(binarize: str, aug: int) -> None:
    """ConfigError (a ValueError) for an unknown ``binarize`` or an ``aug`` that is not an
    integer >= 1."""
    require_choice("binarize", binarize, BINARIZE_CHOICES)
    require_int("aug", aug, 1)


class BinarizableNet(nn.Module):
    """A network in one ``binarize`` variant, split into ``features`` and ``classifier``."""

    features: nn.Sequential
    classifier: nn.Sequential
    binarize: str
    aug: int
    num_classes: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
