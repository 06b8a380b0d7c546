"""Fault models: which stored bits read wrong in one draw of a chip.

A fault model is a frozen dataclass of plain parameters (the ``fault_model`` config group,
``bit_errors.fault_model.*``) whose :meth:`~FaultModel.flips` maps one stored tensor
(:class:`StoredBits`: its bit values and its matrix shape) and a generator to the sorted
positions of the bits that read wrong. Codecs turn those positions into faulty weights; the
packed engine XORs them into its words, so every engine sees the same faults for the same
generator. One draw is one chip: what a draw decides (stuck devices, failed columns, drifted
devices) holds for every inference made with it.

- :class:`BitFlip` (``bitflip``): independent read errors at rate ``ber``;
- :class:`Asymmetric` (``asymmetric``): +1 -> -1 and -1 -> +1 at different rates;
- :class:`Stuck` (``stuck``): devices stuck in LRS or HRS, read by the cell's own rule;
- :class:`ArrayFaults` (``array``): failed columns (sense amplifiers) and rows (word lines)
  of the arrays of :class:`~bnn_edge.hardware.mapping.ArrayLayout`, with spare columns;
- :class:`Retention` (``retention``): the device model's rate after hours of drift;
- :class:`HammingSec` (``sec``): 1T1R bits under a single-error-correcting Hamming code.

Adding a model is a dataclass here, an entry in :data:`FAULT_MODELS` and a file in
``conf/fault_model/``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from typing import ClassVar

import numpy as np

from bnn_edge.errors import ConfigError
from bnn_edge.hardware.device import HFO2, DeviceModel, check_cell
from bnn_edge.hardware.mapping import ArrayLayout
from bnn_edge.validation import require_int, require_number

#: Boltzmann's constant in eV/K (retention's Arrhenius factor)
BOLTZMANN_EV = 8.617333262e-5


def flip_positions(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices in [0, n) of the bits an independent Bernoulli(``p``) draw per bit flips.

    The gaps between successive flips of a Bernoulli process are geometric, so the
    positions are cumulative sums of geometric draws: exact, and the cost follows the
    number of flips, not ``n``.
    """
    if p <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if p >= 1:
        return np.arange(n, dtype=np.int64)
    parts, last = [], -1
    while True:
        expected = (n - 1 - last) * p
        size = int(expected + 6 * math.sqrt(expected) + 16)
        positions = last + np.cumsum(rng.geometric(p, size=size))
        inside = positions[positions < n]
        parts.append(inside)
        if len(inside) < size:
            return np.concatenate(parts)
        last = int(positions[-1])


def fault_rng(seed: int, ber: float, draw: int) -> np.random.Generator:
    """The generator of draw ``draw`` at swept value ``ber`` (an error rate, a fraction of
    stuck devices, ...): reproducible whatever else is swept."""
    rate_bits = int(np.array(ber, dtype=np.float64).view(np.uint64))
    return np.random.default_rng([seed, draw, rate_bits])


class StoredBits:
    """One stored tensor as a fault model sees it: ``outputs`` x ``fan_in`` weights of
    ``bits`` bits each (position ``p`` is bit ``p % bits`` of flat weight ``p // bits``) and
    the value of each bit (True: a binary weight's +1, a word's bit 1), read when needed."""

    def __init__(self, outputs: int, fan_in: int, bits: int,
                 words: Callable[[], np.ndarray]):
        self.outputs, self.fan_in, self.bits = outputs, fan_in, bits
        self._words = words

    @property
    def n(self) -> int:
        return self.outputs * self.fan_in * self.bits

    @cached_property
    def words(self) -> np.ndarray:
        """One unsigned integer per weight (binary: 0 or 1)."""
        return self._words()

    def values(self, positions: np.ndarray) -> np.ndarray:
        """The stored bit at each position, as booleans."""
        word, bit = np.divmod(np.asarray(positions, np.int64), self.bits)
        return ((self.words[word].astype(np.int64) >> bit) & 1).astype(bool)

    def layout(self, size: int) -> ArrayLayout:
        return ArrayLayout(self.outputs, self.fan_in, self.bits, size)


def _reads_wrong(stored: StoredBits, positions: np.ndarray, read: np.ndarray) -> np.ndarray:
    """The sorted positions whose ``read`` value differs from the stored one."""
    return np.sort(positions[read != stored.values(positions)])


