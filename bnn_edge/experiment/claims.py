"""The paper's checkable claims, each with the numbers of these runs and a computed verdict.

Every verdict is computed from measured values: the cross-validated accuracies of the runs
(Table III's groups: the mean and sample standard deviation over folds of ``val_acc``), the
memory accounting of the networks as built (Table IV), the device model (1T1R and 2T2R
error rates) and the bit-error curves of ``evaluate`` (``ber_curve.csv``). A claim is
``holds``, ``does not hold``, or ``inconclusive`` when the runs' spread cannot tell: two
means differ when their difference exceeds twice its standard error, and a trend exists
when the fitted slope exceeds twice its standard error. A claim without the runs it needs
is ``not measured``, with what is missing.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

HOLDS, FAILS, UNSURE, MISSING = "holds", "does not hold", "inconclusive", "not measured"
#: Table IV's savings of the binarized classifier vs 32 bit, percent
PAPER_SAVINGS = {"eeg": 64.0, "ecg": 84.0, "mobilenet": 20.0}
SAVING_TOLERANCE_PCT = 5.0  # points: the paper rounds and counts batch norms differently
KEEP_POINTS = 1.0  # accuracy points a model may lose and still "keep its accuracy"
LOSE_POINTS = 5.0  # accuracy points below clean that count as "losing it"


@dataclass
class Claim:
    """One claim: what the paper says, what these runs measured, and the verdict."""

    text: str
    measured: str
    verdict: str


def _values(groups, model: str, binarize: str, aug: int) -> list[float]:
    for g in groups:
        if (g.model, g.binarize, g.aug) == (model, binarize, aug):
            return [100 * r.results["val_acc"] for r in g.runs
                    if r.results.get("val_acc") is not None]
    return []


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} ± {sd:.1f}% (n={len(values)})"


def compare(a: list[float], b: list[float]) -> tuple[float, float]:
    """(mean(a) - mean(b), its standard error); the error is inf with fewer than 2 values."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, math.inf
    return diff, math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))


def _missing_pair(text: str, binarize: str) -> Claim:
    return Claim(text, f"needs binarize={binarize} and none at aug=1", MISSING)


def below(groups, model: str) -> Claim:
    """Claim 1: the all-binarized network is below the real-weight one at equal filters."""
    text = f"{model.upper()}: the fully binarized network is below the real-weight network " \
           f"at equal filters (aug 1)"
    full, real = _values(groups, model, "full", 1), _values(groups, model, "none", 1)
    if not full or not real:
        return _missing_pair(text, "full")
    diff, se = compare(real, full)
    verdict = HOLDS if diff > 2 * se else FAILS if diff < -2 * se else UNSURE
    return Claim(text, f"real {_mean_sd(real)}, full {_mean_sd(full)}; difference "
                       f"{diff:+.1f} points (2 SE: {2 * se:.1f})", verdict)


def rises_with_aug(groups, model: str = "ecg", binarize: str = "full") -> Claim:
    """Claim 2: the BNN's accuracy rises with filter augmentation (slope in log2(aug))."""
    text = f"{model.upper()}: the BNN's accuracy rises with the filter augmentation"
    points = [(math.log2(g.aug), 100 * r.results["val_acc"]) for g in groups
              if g.model == model and g.binarize == binarize for r in g.runs]
    augs = sorted({g.aug for g in groups if g.model == model and g.binarize == binarize})
    if len(augs) < 2 or len(points) < 3:
        return Claim(text, f"needs binarize={binarize} at two aug values or more", MISSING)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    resid = [y - my - slope * (x - mx) for x, y in points]
    dof = len(points) - 2
    se = math.sqrt(sum(r * r for r in resid) / dof / sxx) if dof > 0 else math.inf
    verdict = HOLDS if slope > 2 * se else FAILS if slope < -2 * se else UNSURE
    means = ", ".join(f"{a}x {statistics.fmean(_values(groups, model, binarize, a)):.1f}%"
                      for a in augs)
    return Claim(text, f"{means}; slope {slope:+.2f} points per doubling (2 SE: "
                       f"{2 * se:.2f})", verdict)


def classifier_matches(groups, model: str) -> Claim:
    """Claim 3: the binarized classifier is within the error bar of the real network."""
    text = f"{model.upper()}: the binarized classifier matches the real-weight network " \
           f"within the error bar (aug 1)"
    cls, real = _values(groups, model, "classifier", 1), _values(groups, model, "none", 1)
    if not cls or not real:
        return _missing_pair(text, "classifier")
    diff, se = compare(cls, real)
    bar = max(statistics.stdev(v) if len(v) > 1 else 0.0 for v in (cls, real))
    if len(cls) < 2 or len(real) < 2:
        verdict = UNSURE
    elif abs(diff) <= bar:
        verdict = HOLDS
    else:
        verdict = FAILS if abs(diff) > 2 * se else UNSURE
    return Claim(text, f"classifier {_mean_sd(cls)}, real {_mean_sd(real)}; difference "
                       f"{diff:+.1f} points, error bar {bar:.1f}", verdict)


