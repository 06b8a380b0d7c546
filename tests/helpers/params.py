"""Parameter counts of a network's layers by type, for the tests that check paper tables."""

from __future__ import annotations

from torch import nn


def layer_parameters(module: nn.Module, kinds: tuple[type, ...]) -> dict[str, int]:
    """Weights and biases of the submodules of ``module`` that are of ``kinds``."""
    weights = biases = 0
    for m in module.modules():
        if isinstance(m, kinds):
            weights += m.weight.numel()
            biases += m.bias.numel() if m.bias is not None else 0
    return {"weights": weights, "biases": biases, "total": weights + biases}


def conv_parameters(model) -> dict[str, int]:
    """Weights and biases of the convolutions (batch norm excluded)."""
    return layer_parameters(model.features, (nn.Conv1d, nn.Conv2d))


def classifier_parameters(model) -> dict[str, int]:
    """Weights and biases of the fully connected layers (batch norm excluded)."""
    return layer_parameters(model.classifier, (nn.Linear,))


def trainable_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (weights, biases, batch-norm scales and shifts)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
