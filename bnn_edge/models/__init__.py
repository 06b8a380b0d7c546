"""The networks of the paper and the contract every network keeps (:mod:`.base`).

Networks are looked up by task name in :mod:`bnn_edge.tasks` (``build_network``).
"""

from __future__ import annotations

from bnn_edge.models.base import (
    BINARIZE_CHOICES,
    KEEPS_BINARY,
    BinarizableNet,
    LayerIO,
    check_variant,
    layers_of,
    probe,
)
from bnn_edge.models.spec import SpecNet

__all__ = ["BINARIZE_CHOICES", "KEEPS_BINARY", "BinarizableNet", "LayerIO", "SpecNet",
           "check_variant", "layers_of", "probe"]
