"""Bit-level snapshots of a model's tensors, for tests that need weights given back exactly."""

from __future__ import annotations

import torch
from torch import nn


def raw_bits(t: torch.Tensor) -> torch.Tensor:
    """The bytes of a tensor (on the CPU), so that -0.0 != 0.0 and NaN payloads count."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).clone()


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """The bytes of every tensor of ``model``'s state dict."""
    return {k: raw_bits(v) for k, v in model.state_dict().items()}


def assert_bit_identical(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    """Every tensor of ``model`` holds exactly the bytes of the ``before`` snapshot."""
    after = snapshot(model)
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key
