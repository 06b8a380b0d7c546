"""The ``bit_errors.*`` options, checked once for the callbacks and the evaluate command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from bnn_edge.errors import ConfigError
from bnn_edge.hardware.device import CELLS, DeviceModel, check_cell
from bnn_edge.hardware.faults.codecs import REAL_FORMATS
from bnn_edge.hardware.faults.models import FAULT_MODELS
from bnn_edge.hardware.faults.sweep import rate_label
from bnn_edge.validation import is_number, require_choice, require_int, require_number


def _as_list(value) -> list:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


@dataclass(frozen=True)
class BitErrorSettings:
    """Checked ``bit_errors.*`` options.

    ``rates`` are the error rates to sweep: ``ber`` as given, or, with ``cell`` set, the
    device model's rate for that cell after each of ``cycles`` (then ``rate_cycles`` holds
    the cycle count of each rate).
    """

    rates: tuple[float, ...]
    draws: int
    real_formats: tuple[str, ...]
    seed: int
    device_model: DeviceModel
    cycles: tuple[float, ...]
    cell: str | None = None
    rate_cycles: tuple[float, ...] | None = None
    every_n_epochs: int = 1
    train_ber: float = 0.0
    fault_model: str = "bitflip"

    @property
    def real_format(self) -> str:
        """The one real-weight format (callbacks take one; the evaluate command a list)."""
        return self.real_formats[0]

    def operating_points(self) -> list[tuple[str, float, float]]:
        """(cell, cycles, rate) of both cells at each of ``cycles``: the points plots mark."""
        return [(cell, c, self.device_model.ber(cell, c)) for c in self.cycles for cell in CELLS]


def device_model(device) -> DeviceModel:
    """A :class:`DeviceModel` from ``bit_errors.device`` (a mapping of its fields; missing
    ones keep the HfO2 preset); ConfigError names a bad field."""
    if device is not None and not isinstance(device, dict):
        raise ConfigError("bit_errors.device", device, "a mapping of device-model fields, e.g. "
                          "bit_errors.device.sigma=0.2 (window, sigma, sigma_growth, lrs_log10)")
    names = [f.name for f in fields(DeviceModel)]
    for key, value in (device or {}).items():
        if key not in names:
            raise ConfigError(f"bit_errors.device.{key}", value,
                              f"one of the fields {', '.join(names)}")
    try:
        return DeviceModel(**(device or {}))
    except ConfigError as e:
        raise ConfigError(f"bit_errors.device.{e.option}", e.value, e.allowed) from None


def bit_error_settings(ber=(0, 1e-4, 1e-3, 1e-2, 1e-1), cell=None, cycles=(1e6,), device=None,
                       draws: int = 20, real_format="none", seed: int = 0,
                       every_n_epochs: int = 1, train_ber: float = 0.0,
                       fault_model: str = "bitflip",
                       multiple_formats: bool = False) -> BitErrorSettings:
    """Check the ``bit_errors.*`` options; ConfigError names the first bad one.

    ``real_format`` may be a list only with ``multiple_formats`` (the evaluate command).
    """
    rates = _as_list(ber)
    if not rates or not all(is_number(r) and 0 <= r <= 1 for r in rates):
        raise ConfigError("bit_errors.ber", ber,
                          "a number or a non-empty list of numbers in [0, 1]")
    cycle_list = _as_list(cycles)
    if not cycle_list or not all(is_number(c) and c >= 1 for c in cycle_list):
        raise ConfigError("bit_errors.cycles", cycles,
                          "a number or a non-empty list of numbers >= 1 (programming cycles)")
    if cell is not None:
        try:
            cell = check_cell(cell)
        except ConfigError:
            raise ConfigError("bit_errors.cell", cell,
                              f"null or one of {', '.join(CELLS)}") from None
    model = device_model(device)
    require_int("bit_errors.draws", draws, 1)
    formats = _as_list("none" if real_format is None else real_format)
    formats = ["none" if f is None else f for f in formats]
    if (not formats or any(f not in REAL_FORMATS for f in formats)
            or (len(formats) > 1 and not multiple_formats) or len(set(formats)) < len(formats)):
        allowed = f"one of {', '.join(REAL_FORMATS)}"
        if multiple_formats:
            allowed += " or a list of distinct ones"
        raise ConfigError("bit_errors.real_format", real_format, allowed)
    require_int("bit_errors.seed", seed, 0)
    require_int("bit_errors.every_n_epochs", every_n_epochs, 0,
                allowed="an integer >= 0 (0: sweep at test time only)")
    require_number("bit_errors.train_ber", train_ber, 0, 0.5)
    require_choice("bit_errors.fault_model", fault_model, FAULT_MODELS)
    rate_cycles = None
    if cell is not None:
        rate_cycles = tuple(float(c) for c in cycle_list)
        rates = [model.ber(cell, c) for c in rate_cycles]
    labels = [rate_label(r) for r in rates]
    if len(set(labels)) < len(labels):
        raise ConfigError("bit_errors.ber" if cell is None else "bit_errors.cycles",
                          ber if cell is None else cycles,
                          "distinct values (error rates equal to 3 significant digits repeat)")
    return BitErrorSettings(rates=tuple(float(r) for r in rates), draws=draws,
                            real_formats=tuple(formats), seed=seed, device_model=model,
                            cycles=tuple(float(c) for c in cycle_list), cell=cell,
                            rate_cycles=rate_cycles, every_n_epochs=every_n_epochs,
                            train_ber=float(train_ber), fault_model=fault_model)


def check_fault_target(binarize: str | None, real_format: str, option: str) -> None:
    """ConfigError when a ``binarize=none`` model would have nothing to fault."""
    if binarize == "none" and real_format == "none":
        raise ConfigError(option, real_format,
                          "fp32 or int8 for a model without binary layers (binarize=none)")
