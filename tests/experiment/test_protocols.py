"""The paper's protocols sized from made-up epoch times: interpolation, totals, gaps."""

from __future__ import annotations

import pytest

from bnn_edge.experiment.protocols import (
    IMAGENET_TRAIN_IMAGES,
    PROTOCOLS,
    epoch_seconds,
    imagenet_epoch_seconds,
    project,
)


def test_epoch_times_between_and_beyond_the_measured_augs():
    measured = {1: 0.36, 7: 0.72, 16: 1.44}
    assert epoch_seconds(measured, 7) == (0.72, "measured")
    assert epoch_seconds(measured, 2) == (pytest.approx(0.42), "interpolated")
    assert epoch_seconds(measured, 4) == (pytest.approx(0.54), "interpolated")
    assert epoch_seconds(measured, 8) == (pytest.approx(0.80), "interpolated")
    assert epoch_seconds(measured, 32) == (pytest.approx(2.72), "extrapolated")
    assert epoch_seconds({2: 1.0, 4: 3.0}, 1) == (0.0, "extrapolated")  # never below 0
    with pytest.raises(ValueError, match="1 measured"):
        epoch_seconds({1: 0.5}, 11)


def test_fig7_hours_from_three_measured_augs():
    fig7 = PROTOCOLS["fig7_ecg"]
    assert (fig7.augs, fig7.runs, fig7.epochs) == ((1, 2, 4, 8, 16), 25, 1000)
    times = {(v, a): t for v in fig7.variants for a, t in ((1, 0.36), (7, 0.72), (16, 1.44))}
    p = project(fig7, times, precision="bf16-mixed")
    # per variant: 25 runs x 1000 epochs x (0.36 + 0.42 + 0.54 + 0.80 + 1.44) s
    assert p.hours == pytest.approx(3 * 25 * 1000 * 3.56 / 3600)
    assert len(p.cells) == 15
    assert sorted({(a, how) for _, a, how in p.estimated}) == [
        (2, "interpolated"), (4, "interpolated"), (8, "interpolated")]
    overhead = {("full", 1): 36.0, ("full", 7): 72.0, ("full", 16): 0.0}
    q = project(fig7, times, overhead)
    # each run pays the set-up of the nearest measured aug (aug 4: 1 and 7 tie, 1 is taken)
    assert [c.overhead_s for c in q.cells if c.variant == "full"] == [36, 36, 36, 72, 0]
    assert q.hours == pytest.approx(p.hours + 25 * (3 * 36 + 72) / 3600)


def test_a_variant_without_enough_measurements_leaves_the_total_open():
    eeg = PROTOCOLS["table3_eeg"]
    assert eeg.augs == (1, 11) and eeg.runs == 25
    times = {("none", 1): 2.0, ("none", 11): 20.0, ("classifier", 1): 2.0, ("full", 1): 3.0}
    p = project(eeg, times)
    assert p.hours is None
    gaps = [(c.variant, c.aug) for c in p.cells if c.hours is None]
    assert gaps == [("classifier", 11), ("full", 11)]
    known = [c.hours for c in p.cells if c.hours is not None]
    assert known == pytest.approx([25 * 1000 * t / 3600 for t in (2.0, 20.0, 2.0, 3.0)])


def test_imagenet_epochs():
    assert imagenet_epoch_seconds(1000.0, 5000.0) == pytest.approx(1281.167 + 10.0)
    assert imagenet_epoch_seconds(2000.0, None) == pytest.approx(IMAGENET_TRAIN_IMAGES / 2000)
    mobilenet = PROTOCOLS["mobilenet"]
    times = {(v, 1): imagenet_epoch_seconds(3600.0, None) for v in mobilenet.variants}
    hours = project(mobilenet, times).hours
    assert hours == pytest.approx(3 * 255 * IMAGENET_TRAIN_IMAGES / 3600 / 3600)
