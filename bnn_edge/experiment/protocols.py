"""The paper's training protocols as counts of runs and epochs, and what they cost.

A protocol is every (variant, aug) cell it trains, each trained ``runs`` times (folds x
repeats) for ``epochs`` epochs. :func:`project` turns measured seconds per epoch (and per-run
set-up seconds) into device-hours. An aug that was not measured gets its epoch time by
linear interpolation between the nearest measured augs, or linear extrapolation from the
two nearest beyond them; each row says which. Time per epoch grows faster than linearly in
aug where compute dominates (the convolutions scale with aug squared), so interpolated
figures are then upper bounds and extrapolated ones can be too low.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass

from bnn_edge.models import BINARIZE_CHOICES

IMAGENET_TRAIN_IMAGES = 1_281_167
IMAGENET_VAL_IMAGES = 50_000
#: EEGMMIDB as the paper uses it: 105 subjects, 3 imagery runs of 14 usable cues each
EEG_PAPER_TRIALS = 105 * 42
#: the ECG set of the paper (Challenge Data): 1000 trials
ECG_PAPER_TRIALS = 1000


@dataclass(frozen=True)
class Protocol:
    """Cells (variant x aug), each trained ``runs`` times for ``epochs`` epochs."""

    key: str
    title: str
    network: str
    augs: tuple[int, ...]
    runs: int
    epochs: int
    variants: tuple[str, ...] = BINARIZE_CHOICES

    @property
    def cells(self) -> list[tuple[str, int]]:
        return [(v, a) for v in self.variants for a in self.augs]

    def describe(self) -> str:
        return (f"{len(self.variants)} variants x aug {', '.join(map(str, self.augs))} x "
                f"{self.runs} runs x {self.epochs} epochs")


PROTOCOLS = {
    "fig7_ecg": Protocol("fig7_ecg", "Fig. 7 ECG", "ecg", (1, 2, 4, 8, 16), runs=25,
                         epochs=1000),
    "table3_eeg": Protocol("table3_eeg", "Table III EEG", "eeg", (1, 11), runs=25, epochs=1000),
    "mobilenet": Protocol("mobilenet", "MobileNet ImageNet", "mobilenet", (1,), runs=1,
                          epochs=255),
}


def epoch_seconds(measured: Mapping[int, float], aug: int) -> tuple[float, str]:
    """Seconds per epoch at ``aug`` from ``measured`` {aug: seconds}, and how it was had.

    ``measured``, ``interpolated`` (linear between the measured augs around it) or
    ``extrapolated`` (linear through the two nearest measured augs, never below 0).
    ValueError without a measured aug, or with a single one that is not ``aug``.
    """
    if aug in measured:
        return float(measured[aug]), "measured"
    points = sorted(measured.items())
    if len(points) < 2:
        raise ValueError(f"aug {aug}: cannot estimate from {len(points)} measured aug(s)")
    augs = [a for a, _ in points]
    i = bisect_left(augs, aug)
    how = "interpolated" if 0 < i < len(augs) else "extrapolated"
    i = min(max(i, 1), len(augs) - 1)
    (a0, t0), (a1, t1) = points[i - 1], points[i]
    return max(0.0, t0 + (t1 - t0) * (aug - a0) / (a1 - a0)), how


@dataclass(frozen=True)
class CellCost:
    """One (variant, aug) cell of a protocol: its epoch time and device-hours."""

    variant: str
    aug: int
    epoch_s: float | None
    how: str
    overhead_s: float
    hours: float | None


@dataclass(frozen=True)
class Projection:
    """A protocol's cells and total; ``hours`` is None when a cell could not be estimated."""

    protocol: Protocol
    precision: str
    cells: list[CellCost]

    @property
    def hours(self) -> float | None:
        known = [c.hours for c in self.cells]
        return None if any(h is None for h in known) else sum(known)

    @property
    def estimated(self) -> list[tuple[str, int, str]]:
        """The cells whose epoch time was not measured: (variant, aug, how)."""
        return [(c.variant, c.aug, c.how) for c in self.cells if c.how != "measured"]


def project(protocol: Protocol, epoch_s: Mapping[tuple[str, int], float],
            overhead_s: Mapping[tuple[str, int], float] | None = None,
            precision: str = "") -> Projection:
    """Device-hours of ``protocol`` from seconds per epoch measured per (variant, aug).

    Each cell costs ``runs * (epochs * epoch_s + overhead_s) / 3600`` hours, one run after
    another on one device; ``overhead_s`` (set-up, first-epoch warm-up beyond a steady
    epoch) is that measured for the variant at the nearest measured aug (the smaller one on
    a tie; 0 when none is given).
    A variant with no measured aug, or with one while others are asked for, gives cells of
    ``how="not measured"`` and no hours.
    """
    overhead_s = overhead_s or {}
    cells = []
    for variant in protocol.variants:
        measured = {a: t for (v, a), t in epoch_s.items() if v == variant and t is not None
                    and math.isfinite(t)}
        for aug in protocol.augs:
            try:
                seconds, how = epoch_seconds(measured, aug)
            except ValueError:
                cells.append(CellCost(variant, aug, None, "not measured", 0.0, None))
                continue
            nearest = min(measured, key=lambda a, aug=aug: (abs(a - aug), a))
            extra = float(overhead_s.get((variant, nearest), 0.0))
            hours = protocol.runs * (protocol.epochs * seconds + extra) / 3600
            cells.append(CellCost(variant, aug, seconds, how, extra, hours))
    return Projection(protocol, precision, cells)


def imagenet_epoch_seconds(train_images_per_s: float, val_images_per_s: float | None) -> float:
    """Seconds of one ImageNet epoch: the 1.28 M training images, then the 50 k validation."""
    seconds = IMAGENET_TRAIN_IMAGES / train_images_per_s
    if val_images_per_s:
        seconds += IMAGENET_VAL_IMAGES / val_images_per_s
    return seconds