def memory_saving(model: str) -> Claim:
    """Claim 4: binarizing the classifier saves Table IV's share of the 32-bit model."""
    from bnn_edge.hardware.memory import memory_report

    paper = PAPER_SAVINGS[model]
    report = memory_report(model, "classifier", 1)
    ours = report["saving_vs_fp32_pct"]
    verdict = HOLDS if abs(ours - paper) <= SAVING_TOLERANCE_PCT else FAILS
    return Claim(f"{model.upper()}: binarizing the classifier saves {paper:g}% of the 32-bit "
                 f"model (Table IV)",
                 f"{ours:.1f}% ({report['total_params']:,} parameters, "
                 f"{report['classifier_params']:,} in the classifier); within "
                 f"{SAVING_TOLERANCE_PCT:g} points counts as holding", verdict)


def two_decades(device=None, cycles: float = 1e6) -> Claim:
    """Claim 5: 2T2R gives about two decades fewer bit errors than 1T1R."""
    from bnn_edge.hardware.device import HFO2

    device = device or HFO2
    one, two = device.ber("1T1R", cycles), device.ber("2T2R", cycles)
    decades = math.log10(one / two)
    verdict = HOLDS if 1.5 <= decades <= 2.5 else FAILS
    return Claim("2T2R gives about two decades fewer bit errors than 1T1R",
                 f"device model after {cycles:g} cycles: 1T1R {one:.2e}, 2T2R {two:.2e}, "
                 f"{decades:.2f} decades (the default parameters were fitted to the chip's "
                 f"measured gap, so this checks the model, not the chip)", verdict)


def read_curves(root: Path) -> list[dict]:
    """Every row of every ``ber_curve.csv`` under ``root``."""
    rows = []
    for path in sorted(Path(root).rglob("ber_curve.csv")):
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def robust_at_2t2r(curves: list[dict], variant: str, device=None,
                   cycles: float = 1e6) -> Claim:
    """Claim 6: the BNN keeps its accuracy at the 2T2R operating point, loses it higher."""
    from bnn_edge.hardware.device import HFO2

    device = device or HFO2
    rate = device.ber("2T2R", cycles)
    text = (f"{variant}: keeps its accuracy at the 2T2R operating point (BER {rate:.1e}) "
            f"and loses it at some higher error rate")
    rows = [r for r in curves if r["variant"] == variant]
    clean = [float(r["acc_mean"]) for r in rows if float(r["ber"]) == 0]
    near = [r for r in rows if 0 < float(r["ber"]) <= 2 * rate]
    higher = [r for r in rows if float(r["ber"]) > 10 * rate]
    if not clean or not near or not higher:
        return Claim(text, "needs a bit-error curve with rate 0, a rate at or below twice "
                           "the 2T2R rate and higher rates", MISSING)
    base = 100 * clean[0]
    at = max(near, key=lambda r: float(r["ber"]))
    at_acc = 100 * float(at["acc_mean"])
    worst = min(higher, key=lambda r: float(r["acc_mean"]))
    worst_acc = 100 * float(worst["acc_mean"])
    keeps = base - at_acc <= KEEP_POINTS
    loses = base - worst_acc >= LOSE_POINTS
    verdict = HOLDS if keeps and loses else FAILS
    return Claim(text, f"clean {base:.1f}%, at BER {float(at['ber']):.1e} {at_acc:.1f}%, at "
                       f"BER {float(worst['ber']):.1e} {worst_acc:.1f}% (keeps: within "
                       f"{KEEP_POINTS:g} point; loses: {LOSE_POINTS:g} points or more)",
                 verdict)


def claims(groups, curves: list[dict]) -> list[Claim]:
    """Every claim, in the paper's order, from the runs' groups and the bit-error curves."""
    found = [] if not groups else sorted({g.model for g in groups})
    out = []
    for model in [m for m in ("ecg", "eeg") if m in found] or ["ecg"]:
        out.append(below(groups, model))
    out.append(rises_with_aug(groups))
    for model in [m for m in ("ecg", "eeg") if m in found] or ["ecg"]:
        out.append(classifier_matches(groups, model))
    out += [memory_saving(m) for m in ("ecg", "eeg", "mobilenet")]
    out.append(two_decades())
    variants = sorted({r["variant"] for r in curves if r.get("binarize") in (
        "full", "classifier") and r.get("real_format", "none") == "none"})
    out += [robust_at_2t2r(curves, v) for v in variants] or [
        robust_at_2t2r(curves, "a binarized ECG model")]
    return out


def claims_markdown(items: list[Claim]) -> str:
    lines = ["# The paper's claims, checked on these runs", "",
             "Every number and verdict below is computed by `bnn_edge.experiment.claims` from "
             "the runs in this folder (accuracies: mean ± sample s.d. over folds of the "
             "validation accuracy, as Table III).", "",
             "| claim | measured | verdict |", "|---|---|---|"]
    lines += [f"| {c.text} | {c.measured} | **{c.verdict}** |" for c in items]
    counts = {v: sum(c.verdict == v for c in items) for v in (HOLDS, FAILS, UNSURE, MISSING)}
    lines += ["", ", ".join(f"{n} {v}" for v, n in counts.items() if n) + "."]
    return "\n".join(lines) + "\n"
