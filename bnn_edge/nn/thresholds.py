"""The thresholds of binary neurons: the batch norms whose output goes to a sign.

sign(gamma * x_hat + beta) fires when x_hat > -beta / gamma, so such a batch norm's shift
is the neuron's threshold in units of its input's standard deviation. With every shift at
0 a sign of a zero-mean oscillation only keeps its zero crossings, the same at any
amplitude; thresholds spread away from 0 make the rate of +1s depend on amplitude, which is
how band power (the EEG task's class) reaches the binary layers (docs/eeg.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from bnn_edge.nn.quantizers import SignActivation

# layers between a batch norm and its sign that leave the sign unchanged
# (sign(hardtanh(x)) == sign(x); flatten and identity move no values; dropout only zeroes)
_TRANSPARENT = (nn.Flatten, nn.Dropout, nn.Identity, nn.Hardtanh)


def threshold_norms(model: nn.Module) -> list[_BatchNorm]:
    """The batch norms of ``model`` whose output feeds a :class:`SignActivation`.

    Walks the leaf modules in the order they were registered, which is the order of the
    forward pass in the project's networks (``nn.Sequential`` blocks, ``features`` before
    ``classifier``), so a batch norm at the end of ``features`` is found for a sign after
    the flatten of ``classifier``.
    """
    found: list[_BatchNorm] = []
    pending = None
    for module in model.modules():
        if next(module.children(), None) is not None:
            continue  # containers: their leaves come next
        if isinstance(module, _BatchNorm):
            pending = module
        elif isinstance(module, SignActivation):
            if pending is not None:
                found.append(pending)
            pending = None
        elif not isinstance(module, _TRANSPARENT):
            pending = None
    return found


def spread_thresholds_(norms: list[_BatchNorm], half_width: float,
                       generator: torch.Generator | None = None) -> None:
    """Draw every shift of ``norms`` from U(-half_width, half_width) (0 leaves them at 0)."""
    if half_width == 0:
        return
    with torch.no_grad():
        for bn in norms:
            if bn.bias is not None:
                bn.bias.uniform_(-half_width, half_width, generator=generator)
