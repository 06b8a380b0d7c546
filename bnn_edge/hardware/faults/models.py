"""Fault models: which stored bits read wrong in one draw, given an error rate.

A fault model maps (number of stored bits, rate, generator) to the sorted positions of the
bits that read wrong; codecs turn those positions into faulty weights. The registry is what
``bit_errors.fault_model`` chooses from; adding a model is a class here and an entry in
:data:`FAULT_MODELS`.
"""

from __future__ import annotations

import math

import numpy as np


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
    """The generator of draw ``draw`` at rate ``ber``: reproducible whatever else is swept."""
    rate_bits = int(np.array(ber, dtype=np.float64).view(np.uint64))
    return np.random.default_rng([seed, draw, rate_bits])


class BitFlip:
    """Every stored bit reads wrong independently with probability ``rate`` (the RRAM read
    errors of the device model: a 1T1R or 2T2R cell on the wrong side of its reference)."""

    name = "bitflip"

    def positions(self, n_bits: int, rate: float, rng: np.random.Generator) -> np.ndarray:
        return flip_positions(n_bits, rate, rng)


FAULT_MODELS = {"bitflip": BitFlip()}
