"""The claims report: verdicts are computed, and runs that contradict a claim fail it."""

from __future__ import annotations

import csv

import pytest

from bnn_edge.cli.report import main as report_main
from bnn_edge.experiment.claims import (
    FAILS,
    HOLDS,
    MISSING,
    UNSURE,
    below,
    claims,
    classifier_matches,
    rises_with_aug,
    robust_at_2t2r,
    two_decades,
)
from bnn_edge.experiment.tables import find_runs, group_runs
from bnn_edge.hardware.device import HFO2, DeviceModel
from tests.helpers.runs import fake_run


def sweep(root, accs: dict[tuple[str, int], list[float]], model="ecg"):
    for (binarize, aug), values in accs.items():
        for fold, acc in enumerate(values):
            fake_run(root, f"{binarize}_{aug}_{fold}", model=model, binarize=binarize, aug=aug,
                     fold=fold, val=acc, test=acc)
    return group_runs(find_runs(root))


def test_runs_like_the_papers_hold_every_accuracy_claim(tmp_path):
    groups = sweep(tmp_path, {("none", 1): [0.96, 0.95, 0.97], ("full", 1): [0.90, 0.91, 0.89],
                              ("classifier", 1): [0.955, 0.965, 0.96],
                              ("full", 2): [0.92, 0.93, 0.925], ("full", 4): [0.94, 0.935, 0.945]})
    assert below(groups, "ecg").verdict == HOLDS
    assert rises_with_aug(groups).verdict == HOLDS
    assert classifier_matches(groups, "ecg").verdict == HOLDS


def test_runs_that_contradict_the_claims_fail_them(tmp_path):
    """A BNN above the real network, falling with aug, a classifier far below: all fail."""
    groups = sweep(tmp_path, {("none", 1): [0.80, 0.81, 0.79], ("full", 1): [0.95, 0.96, 0.94],
                              ("classifier", 1): [0.60, 0.61, 0.59],
                              ("full", 2): [0.90, 0.91, 0.90], ("full", 4): [0.85, 0.86, 0.84]})
    results = [below(groups, "ecg"), rises_with_aug(groups), classifier_matches(groups, "ecg")]
    assert [c.verdict for c in results] == [FAILS, FAILS, FAILS]
    assert "difference -15.0 points" in results[0].measured


def test_overlapping_spreads_are_inconclusive_and_missing_runs_are_said(tmp_path):
    groups = sweep(tmp_path, {("none", 1): [0.90, 0.80, 0.95], ("full", 1): [0.85, 0.95, 0.80]})
    assert below(groups, "ecg").verdict == UNSURE
    assert rises_with_aug(groups).verdict == MISSING
    assert below(groups, "eeg").verdict == MISSING


def test_the_device_claim_follows_the_model():
    assert two_decades().verdict == HOLDS
    one_decade = DeviceModel(window=1.3, sigma=0.35)  # a noisier device: a smaller gap
    claim = two_decades(one_decade)
    assert claim.verdict == FAILS and "decades" in claim.measured


def curve(rows: list[tuple[float, float]], variant="ecg full aug1") -> list[dict]:
    return [{"variant": variant, "binarize": "full", "ber": repr(b), "acc_mean": repr(a)}
            for b, a in rows]


def test_robustness_claim_needs_a_kept_and_a_lost_accuracy():
    rate = HFO2.ber("2T2R", 1e6)
    good = curve([(0, 0.90), (rate, 0.899), (1e-3, 0.88), (1e-1, 0.60)])
    assert robust_at_2t2r(good, "ecg full aug1").verdict == HOLDS
    fragile = curve([(0, 0.90), (rate, 0.80), (1e-1, 0.50)])
    assert robust_at_2t2r(fragile, "ecg full aug1").verdict == FAILS
    unbreakable = curve([(0, 0.90), (rate, 0.90), (1e-1, 0.89)])
    assert robust_at_2t2r(unbreakable, "ecg full aug1").verdict == FAILS
    assert robust_at_2t2r(curve([(0, 0.9)]), "ecg full aug1").verdict == MISSING


def test_the_report_writes_claims_md(tmp_path, capsys):
    runs = tmp_path / "runs"
    sweep(runs, {("none", 1): [0.96, 0.95], ("full", 1): [0.90, 0.91]})
    ev = runs / "evaluate"
    ev.mkdir()
    rate = HFO2.ber("2T2R", 1e6)
    with open(ev / "ber_curve.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["variant", "binarize", "ber", "acc_mean"])
        writer.writeheader()
        writer.writerows(curve([(0, 0.90), (rate, 0.90), (0.1, 0.55)]))
    assert report_main([str(runs), "claims=true"]) == 0
    text = (runs / "claims.md").read_text()
    assert "| ECG: the fully binarized network is below the real-weight network" in text
    assert "**holds**" in text and "**not measured**" in text
    assert f"{runs / 'claims.md'}" in capsys.readouterr().out
    assert len(claims(group_runs(find_runs(runs)), [])) >= 8


@pytest.mark.parametrize("value", ["maybe", "1"])
def test_claims_option_is_checked(value, tmp_path, capsys):
    assert report_main([str(tmp_path), f"claims={value}"]) == 2
    assert capsys.readouterr().err.startswith(f"error: claims='{value}' is not allowed")
