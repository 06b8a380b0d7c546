"""The claims report: paired, corrected tests decide the verdicts; claims of three kinds."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

from bnn_edge.cli.report import main as report_main
from bnn_edge.experiment.claims import (
    AT_CHANCE,
    EXTENSION,
    FAILS,
    HOLDS,
    INCONSISTENT,
    MISSING,
    PAPER,
    SELF_CHECK,
    UNSURE,
    below,
    claims,
    classifier_matches,
    equal_memory,
    memory_saving,
    rises_with_aug,
    robust_at_2t2r,
    two_decades,
)
from bnn_edge.experiment.stats import compare, one_sample, wilson
from bnn_edge.experiment.tables import find_runs, group_runs
from bnn_edge.hardware.device import HFO2, DeviceModel
from bnn_edge.tasks import get_task
from tests.helpers.runs import fake_run

#: five folds whose accuracies spread over 35 points: the fold-to-fold spread
SPREAD = [0.80, 0.95, 0.70, 0.88, 0.60]


def sweep(root, accs: dict[tuple[str, int], list[float]], model="ecg", seeds=None):
    """Runs of ``model``, fold k of each (binarize, aug) scoring ``accs[...][k]``; ``seeds``
    per (binarize, aug) (default 42 for all, so every variant pairs by fold)."""
    for (binarize, aug), values in accs.items():
        seed = (seeds or {}).get((binarize, aug), 42)
        for fold, acc in enumerate(values):
            fake_run(root, f"{binarize}_{aug}_{seed}_{fold}", model=model, binarize=binarize,
                     aug=aug, fold=fold, seed=seed, val=acc, test=acc)
    return group_runs(find_runs(root))


def test_consistent_paired_differences_are_decisive_despite_the_fold_spread(tmp_path):
    """Each fold's full network is 3 points below its real one while the folds spread over
    35 points: paired, the claim holds; the same numbers unpaired cannot tell."""
    full = [a - 0.03 + e for a, e in zip(SPREAD, [0.001, -0.002, 0, 0.002, -0.001],
                                         strict=True)]
    claim = below(sweep(tmp_path / "paired", {("none", 1): SPREAD, ("full", 1): full}), "ecg")
    assert claim.verdict == HOLDS
    assert claim.n == "5 pairs" and "paired by (seed, fold)" in claim.test
    assert "n_val/n_train 0.250" in claim.test and "ROPE ±1 points" in claim.test
    assert claim.interval.startswith("+3.00 [+2.")
    unpaired = below(sweep(tmp_path / "unpaired", {("none", 1): SPREAD, ("full", 1): full},
                           seeds={("full", 1): 43}), "ecg")
    assert unpaired.verdict == UNSURE
    assert "unpaired: no (seed, fold) in common" in unpaired.test


def test_a_noisy_variant_with_a_close_mean_is_not_granted_matches(tmp_path):
    """Mean 0.4 points from the real network, but +-6 points fold to fold: no equivalence
    (the old rule, |difference| <= the larger s.d., called this a match)."""
    real = [0.86, 0.85, 0.87, 0.86, 0.86]
    noisy = [0.80, 0.92, 0.84, 0.90, 0.82]
    claim = classifier_matches(sweep(tmp_path / "noisy", {("none", 1): real,
                                                          ("classifier", 1): noisy}), "ecg")
    assert claim.verdict == UNSURE
    assert abs(np.mean(noisy) - np.mean(real)) * 100 < np.std(noisy, ddof=1) * 100
    close = [a + e for a, e in zip(real, [0.001, -0.002, 0.002, 0, -0.001], strict=True)]
    assert classifier_matches(sweep(tmp_path / "close", {("none", 1): real,
                                                         ("classifier", 1): close}),
                              "ecg").verdict == HOLDS
    better = [a + 0.057 for a in real]  # EEG's 5.7 points better: not a match, and said so
    claim = classifier_matches(sweep(tmp_path / "better", {("none", 1): real,
                                                           ("classifier", 1): better}), "ecg")
    assert claim.verdict == FAILS and claim.measured.endswith("better")


def test_rises_with_aug_is_a_per_fold_slope(tmp_path):
    """Folds 35 points apart, each rising 2 points a doubling: the per-fold rise decides."""
    rising = {("full", 1): SPREAD, ("full", 2): [a + 0.02 for a in SPREAD],
              ("full", 4): [a + 0.041 for a in SPREAD]}
    claim = rises_with_aug(sweep(tmp_path / "up", rising))
    assert claim.verdict == HOLDS and claim.n == "5 (seed, fold)"
    assert claim.interval.startswith("+4.1")  # 2 doublings at about 2 points each
    falling = {("full", 1): SPREAD, ("full", 2): [a - 0.02 for a in SPREAD],
               ("full", 4): [a - 0.04 for a in SPREAD]}
    assert rises_with_aug(sweep(tmp_path / "down", falling)).verdict == FAILS
    assert rises_with_aug(sweep(tmp_path / "one", {("full", 1): SPREAD})).verdict == MISSING


def test_no_verdict_on_a_variant_at_chance(tmp_path):
    groups = sweep(tmp_path, {("none", 1): [0.90, 0.91, 0.89], ("full", 1): [0.50, 0.52, 0.49]})
    claim = below(groups, "ecg")
    assert claim.verdict == AT_CHANCE and "chance 50.0%" in claim.measured


def test_equal_memory_uses_the_aug_of_equal_bytes(tmp_path):
    """ECG: the full network takes the classifier's 32-bit memory at aug 3.23, so aug 3 or 4
    are compared; only aug 1 and 2 trained means the claim is not measured."""
    cls = [0.90, 0.85, 0.95, 0.80, 0.88]
    groups = sweep(tmp_path / "a", {("classifier", 1): cls,
                                    ("full", 4): [a - 0.03 for a in cls]})
    claim = equal_memory(groups, "ecg", 32)
    assert claim.verdict == HOLDS and "at aug 3.23" in claim.measured
    assert "full 4x takes 1.30x its memory" in claim.measured
    groups = sweep(tmp_path / "b", {("classifier", 1): cls, ("full", 2): cls})
    assert equal_memory(groups, "ecg", 32).verdict == MISSING
    assert "full at aug=3 or 4" in equal_memory(groups, "ecg", 32).measured


def test_memory_claims_within_half_a_point_and_the_ecg_row_is_the_papers_inconsistency():
    assert memory_saving("eeg").verdict == HOLDS  # 63.99 / 57.80 against 64 / 57.8
    assert memory_saving("mobilenet").verdict == HOLDS  # 20.01 / 7.39 against 20 / 7.3
    ecg = memory_saving("ecg")
    assert ecg.verdict == INCONSISTENT and "386,627" in ecg.measured
    off = dataclasses.replace(get_task("eeg").paper, memory_saving=(64.0, 57.2))  # 0.6 off
    assert memory_saving("eeg", off).verdict == FAILS


def test_stats_agree_with_baycomp_and_scipy():
    """With every fold of a 5-fold split run, n_val/n_train is 1/4 and the test is exactly
    baycomp's CorrelatedTTest; the Wilson interval is the textbook one."""
    from baycomp import CorrelatedTTest

    rng = np.random.default_rng(0)
    x = rng.uniform(80, 90, 10)
    y = x + rng.normal(1.5, 1.0, 10)
    ours = one_sample(list(y - x), ratio=0.25, margin=1.0)
    theirs = CorrelatedTTest(x, y, rope=1.0, runs=2).probs()
    assert (ours.p_below, ours.p_within, ours.p_above) == pytest.approx(theirs)
    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert compare({1: 1.0}, {1: 2.0}, 0.25, 1.0) is None  # one run a side: no test