@dataclass(frozen=True)
class FaultModel(ABC):
    """A fault model's plain parameters; subclasses draw the faults."""

    name: ClassVar[str]
    #: the parameter a sweep varies unless another one is given as a list
    level: ClassVar[str]
    #: fields that are not options of ``bit_errors.fault_model`` (set from elsewhere)
    internal: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        self.check()

    @abstractmethod
    def check(self) -> None:
        """ConfigError naming the first parameter out of range."""

    @classmethod
    def options(cls) -> list[str]:
        """The parameters ``bit_errors.fault_model.<name>`` may set."""
        return [f.name for f in fields(cls) if f.name not in cls.internal]

    @classmethod
    def sweepable(cls) -> list[str]:
        """The options a sweep may vary: the numeric ones (not a cell's name)."""
        return [f.name for f in fields(cls) if f.name not in cls.internal
                and isinstance(f.default, int | float) and not isinstance(f.default, bool)]

    @property
    def fault_free(self) -> bool:
        """True when no bit can read wrong (a sweep then evaluates it once)."""
        return getattr(self, self.level) == 0

    def at(self, value, parameter: str | None = None) -> FaultModel:
        """This model with ``parameter`` (default: :attr:`level`) set to ``value``, checked."""
        return dataclasses.replace(self, **{parameter or self.level: value})

    @abstractmethod
    def flips(self, stored: StoredBits, rng: np.random.Generator) -> np.ndarray:
        """The sorted positions of ``stored`` that read wrong in the draw of ``rng``."""

    def describe(self, swept: str | None = None) -> str:
        """``name(param=value, ...)`` for tables and plot titles, without ``swept``."""
        shown = ", ".join(f"{k}={getattr(self, k)}" for k in self.options() if k != swept)
        return f"{self.name}({shown})" if shown else self.name


def _option(name: str) -> str:
    return f"bit_errors.fault_model.{name}"


@dataclass(frozen=True)
class BitFlip(FaultModel):
    """Every stored bit reads wrong independently with probability ``ber`` (the read errors
    of the device model: a 1T1R or 2T2R cell on the wrong side of its reference)."""

    name: ClassVar[str] = "bitflip"
    level: ClassVar[str] = "ber"
    internal: ClassVar[tuple[str, ...]] = ("ber",)
    ber: float = 0.0

    def check(self) -> None:
        require_number("bit_errors.ber", self.ber, 0, 1)

    def flips(self, stored, rng):
        return flip_positions(stored.n, self.ber, rng)


@dataclass(frozen=True)
class Asymmetric(FaultModel):
    """Read errors whose rate depends on the stored value: -1 reads as +1 ``ratio`` times as
    often as +1 reads as -1, the mean over both values being ``ber``."""

    name: ClassVar[str] = "asymmetric"
    level: ClassVar[str] = "ber"
    internal: ClassVar[tuple[str, ...]] = ("ber",)
    ber: float = 0.0
    ratio: float = 3.0

    def check(self) -> None:
        require_number(_option("ratio"), self.ratio, 0, low_open=True)
        top = (1 + self.ratio) / (2 * max(1.0, self.ratio))
        require_number("bit_errors.ber", self.ber, 0, top,
                       allowed=f"a number in [0, {top:.4g}] (the larger of the two rates, "
                               f"2 ber max(1, ratio) / (1 + ratio), is a probability)")

    @property
    def rates(self) -> tuple[float, float]:
        """(P(+1 reads -1), P(-1 reads +1))."""
        return 2 * self.ber / (1 + self.ratio), 2 * self.ber * self.ratio / (1 + self.ratio)

    def flips(self, stored, rng):
        plus, minus = self.rates
        top = max(plus, minus)
        candidates = flip_positions(stored.n, top, rng)
        if not len(candidates):
            return candidates
        keep = np.where(stored.values(candidates), plus, minus)
        return candidates[rng.random(len(candidates)) * top < keep]


def _check_cell(value) -> str:
    try:
        return check_cell(value)
    except ConfigError:
        raise ConfigError(_option("cell"), value, "1T1R or 2T2R") from None


def _check_share(name: str, value) -> None:
    require_number(_option(name), value, 0, 1)


