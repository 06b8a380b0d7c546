"""Bit errors in stored weights: inject them into a borrowed model, give it back intact.

What is faulted: the weights of the binary layers (:func:`~bnn_edge.nn.binary_layers`),
stored with their layer's ``precision`` (1 bit: the sign), and, if ``real_format`` says how
they are stored (``fp32`` or ``int8``, see :mod:`~bnn_edge.hardware.faults.codecs`), the
weights of the other conv and linear layers; ``none`` leaves those exact. Which stored bits
read wrong in a draw is the fault model's choice (:mod:`~bnn_edge.hardware.faults.models`,
default ``bitflip``: each bit independently with probability ``ber``), drawn for the targets
in order (binary layers in :func:`~bnn_edge.nn.binary_layers` order, then real layers) with
one generator, as the packed engine draws them.

Biases and batch-norm parameters are never faulted: in hardware they fold into the
per-neuron thresholds held next to the sense amplifiers.

:class:`WeightFaults` saves the targeted tensors when entered, overwrites them with faulty
copies on :meth:`~WeightFaults.inject` (always starting from the saved values, so draws do
not accumulate) and copies the saved tensors back, bit for bit, when left, whatever
happened inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bnn_edge.hardware.faults.codecs import CODECS, REAL_FORMATS
from bnn_edge.hardware.faults.models import FAULT_MODELS, FaultModel, StoredBits
from bnn_edge.nn import BinaryLayer, binary_layers


def real_weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers of ``model`` that are not binary, as (name, module)."""
    kinds = (nn.Linear, nn.modules.conv._ConvNd)
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, kinds) and not isinstance(m, BinaryLayer)]


@dataclass(frozen=True)
class FlipCount:
    """How many stored bits one injection flipped, out of how many it could have."""

    binary_flipped: int = 0
    binary_bits: int = 0
    real_flipped: int = 0
    real_bits: int = 0

    @property
    def flipped(self) -> int:
        return self.binary_flipped + self.real_flipped

    @property
    def bits(self) -> int:
        return self.binary_bits + self.real_bits


@dataclass
class _Target:
    name: str
    param: nn.Parameter
    kind: str  # a codec: "binary", "fp32" or "int8"
    bits_per_weight: int
    saved: torch.Tensor | None = None
    stored: torch.Tensor | None = None  # flat: +-1 signs, int32 words or uint8 bytes
    scale: float = 1.0
    view: StoredBits | None = None  # what the fault model sees

    @property
    def bits(self) -> int:
        return self.param.numel() * self.bits_per_weight


class WeightFaults:
    """Borrow ``model``'s weights to inject bit errors; give them back bit for bit on exit.

    >>> with WeightFaults(model, real_format="int8") as faults:
    ...     faults.inject(1e-3, np.random.default_rng(0))  # a faulty copy of the weights
    ...     accuracy(model, loader)
    ... # every parameter is now exactly what it was before the ``with``

    Entering saves the targeted tensors (binary-layer weights; real conv/linear weights
    unless ``real_format="none"``); leaving copies them back, also when an exception is
    raised. The parameter objects stay the same, so optimizers and hooks keep working.
    ``fault_model`` is a :class:`~bnn_edge.hardware.faults.models.FaultModel` or the name
    of one (its defaults); :meth:`inject` sets its ``parameter`` (default: the model's
    level, e.g. ``ber`` or the fraction of stuck devices) to the value given.
    """

    def __init__(self, model: nn.Module, real_format: str = "none",
                 fault_model: FaultModel | str = "bitflip", parameter: str | None = None):
        if real_format not in REAL_FORMATS:
            raise ValueError(f"real_format={real_format!r}: expected one of "
                             f"{', '.join(REAL_FORMATS)}")
        if isinstance(fault_model, str):
            if fault_model not in FAULT_MODELS:
                raise ValueError(f"fault_model={fault_model!r}: expected one of "
                                 f"{', '.join(FAULT_MODELS)}")
            fault_model = FAULT_MODELS[fault_model]()
        self.model, self.real_format = model, real_format
        self.fault_model, self.parameter = fault_model, parameter
        self.targets = [_Target(name, m.weight, "binary", m.precision)
                        for name, m in binary_layers(model)]
        if real_format != "none":
            codec = CODECS[real_format]
            self.targets += [_Target(name, m.weight, real_format, codec.bits)
                             for name, m in real_weight_layers(model)]
        for t in self.targets:
            if t.kind == "fp32" and t.param.dtype != torch.float32:
                raise ValueError(f"{t.name}: real_format=fp32 needs float32 weights, "
                                 f"got {t.param.dtype}")
        self.binary_bits = sum(t.bits for t in self.targets if t.kind == "binary")
        self.real_bits = sum(t.bits for t in self.targets if t.kind != "binary")
        self.borrowed = False

    @property
    def bits(self) -> int:
        """Stored bits that can fail (1 per binary weight, 32 or 8 per real weight)."""
        return self.binary_bits + self.real_bits

    @torch.no_grad()
    def borrow(self) -> WeightFaults:
        """Save the targeted weights and their stored form (signs, words, bytes)."""
        if self.borrowed:
            raise RuntimeError("WeightFaults is already holding the weights")
        for t in self.targets:
            t.saved = t.param.detach().clone()
            codec = CODECS[t.kind]
            t.stored, t.scale = codec.encode(t.saved.reshape(-1))
            outputs = t.param.shape[0]
            t.view = StoredBits(outputs, t.param.numel() // outputs, t.bits_per_weight,
                                lambda stored=t.stored, codec=codec: codec.words(stored))
        self.borrowed = True
        return self

    @torch.no_grad()
    def restore(self) -> None:
        """Copy the saved weights back (bit for bit) and drop the copies; no-op if not held."""
        if not self.borrowed:
            return
        for t in self.targets:
            t.param.copy_(t.saved)
            t.saved = t.stored = t.view = None
        self.borrowed = False

    def __enter__(self) -> WeightFaults:
        return self.borrow()

    def __exit__(self, *exc) -> None:
        self.restore()

    def model_at(self, value) -> FaultModel:
        """The fault model with the swept parameter at ``value`` (ConfigError if out of range)."""
        return self.fault_model.at(value, self.parameter)

    def draw(self, value, rng: np.random.Generator) -> list[np.ndarray]:
        """The positions that read wrong in each target, in order, for one draw at ``value``."""
        if not self.borrowed:
            raise RuntimeError("draw() needs the weights borrowed: use `with WeightFaults(...)`")
        model = self.model_at(value)
        return [model.flips(t.view, rng) for t in self.targets]

    @torch.no_grad()
    def inject(self, value, rng: np.random.Generator) -> FlipCount:
        """Overwrite the weights with their stored form, the fault model's bits read wrong.

        ``value``: the swept parameter's value (``ber`` for ``bitflip``). Starts from the
        saved weights every time. Where the model is fault-free binary layers compute
        exactly as before and int8 weights are the quantized ones.
        """
        if not self.borrowed:
            raise RuntimeError("inject() needs the weights borrowed: use `with WeightFaults(...)`")
        counts = {"binary": 0, "real": 0}
        for t, pos in zip(self.targets, self.draw(value, rng), strict=True):
            counts["binary" if t.kind == "binary" else "real"] += len(pos)
            pos_t = torch.from_numpy(pos).to(t.param.device)
            faulty = CODECS[t.kind].faulty(t.stored, pos_t, t.scale, t.param.dtype)
            t.param.copy_(faulty.view(t.param.shape))
        return FlipCount(counts["binary"], self.binary_bits, counts["real"], self.real_bits)
