"""Network registry: ``build_network(name, binarize, aug)`` for every task of the project.

Each entry says how to build the network, which extra ``model.*`` options its builder takes
(MobileNet's ``hidden``) and its class count when none is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bnn_edge.models.base import BINARIZE_CHOICES, BinarizableNet, check_variant
from bnn_edge.models.ecg import ecg_net
from bnn_edge.models.eeg import eeg_net
from bnn_edge.models.mobilenet import mobilenet_net
from bnn_edge.models.spec import SpecNet
from bnn_edge.validation import require_choice


@dataclass(frozen=True)
class Network:
    """A registered network: its builder, the builder's extra options, its default classes."""

    build: Callable[..., BinarizableNet]
    options: tuple[str, ...] = ()
    default_classes: int = 2


NETWORKS: dict[str, Network] = {
    "ecg": Network(ecg_net),
    "eeg": Network(eeg_net),
    "mobilenet": Network(mobilenet_net, options=("hidden",), default_classes=1000),
}


def check_network(name: str, binarize: str, aug: int) -> Network:
    """The registry entry of ``name``, with ``binarize`` and ``aug`` checked (ConfigError)."""
    require_choice("model", name, sorted(NETWORKS))
    check_variant(binarize, aug)
    return NETWORKS[name]


def build_network(name: str, binarize: str = "none", aug: int = 1, **kwargs) -> BinarizableNet:
    """Build the network registered as ``name`` in the given variant."""
    return check_network(name, binarize, aug).build(binarize=binarize, aug=aug, **kwargs)


__all__ = ["BINARIZE_CHOICES", "NETWORKS", "BinarizableNet", "Network", "SpecNet",
           "build_network", "check_network", "check_variant"]
