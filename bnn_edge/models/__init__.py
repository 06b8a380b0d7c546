"""Network registry: ``build_network(name, binarize, aug)`` for every task of the project."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from bnn_edge.models.ecg import ecg_net
from bnn_edge.models.eeg import eeg_net
from bnn_edge.models.mobilenet import mobilenet_net
from bnn_edge.models.spec import BINARIZE_CHOICES, SpecNet, check_variant

NETWORKS: dict[str, Callable[..., nn.Module]] = {"ecg": ecg_net, "eeg": eeg_net,
                                              "mobilenet": mobilenet_net}


def build_network(name: str, binarize: str = "none", aug: int = 1, **kwargs) -> nn.Module:
    """Build the network registered as ``name`` in the given variant."""
    if name not in NETWORKS:
        raise ValueError(f"model={name!r}: expected one of {', '.join(sorted(NETWORKS))}")
    check_variant(binarize, aug)
    return NETWORKS[name](binarize=binarize, aug=aug, **kwargs)


__all__ = ["BINARIZE_CHOICES", "NETWORKS", "SpecNet", "build_network", "check_variant"]