@dataclass(frozen=True)
class Stuck(FaultModel):
    """Each RRAM device is stuck with probability ``fraction``: in LRS (share ``lrs_share``)
    or HRS, whatever was programmed, and the cell reads by its own rule.

    1T1R (one device per bit, +1 = LRS): a stuck device reads its stuck state. 2T2R (+1 =
    LRS/HRS, -1 = HRS/LRS, compared by the PCSA): the bit reads right when the stuck device
    is in the state the stored value gives it; otherwise both devices sit in the same state
    and the amplifier's offset decides: +1 with probability ``tie_plus``, drawn once per cell
    and draw (the offset of an amplifier does not change between reads). Both devices stuck
    in opposite states read as their states say; in the same state, as a tie.
    """

    name: ClassVar[str] = "stuck"
    level: ClassVar[str] = "fraction"
    fraction: float = 0.0
    cell: str = "2T2R"
    lrs_share: float = 0.5
    tie_plus: float = 0.5

    def check(self) -> None:
        _check_share("fraction", self.fraction)
        object.__setattr__(self, "cell", _check_cell(self.cell))
        _check_share("lrs_share", self.lrs_share)
        _check_share("tie_plus", self.tie_plus)

    def flips(self, stored, rng):
        per_bit = 1 if self.cell == "1T1R" else 2
        devices = flip_positions(stored.n * per_bit, self.fraction, rng)
        lrs = rng.random(len(devices)) < self.lrs_share
        if per_bit == 1:
            return _reads_wrong(stored, devices, lrs)
        bits = np.unique(devices // 2)
        which = np.searchsorted(bits, devices // 2)
        ties = rng.random(len(bits)) < self.tie_plus
        value = stored.values(bits)
        # device 0 is in LRS for +1, device 1 for -1; stuck devices override
        state0, state1 = value.copy(), ~value
        zero = devices % 2 == 0
        state0[which[zero]] = lrs[zero]
        state1[which[~zero]] = lrs[~zero]
        read = np.where(state0 != state1, state0, ties)
        return bits[read != value]


@dataclass(frozen=True)
class ArrayFaults(FaultModel):
    """Failed sense amplifiers (columns) and word-line drivers (rows) of the arrays.

    Each of the ``size`` columns of every array fails with probability ``columns / size``
    (``columns``: failed columns per array on average), as do the ``spares`` spare columns
    of the array; the working spares replace the failed columns in column order. A failed
    column that is not replaced has its amplifier's output stuck, at +1 or -1 (a fair coin
    per column), so the weights it holds of the other value read wrong. Each row fails with
    probability ``rows / size``; the cells of a failed row are never connected, so each
    reads what its amplifier's offset gives, a fair coin per cell and draw. Where the
    weights sit: :class:`~bnn_edge.hardware.mapping.ArrayLayout`.
    """

    name: ClassVar[str] = "array"
    level: ClassVar[str] = "columns"
    columns: float = 0.0
    rows: float = 0.0
    spares: int = 0
    size: int = 32

    def check(self) -> None:
        require_int(_option("size"), self.size, 1)
        require_number(_option("columns"), self.columns, 0, self.size)
        require_number(_option("rows"), self.rows, 0, self.size)
        require_int(_option("spares"), self.spares, 0)

    @property
    def fault_free(self) -> bool:
        return self.columns == 0 and self.rows == 0

    def flips(self, stored, rng):
        layout = stored.layout(self.size)
        n_arrays, width = layout.arrays, self.size + self.spares
        failed_rows = flip_positions(n_arrays * self.size, self.rows / self.size, rng)
        row_pos, _ = layout.row_cells(*np.divmod(failed_rows, self.size))
        row_read = rng.random(len(row_pos)) < 0.5
        failed = flip_positions(n_arrays * width, self.columns / self.size, rng)
        array, column = np.divmod(failed, width)
        main = column < self.size
        working = self.spares - np.bincount(array[~main], minlength=n_arrays)
        array, column = array[main], column[main]
        rank = np.arange(len(array)) - np.searchsorted(array, array)  # within its array
        dead = rank >= working[array]
        outputs = rng.random(int(dead.sum())) < 0.5
        col_pos, pair = layout.column_cells(array[dead], column[dead])
        positions = np.concatenate([row_pos, col_pos])
        if not len(positions):
            return positions
        read = np.concatenate([row_read, outputs[pair]])
        # a dead column's amplifier decides its cells in failed rows too: keep the last read
        last = len(positions) - 1 - np.unique(positions[::-1], return_index=True)[1]
        return _reads_wrong(stored, positions[last], read[last])


@dataclass(frozen=True)
class Retention(FaultModel):
    """Independent read errors at the device model's rate for ``cell`` after ``cycles``
    programming cycles and ``hours`` of retention at ``temperature_c``.

    Drift widens each state's log10-resistance spread: the spread after wear
    (:meth:`~bnn_edge.hardware.device.DeviceModel.spread`) is multiplied by
    ``1 + drift * log10(1 + hours * a)``, ``a = exp(activation_ev / k * (1 / T_ref - 1 / T))``
    the Arrhenius acceleration of ``temperature_c`` over ``reference_c``, at which ``drift``
    is given. A drifted device stays drifted: the faults hold for the whole draw.
    """

    name: ClassVar[str] = "retention"
    level: ClassVar[str] = "hours"
    internal: ClassVar[tuple[str, ...]] = ("device",)
    hours: float = 0.0
    cell: str = "2T2R"
    cycles: float = 1e6
    temperature_c: float = 85.0
    reference_c: float = 85.0
    drift: float = 0.05
    activation_ev: float = 1.1
    device: DeviceModel = HFO2

    def check(self) -> None:
        require_number(_option("hours"), self.hours, 0)
        object.__setattr__(self, "cell", _check_cell(self.cell))
        require_number(_option("cycles"), self.cycles, 1)
        for name in ("temperature_c", "reference_c"):
            require_number(_option(name), getattr(self, name), -273.15, 1000, low_open=True)
        require_number(_option("drift"), self.drift, 0)
        require_number(_option("activation_ev"), self.activation_ev, 0)

    @property
    def acceleration(self) -> float:
        """How much faster drift runs at ``temperature_c`` than at ``reference_c``."""
        t, ref = self.temperature_c + 273.15, self.reference_c + 273.15
        exponent = self.activation_ev / BOLTZMANN_EV * (1 / ref - 1 / t)
        return math.inf if exponent > 700 else math.exp(exponent)

    @property
    def spread_factor(self) -> float:
        """The factor drift multiplies the spread by (1 at ``hours=0``)."""
        if self.hours == 0 or self.drift == 0:
            return 1.0
        return 1 + self.drift * math.log10(1 + self.hours * self.acceleration)

    @property
    def rate(self) -> float:
        return self.device.ber(self.cell, self.cycles, self.spread_factor)

    @property
    def fault_free(self) -> bool:
        return self.rate == 0

    def flips(self, stored, rng):
        return flip_positions(stored.n, self.rate, rng)


def hamming_length(data_bits: int) -> int:
    """Stored bits of a (shortened) Hamming code with ``data_bits`` data bits: the fewest
    ``m`` parity bits with ``2**m >= data_bits + m + 1``, plus the data."""
    m = 2
    while 2 ** m < data_bits + m + 1:
        m += 1
    return data_bits + m


def _data_slots(n: int) -> np.ndarray:
    """For code positions 0..n (1-based; 0 unused) the data index, -1 at parity positions
    (powers of two)."""
    slots = np.full(n + 1, -1, np.int64)
    data = [p for p in range(1, n + 1) if p & (p - 1)]
    slots[data] = np.arange(len(data))
    return slots


def sec_decode(errors: np.ndarray, n: int) -> np.ndarray:
    """Code positions (codeword * n + position - 1, sorted) wrong after syndrome decoding of
    a Hamming code of length ``n`` whose stored bits at ``errors`` (same numbering) read wrong.

    The syndrome of a codeword is the XOR of its wrong positions (1-based); the decoder
    flips the position it names when that position exists (a shortened code has no
    position beyond ``n``: the error is detected, nothing is flipped).
    """
    errors = np.asarray(errors, np.int64)
    if not len(errors):
        return errors
    words, position = np.divmod(errors, n)
    starts = np.flatnonzero(np.r_[True, words[1:] != words[:-1]])
    syndrome = np.bitwise_xor.reduceat(position + 1, starts)
    fix = (syndrome >= 1) & (syndrome <= n)
    toggles = words[starts][fix] * n + syndrome[fix] - 1
    keys, counts = np.unique(np.concatenate([errors, toggles]), return_counts=True)
    return keys[counts % 2 == 1]


@dataclass(frozen=True)
class HammingSec(FaultModel):
    """1T1R devices failing independently at ``ber``, each ``data_bits`` consecutive stored
    bits protected by a single-error-correcting Hamming code of ``hamming_length(data_bits)``
    devices (shortened where ``data_bits`` is not 2**m - m - 1; the last word of a tensor is
    padded). ``data_bits=3``, the (6, 3) code, takes 2 devices per bit, as 2T2R does."""

    name: ClassVar[str] = "sec"
    level: ClassVar[str] = "ber"
    internal: ClassVar[tuple[str, ...]] = ("ber",)
    ber: float = 0.0
    data_bits: int = 3

    def check(self) -> None:
        require_number("bit_errors.ber", self.ber, 0, 1)
        require_int(_option("data_bits"), self.data_bits, 1, 247)

    @property
    def length(self) -> int:
        return hamming_length(self.data_bits)

    def flips(self, stored, rng):
        n, k = self.length, self.data_bits
        words = math.ceil(stored.n / k)
        wrong = sec_decode(flip_positions(words * n, self.ber, rng), n)
        word, position = np.divmod(wrong, n)
        slot = _data_slots(n)[position + 1]
        data = word[slot >= 0] * k + slot[slot >= 0]
        return data[data < stored.n]


def sec_ber(ber: float, data_bits: int) -> float:
    """Exact data-bit error rate after decoding :class:`HammingSec` (codes up to 16 bits):
    the expected wrong data bits over every error pattern of one codeword, over ``data_bits``."""
    n = hamming_length(data_bits)
    if n > 16:
        raise ValueError(f"data_bits={data_bits}: exact rates for codes of up to 16 bits")
    slot = _data_slots(n)
    total = 0.0
    for weight in range(2, n + 1):
        wrong = 0
        for pattern in itertools.combinations(range(n), weight):
            after = sec_decode(np.array(pattern), n)
            wrong += int((slot[after + 1] >= 0).sum())
        total += wrong * ber ** weight * (1 - ber) ** (n - weight)
    return total / data_bits


def _is_list(value) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


FAULT_MODELS: dict[str, type[FaultModel]] = {
    m.name: m for m in (BitFlip, Asymmetric, Stuck, ArrayFaults, Retention, HammingSec)}


def parse_fault_model(spec="bitflip", device: DeviceModel | None = None
                ) -> tuple[FaultModel, str | None, list | None]:
    """(model, swept parameter, its values) from ``bit_errors.fault_model``.

    ``spec`` is a model name or a mapping ``{name: ..., <parameter>: value, ...}`` (the
    ``fault_model`` config group); a parameter given as a list is swept (one at most), and
    the model returned holds its first value. ``device`` is the device model retention
    uses. ConfigError names the first bad option.
    """
    by_name = isinstance(spec, str)
    spec = {"name": spec} if by_name or spec is None else dict(spec)
    name = spec.pop("name", "bitflip")
    if name not in FAULT_MODELS:
        raise ConfigError("fault_model", name, f"one of {', '.join(FAULT_MODELS)}")
    if by_name and name != "bitflip":
        # the name alone would build the model from its dataclass defaults (no faults),
        # not from the group's file: only bitflip, which has no parameters, is that
        raise ConfigError("bit_errors.fault_model", name,
                          f"the fault_model config group: fault_model={name}")
    cls = FAULT_MODELS[name]
    allowed = cls.options()
    spec = {k: (list(v) if _is_list(v) else v) for k, v in spec.items()}
    swept = [k for k, v in spec.items() if isinstance(v, list)]
    numeric = cls.sweepable()
    for key, value in spec.items():
        if key not in allowed:
            shown = ", ".join(allowed) if allowed else "none (the rate is bit_errors.ber)"
            raise ConfigError(_option(key), value, f"a parameter of fault_model={name}: {shown}")
        if isinstance(value, list) and not value:
            raise ConfigError(_option(key), value, "a value or a non-empty list of values")
        if isinstance(value, list) and key not in numeric:
            raise ConfigError(_option(key), value,
                              f"one value (a sweep varies a number: "
                              f"{', '.join(numeric) or 'bit_errors.ber'}; run one evaluate "
                              f"per {key})")
    if len(swept) > 1:
        raise ConfigError(_option(swept[1]), spec[swept[1]],
                          f"one value: bit_errors.fault_model.{swept[0]} is swept already "
                          f"(one parameter at a time)")
    extra = {"device": device} if "device" in cls.internal and device is not None else {}
    values = list(spec[swept[0]]) if swept else None
    model = cls(**{k: (v[0] if k in swept else v) for k, v in spec.items()}, **extra)
    for value in values or []:
        model.at(value, swept[0])
    return model, (swept[0] if swept else None), values
