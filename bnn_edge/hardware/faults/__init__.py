"""RRAM faults in stored weights: codecs (how weights are stored as bits) x fault models
(which bits read wrong), injected into a borrowed model and given back bit for bit.

- :mod:`.codecs`: ``binary`` (1 bit), ``fp32`` (IEEE-754 word), ``int8`` (quantized byte);
- :mod:`.models`: the fault models (``bitflip``, ``asymmetric``, ``stuck``, ``array``,
  ``retention``, ``sec``), their registry and the seeded draws;
- :mod:`.inject`: :class:`WeightFaults`, the borrow / inject / restore cycle;
- :mod:`.sweep`: accuracy over error rates and Monte-Carlo draws;
- :mod:`.settings`: the checked ``bit_errors.*`` options.
"""

from bnn_edge.hardware.faults.codecs import CODECS, REAL_FORMATS
from bnn_edge.hardware.faults.inject import FlipCount, WeightFaults, real_weight_layers
from bnn_edge.hardware.faults.models import (
    FAULT_MODELS,
    FaultModel,
    fault_rng,
    flip_positions,
    parse_fault_model,
)
from bnn_edge.hardware.faults.settings import (
    BitErrorSettings,
    bit_error_settings,
    check_fault_target,
)
from bnn_edge.hardware.faults.sweep import (
    SweepPoint,
    accuracy,
    ber_sweep,
    rate_label,
)

__all__ = ["CODECS", "FAULT_MODELS", "REAL_FORMATS", "BitErrorSettings", "FaultModel",
           "FlipCount", "SweepPoint", "WeightFaults", "accuracy", "ber_sweep",
           "bit_error_settings", "check_fault_target", "fault_rng",
           "flip_positions", "parse_fault_model", "rate_label", "real_weight_layers"]