def test_the_device_claim_is_a_self_check_of_the_model():
    claim = two_decades()
    assert claim.verdict == HOLDS and claim.kind == SELF_CHECK
    assert "3.14 at 1 cycle" in claim.measured and "1.91 at 7e8" in claim.measured
    one_decade = DeviceModel(window=1.3, sigma=0.35)  # a noisier device: a smaller gap
    assert two_decades(one_decade).verdict == FAILS


def curve(rows: list[tuple[float, float]], variant="ecg full aug1") -> list[dict]:
    return [{"variant": variant, "binarize": "full", "ber": repr(b), "acc_mean": repr(a)}
            for b, a in rows]


def test_robustness_claim_needs_a_kept_and_a_lost_accuracy():
    rate = HFO2.ber("2T2R", 1e6)
    good = curve([(0, 0.90), (rate, 0.899), (1e-3, 0.88), (1e-1, 0.60)])
    assert robust_at_2t2r(good, "ecg full aug1").verdict == HOLDS
    assert robust_at_2t2r(good, "ecg full aug1").kind == EXTENSION
    fragile = curve([(0, 0.90), (rate, 0.80), (1e-1, 0.50)])
    assert robust_at_2t2r(fragile, "ecg full aug1").verdict == FAILS
    unbreakable = curve([(0, 0.90), (rate, 0.90), (1e-1, 0.89)])
    assert robust_at_2t2r(unbreakable, "ecg full aug1").verdict == FAILS
    assert robust_at_2t2r(curve([(0, 0.9)]), "ecg full aug1").verdict == MISSING
    spread = [dict(r, draws="10", acc_std="0.05") for r in good]  # 5 points over 10 draws
    assert robust_at_2t2r(spread, "ecg full aug1").verdict == UNSURE


def test_claims_read_only_bitflip_curves(tmp_path):
    """A stuck-device sweep's rows (its x is a fraction, not a bit error rate) are left out;
    files written before the fault_model column count as bitflip."""
    from bnn_edge.experiment.claims import read_curves

    rows = {"old": [{"variant": "a", "ber": "0.001", "acc_mean": "0.9"}],
            "new": [{"variant": "b", "ber": "0.001", "acc_mean": "0.8",
                     "fault_model": "bitflip"},
                    {"variant": "b", "ber": "", "acc_mean": "0.5", "fault_model": "stuck"}]}
    for name, content in rows.items():
        (tmp_path / name).mkdir()
        with open(tmp_path / name / "ber_curve.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(content[-1]))
            writer.writeheader()
            writer.writerows(content)
    assert [(r["variant"], r["acc_mean"]) for r in read_curves(tmp_path)] == [
        ("b", "0.8"), ("a", "0.9")]


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
    assert report_main([str(runs), "claims=true", "margin=2"]) == 0
    text = (runs / "claims.md").read_text()
    assert "**ECG**: data `synthetic`" in text and "seeds 42" in text and "code " in text
    assert "These ECG data are synthetic" in text and "±2 points" in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(claims(group_runs(find_runs(runs)), []))
    for cells in rows:  # kind, claim, test, n, interval, measured, verdict: all stated
        assert len(cells) == 8 and cells[1] in (PAPER, EXTENSION, SELF_CHECK)
        assert all(c.strip() for c in cells) and cells[-1].startswith("**")
    paper = sum(cells[1] == PAPER for cells in rows)
    assert f"Paper claims ({paper}):" in text
    assert "Not counted: 1 project extension(s) and 1 model self-check(s)." in text
    png = runs / "fig4_device.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{runs / 'claims.md'}" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["maybe", "1"])
def test_claims_option_is_checked(value, tmp_path, capsys):
    assert report_main([str(tmp_path), f"claims={value}"]) == 2
    assert capsys.readouterr().err.startswith(f"error: claims='{value}' is not allowed")
