"""The ``bit_errors.*`` options, checked once for the callbacks and the evaluate command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from bnn_edge.errors import ConfigError
from bnn_edge.hardware.device import CELLS, DeviceModel, check_cell
from bnn_edge.hardware.faults.codecs import REAL_FORMATS
from bnn_edge.hardware.faults.models import BitFlip, FaultModel, parse_fault_model
from bnn_edge.hardware.faults.sweep import rate_label
from bnn_edge.validation import is_number, require_int, require_number


def _as_list(value) -> list:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


@dataclass(frozen=True)
class BitErrorSettings:
    """Checked ``bit_errors.*`` options.

    ``rates`` are the values to sweep of ``fault_model``'s parameter ``parameter``: for the
    models whose level is the error rate (``bitflip``, ``asymmetric``, ``sec``) ``ber`` as
    given, or, with ``cell`` set, the device model's rate for that cell after each of
    ``cycles`` (then ``rate_cycles`` holds the cycle count of each rate); else the values of
    the model's parameter given as a list (or its one value).
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
    fault_model: FaultModel = BitFlip()
    parameter: str = "ber"

    @property
    def real_format(self) -> str:
        """The one real-weight format (callbacks take one; the evaluate command a list)."""
        return self.real_formats[0]

    def draws_at(self, value) -> int:
        """The draws a sweep makes at ``value``: one where the model is fault-free."""
        return 1 if self.fault_model.at(value, self.parameter).fault_free else self.draws

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


def training_model(spec, train_ber, device: DeviceModel | None = None) -> FaultModel:
    """The fault model error-aware training injects: ``bit_errors.fault_model`` with its
    level (the error rate, the fraction of stuck devices, ...) at ``train_ber``.

    The rate of ``bitflip``, ``asymmetric`` and ``sec`` is at most 0.5; the other
    parameters of the model need one value each when ``train_ber`` is not 0.
    """
    model, swept, values = parse_fault_model(spec, device)
    top = 0.5 if model.level == "ber" else None
    require_number("bit_errors.train_ber", train_ber, 0, top)
    if train_ber and swept is not None and swept != model.level:
        raise ConfigError(f"bit_errors.fault_model.{swept}", values,
                          "one value for error-aware training (bit_errors.train_ber sets "
                          f"{model.level})")
    try:
        return model.at(train_ber)
    except ConfigError as e:
        raise ConfigError("bit_errors.train_ber", train_ber, e.allowed) from None


#: ``bit_errors.ber``'s default (conf/bit_errors/default.yaml)
DEFAULT_BER = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)


def _sweep(model: FaultModel, swept: str | None, values: list | None, rates: list,
           ber, cell) -> tuple[FaultModel, str, list]:
    """(model, parameter, values) of the sweep: ``bit_errors.ber`` for rate models unless
    another parameter is a list."""
    if swept is None and model.level == "ber":
        return model, "ber", rates
    if model.level != "ber" and [float(r) for r in rates] != list(DEFAULT_BER):
        raise ConfigError("bit_errors.ber", ber,
                          f"its default with fault_model={model.name}, which sweeps "
                          f"bit_errors.fault_model.{swept or model.level} (bit_errors.ber is "
                          f"the rate of bitflip, asymmetric and sec)")
    if cell is not None:
        raise ConfigError("bit_errors.cell", cell, f"null with fault_model={model.name} "
                          f"sweeping {swept or model.level} (cell sets error rates)")
    if model.level == "ber":
        if len(rates) > 1:
            raise ConfigError("bit_errors.ber", ber, f"one rate while "
                              f"bit_errors.fault_model.{swept} is swept")
        model = model.at(rates[0])
    if swept is None:
        return model, model.level, [getattr(model, model.level)]
    return model, swept, values


def bit_error_settings(ber=DEFAULT_BER, cell=None, cycles=(1e6,), device=None,
                       draws: int = 20, real_format="none", seed: int = 0,
                       every_n_epochs: int = 1, train_ber: float = 0.0,
                       fault_model="bitflip",
                       multiple_formats: bool = False) -> BitErrorSettings:
    """Check the ``bit_errors.*`` options; ConfigError names the first bad one.

    ``real_format`` may be a list only with ``multiple_formats`` (the evaluate command);
    ``fault_model`` is a model name or the ``fault_model`` group's mapping.
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
    faults, swept, values = parse_fault_model(fault_model, model)
    training_model(fault_model, train_ber, model)
    rate_cycles = None
    if cell is not None and swept is None and faults.level == "ber":
        rate_cycles = tuple(float(c) for c in cycle_list)
        rates = [model.ber(cell, c) for c in rate_cycles]
    faults, parameter, rates = _sweep(faults, swept, values, rates, ber, cell)
    for rate in rates:  # e.g. asymmetric caps the rate
        faults.at(rate, parameter)
    labels = [rate_label(r) for r in rates]
    if len(set(labels)) < len(labels):
        option, value = (("bit_errors.cycles", cycles) if rate_cycles else
                         ("bit_errors.ber", ber) if parameter == "ber" and swept is None else
                         (f"bit_errors.fault_model.{parameter}", rates))
        raise ConfigError(option, value,
                          "distinct values (values equal to 3 significant digits repeat)")
    return BitErrorSettings(rates=tuple(rates), draws=draws,
                            real_formats=tuple(formats), seed=seed, device_model=model,
                            cycles=tuple(float(c) for c in cycle_list), cell=cell,
                            rate_cycles=rate_cycles, every_n_epochs=every_n_epochs,
                            train_ber=float(train_ber), fault_model=faults,
                            parameter=parameter)


def check_fault_target(binarize: str | None, real_format: str, option: str) -> None:
    """ConfigError when a ``binarize=none`` model would have nothing to fault."""
    if binarize == "none" and real_format == "none":
        raise ConfigError(option, real_format,
                          "fp32 or int8 for a model without binary layers (binarize=none)")
