"""A statistical RRAM device model: bit error rates of 1T1R and 2T2R cells.

Each device is programmed to a low (LRS) or high (HRS) resistance state. Its
log10-resistance after programming is normal: mean ``lrs_log10`` (LRS) or
``lrs_log10 + window`` (HRS), with the same spread ``sigma`` for both (handbook section 2).

- **1T1R**: one device per bit (+1 = LRS, -1 = HRS) read against a reference at the
  midpoint of the two means. A bit fails when its device lands on the wrong side of the
  reference: ``BER = Phi(-window / (2 sigma))``.
- **2T2R**: two devices per bit programmed in opposite states (+1 = LRS/HRS,
  -1 = HRS/LRS), read differentially by a precharge sense amplifier that answers which
  device has the lower resistance. The difference of two independent normals has spread
  ``sqrt(2) sigma``, so ``BER = Phi(-window / (sqrt(2) sigma))``.

Endurance: programming wears the devices; the spread grows with the number of
programming cycles ``c`` the cell has been through,
``sigma(c) = sigma * (1 + sigma_growth * log10(c))`` for ``c >= 1``.

The default parameters (:data:`HFO2`) are a preset for the paper's HfO2 test chip, chosen
to reproduce the measured gap of about two orders of magnitude between 1T1R and 2T2R:

============  ===========  ===========
cycles        1T1R BER     2T2R BER
============  ===========  ===========
1             1.0e-4       7.2e-8
1e3           3.7e-4       9.1e-7
1e6           1.0e-3       6.2e-6
7e8           2.1e-3       2.6e-5
============  ===========  ===========

The model is deliberately simple; ``window`` and ``sigma`` only enter through their
ratio, and ``lrs_log10`` only sets the resistances the Monte-Carlo sampler reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from bnn_edge.errors import ConfigError
from bnn_edge.validation import require_number

CELLS = ("1T1R", "2T2R")


def check_cell(cell: str) -> str:
    """The canonical cell name ("1T1R" or "2T2R") for ``cell`` in any case; ConfigError
    (a ValueError) else."""
    name = str(cell).upper()
    if name not in CELLS:
        raise ConfigError("cell", cell, f"one of {', '.join(CELLS)}")
    return name


@dataclass(frozen=True)
class ReadSample:
    """A Monte-Carlo read-out: the bits stored, the bits read, the device resistances (ohm).

    ``resistance_ohm`` has shape (n,) for 1T1R and (n, 2) for 2T2R (the two devices of
    each pair).
    """

    stored: np.ndarray
    read: np.ndarray
    resistance_ohm: np.ndarray

    @property
    def errors(self) -> int:
        return int(np.count_nonzero(self.stored != self.read))

    @property
    def error_rate(self) -> float:
        return self.errors / len(self.stored)


@dataclass(frozen=True)
class DeviceModel:
    """Log-normal LRS/HRS statistics and their degradation with programming cycles.

    ``window``: distance between the LRS and HRS mean log10-resistances (decades);
    ``sigma``: spread (standard deviation, decades) of each state's log10-resistance on a
    fresh device (1 cycle); ``sigma_growth``: relative growth of the spread per decade of
    cycles; ``lrs_log10``: LRS mean log10-resistance (3.7 is about 5 kOhm).
    """

    window: float = 1.3
    sigma: float = 0.1748
    sigma_growth: float = 0.0339
    lrs_log10: float = 3.7

    def __post_init__(self):
        require_number("window", self.window, 0, low_open=True)
        require_number("sigma", self.sigma, 0, low_open=True)
        require_number("sigma_growth", self.sigma_growth, 0)
        require_number("lrs_log10", self.lrs_log10)

    @classmethod
    def from_1t1r_ber(cls, ber: float, **kwargs) -> DeviceModel:
        """A model whose fresh 1T1R cell fails with probability ``ber`` (no wear unless given).

        ``DeviceModel.from_1t1r_ber(1e-3).ber("2T2R")`` is about 6.2e-6: the handbook's
        mapping from a 1T1R error rate to the 2T2R one.
        """
        require_number("ber", ber, 0, 0.5, low_open=True, high_open=True)
        window = kwargs.pop("window", cls.window)
        kwargs.setdefault("sigma_growth", 0.0)
        return cls(window=window, sigma=window / (2 * norm.isf(ber)), **kwargs)

    def spread(self, cycles: float = 1) -> float:
        """The log10-resistance spread after ``cycles`` programming cycles (>= 1)."""
        require_number("cycles", cycles, 1)
        return self.sigma * (1 + self.sigma_growth * math.log10(cycles))

    def ber(self, cell: str, cycles: float = 1, spread_factor: float = 1.0) -> float:
        """Closed-form bit error rate of a ``cell`` ("1T1R" or "2T2R") after ``cycles``, the
        spread multiplied by ``spread_factor`` (retention drift, see the ``retention``
        fault model)."""
        spread = self.spread(cycles) * spread_factor
        if check_cell(cell) == "1T1R":
            return float(norm.cdf(-self.window / (2 * spread)))
        return float(norm.cdf(-self.window / (math.sqrt(2) * spread)))

    def sample(self, cell: str, n_bits: int, cycles: float = 1,
               rng: np.random.Generator | None = None) -> ReadSample:
        """Program ``n_bits`` random bits into ``cell``s, draw the devices, read them back.

        Every device's log10-resistance is drawn from its state's normal law; 1T1R bits
        are compared with the midpoint reference, 2T2R pairs with each other. The error
        rate of the sample estimates :meth:`ber` (each bit fails independently).
        """
        cell = check_cell(cell)
        rng = np.random.default_rng() if rng is None else rng
        spread = self.spread(cycles)
        stored = rng.integers(0, 2, size=n_bits, dtype=np.int8) * 2 - 1
        lrs, hrs = self.lrs_log10, self.lrs_log10 + self.window
        if cell == "1T1R":
            log_r = np.where(stored > 0, lrs, hrs) + spread * rng.standard_normal(n_bits)
            read = np.where(log_r < lrs + self.window / 2, 1, -1).astype(np.int8)
        else:
            first = np.where(stored > 0, lrs, hrs)
            second = np.where(stored > 0, hrs, lrs)
            log_r = np.stack([first, second], axis=1) + spread * rng.standard_normal((n_bits, 2))
            read = np.where(log_r[:, 0] < log_r[:, 1], 1, -1).astype(np.int8)
        return ReadSample(stored=stored, read=read, resistance_ohm=10.0 ** log_r)


HFO2 = DeviceModel()
"""The default preset: 1T1R fails at 1e-3 and 2T2R at 6.2e-6 after 1e6 cycles."""
