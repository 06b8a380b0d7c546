"""The paper's checkable claims, each with the numbers of these runs, a stated test and a verdict.

Claims are of three kinds, labelled on every line and counted apart: *paper claims* (what
the paper says; the only ones in the tally), *project extensions* (bit-error robustness,
which the paper argues but does not measure on these networks) and *model self-checks*
(properties of this project's device model, true by its construction).

Accuracy claims use :mod:`bnn_edge.experiment.stats`: the Bayesian correlated t-test on
the paired (seed, fold) differences of the last-epoch validation accuracies, with a region
of practical equivalence of +-``margin`` points fixed before the runs (default
:data:`MARGIN`). A directional claim ("A is above B", "accuracy rises with aug") holds when
P(difference > margin) >= 0.95 and does not hold when that probability is <= 0.05; an
equivalence claim ("A matches B") holds when P(|difference| <= margin) >= 0.95 and does not
hold when it is <= 0.05; anything between is ``inconclusive``. A claim about a variant
whose accuracy cannot be told from chance gets no verdict, and a claim without the runs it
needs is ``not measured``, with what is missing.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from bnn_edge.experiment.stats import (
    PAIRED,
    PROBABILITY,
    Comparison,
    compare,
    one_sample,
    slope,
)
from bnn_edge.tasks import Paper, get_task, tasks

PAPER, EXTENSION, SELF_CHECK = "paper claim", "project extension", "model self-check"
HOLDS, FAILS, UNSURE, MISSING = "holds", "does not hold", "inconclusive", "not measured"
AT_CHANCE, INCONSISTENT = "no verdict (at chance)", "inconsistent in the paper"
VERDICTS = (HOLDS, FAILS, UNSURE, AT_CHANCE, INCONSISTENT, MISSING)
MARGIN = 1.0  # accuracy points: the default region of practical equivalence
SAVING_TOLERANCE_PCT = 0.5  # points: the paper prints one decimal or whole percents
LOSE_POINTS = 5.0  # accuracy points below clean that count as "losing it"
TEST_PAIRED = ("Bayesian correlated t-test (baycomp), paired by (seed, fold), Nadeau-Bengio "
               "correction")
EXACT = "exact arithmetic"


@dataclass
class Claim:
    """One claim: its kind, what it says, the test, n, the interval, what was measured, the
    verdict."""

    kind: str
    text: str
    test: str
    n: str
    interval: str
    measured: str
    verdict: str


def _group(groups, model: str, binarize: str, aug: int):
    for g in groups:
        if (g.model, g.binarize, g.aug) == (model, binarize, aug):
            return g
    return None


def _missing(text: str, needs: str) -> Claim:
    return Claim(PAPER, text, TEST_PAIRED, "0 runs", "no test", f"needs {needs}", MISSING)


def _at_chance(text: str, test: str, groups) -> Claim | None:
    from bnn_edge.experiment.tables import cell

    low = [g for g in groups if g.at_chance]
    if not low:
        return None
    names = ", ".join(f"{g.binarize} aug {g.aug} {cell(g)} (chance "
                      f"{100 * g.chance:.1f}%)" for g in low)
    return Claim(PAPER, text, test, " and ".join(f"{g.n()}" for g in groups) + " runs",
                 "no test (at chance)", f"{names}: not distinguishable from chance, so no "
                                        f"verdict on it", AT_CHANCE)


def directional(c: Comparison) -> str:
    """holds when P(difference > margin) >= 0.95, does not hold when <= 0.05."""
    if c.p_above >= PROBABILITY:
        return HOLDS
    return FAILS if c.p_above <= 1 - PROBABILITY else UNSURE


def equivalent(c: Comparison) -> str:
    """holds when P(|difference| <= margin) >= 0.95, does not hold when <= 0.05."""
    if c.p_within >= PROBABILITY:
        return HOLDS
    return FAILS if c.p_within <= 1 - PROBABILITY else UNSURE


def _ratio(*groups) -> float | None:
    ratios = [g.ratio for g in groups if g.ratio is not None]
    return statistics.fmean(ratios) if ratios else None


def _n(c: Comparison) -> str:
    return f"{c.n} pairs" if c.test == PAIRED else f"{c.n} runs (smaller side)"


def _test(c: Comparison) -> str:
    how = "paired by (seed, fold)" if c.test == PAIRED else f"{c.note}, Welch-Satterthwaite"
    return (f"Bayesian correlated t-test (baycomp), {how}; Nadeau-Bengio n_val/n_train "
            f"{c.ratio:.3f}; ROPE ±{c.margin:g} points")


def _pairwise(text: str, a, b, names: tuple[str, str], margin: float, decide) -> Claim:
    """A claim about ``a - b`` (two groups), decided by ``decide`` (directional/equivalent)."""
    from bnn_edge.experiment.tables import cell

    blocked = _at_chance(text, TEST_PAIRED, (a, b))
    if blocked:
        return blocked
    ratio = _ratio(a, b)
    if ratio is None:
        return Claim(PAPER, text, TEST_PAIRED, "-", "-", "the runs do not record their split "
                                                         "sizes or folds", MISSING)
    c = compare(a.values(), b.values(), ratio, margin)
    shown = f"{names[0]} {cell(a)}, {names[1]} {cell(b)}"
    if c is None:
        return Claim(PAPER, text, TEST_PAIRED, f"{a.n()} and {b.n()} runs", "-",
                     f"{shown}; fewer than 2 runs, no test", UNSURE)
    note = f"; {c.note}" if c.note and c.test == PAIRED else ""
    return Claim(PAPER, text, _test(c), _n(c), c.interval(),
                 f"{shown}; {names[0]} − {names[1]}: {c.probabilities()}; "
                 f"{c.outcome}{note}", decide(c))


def below(groups, model: str, margin: float = MARGIN) -> Claim:
    """Paper: the all-binarized network is below the real-weight one at equal filters."""
    text = (f"{model.upper()}: the all-binarized network is less accurate than the "
            f"real-weight network at equal filters (aug 1), by more than the margin")
    full, real = _group(groups, model, "full", 1), _group(groups, model, "none", 1)
    if full is None or real is None:
        return _missing(text, "binarize=full and none at aug=1")
    return _pairwise(text, real, full, ("real", "all binarized"), margin, directional)


def classifier_matches(groups, model: str, margin: float = MARGIN) -> Claim:
    """Paper: the binarized classifier matches the real-weight network (equivalence)."""
    text = (f"{model.upper()}: the binarized classifier matches the real-weight network "
            f"(aug 1): equivalent within ±margin")
    cls, real = _group(groups, model, "classifier", 1), _group(groups, model, "none", 1)
    if cls is None or real is None:
        return _missing(text, "binarize=classifier and none at aug=1")
    return _pairwise(text, cls, real, ("classifier", "real"), margin, equivalent)


def rises_with_aug(groups, model: str = "ecg", binarize: str = "full",
                   margin: float = MARGIN) -> Claim:
    """Paper: the BNN's accuracy rises with filter augmentation, by more than the margin
    over the swept augs (a least-squares slope in log2(aug) per (seed, fold))."""
    text = (f"{model.upper()}: the all-binarized network's accuracy rises with the filter "
            f"augmentation, by more than the margin over the augs swept")
    mine = sorted((g for g in groups if g.model == model and g.binarize == binarize),
                  key=lambda g: g.aug)
    if len(mine) < 2:
        return _missing(text, f"binarize={binarize} at two aug values or more")
    blocked = _at_chance(text, TEST_PAIRED, mine)
    if blocked:
        return blocked
    span = math.log2(mine[-1].aug / mine[0].aug)
    points: dict[tuple, list[tuple[float, float]]] = {}
    for g in mine:
        for key, value in g.values().items():
            points.setdefault(key, []).append((math.log2(g.aug), value))
    rises = [slope(p) * span for p in points.values() if len({x for x, _ in p}) > 1]
    means = ", ".join(f"{g.aug}x {g.stat('val_acc')[0]:.1f}% (n={g.n()})" for g in mine)
    ratio = _ratio(*mine)
    c = None if ratio is None else one_sample(rises, ratio, margin)
    if c is None:
        return Claim(PAPER, text, TEST_PAIRED, f"{len(rises)} (seed, fold)", "-",
                     f"{means}; fewer than 2 (seed, fold) trained at two augs or more, no test",
                     UNSURE)
    return Claim(PAPER, text, _test(c) + "; per (seed, fold): least-squares slope in "
                 "log2(aug) times the span", f"{c.n} (seed, fold)", c.interval(),
                 f"{means}; rise from {mine[0].aug}x to {mine[-1].aug}x: "
                 f"{c.probabilities()}; {c.outcome}", directional(c))


def equal_memory(groups, model: str, bits: int = 32, margin: float = MARGIN) -> Claim:
    """Paper: at equal memory the binarized classifier beats the all-binarized network."""
    from bnn_edge.hardware.memory import equal_memory_aug, memory_report

    paper_aug, paper_gap = get_task(model).paper.equal_memory[bits]
    key = {32: "bytes_mixed_fp32", 8: "bytes_mixed_int8"}[bits]
    text = (f"{model.upper()}: at equal memory ({bits}-bit real layers) the binarized "
            f"classifier is more accurate than the all-binarized network, by more than the "
            f"margin (paper: full at {paper_aug}x, the classifier {paper_gap:g} % better)")
    exact = equal_memory_aug(model, bits)
    cls = _group(groups, model, "classifier", 1)
    target = memory_report(model, "classifier", 1)[key]
    candidates = [g for g in groups if g.model == model and g.binarize == "full"
                  and g.aug in {math.floor(exact), math.ceil(exact)}]
    where = (f"memory_report: the full network equals the classifier's {target:,} B at aug "
             f"{exact:.2f}")
    if cls is None or not candidates:
        needs = " or ".join(str(a) for a in sorted({math.floor(exact), math.ceil(exact)}))
        return _missing(text, f"binarize=classifier at aug=1 and full at aug={needs} "
                              f"({where})")
    full = min(candidates, key=lambda g: abs(math.log(
        memory_report(model, "full", g.aug)[key] / target)))
    size = memory_report(model, "full", full.aug)[key] / target
    claim = _pairwise(text, cls, full, ("classifier", f"full {full.aug}x"), margin,
                      directional)
    claim.measured = f"{where}; full {full.aug}x takes {size:.2f}x its memory; " \
                     + claim.measured
    return claim


def memory_saving(model: str, paper: Paper | None = None) -> Claim:
    """Paper: binarizing the classifier saves Table IV's share vs 32-bit and vs 8-bit
    (``paper``: the task's figures unless given)."""
    from bnn_edge.hardware.memory import memory_report

    paper = paper or get_task(model).paper
    fp32, int8 = paper.memory_saving
    report = memory_report(model, "classifier", 1)
    ours = (report["saving_vs_fp32_pct"], report["saving_vs_int8_pct"])
    text = (f"{model.upper()}: binarizing the classifier saves {fp32:g}% of the 32-bit and "
            f"{int8:g}% of the 8-bit model (Table IV)")
    measured = (f"{ours[0]:.2f}% / {ours[1]:.2f}% ({report['total_params']:,} parameters, "
                f"{report['classifier_params']:,} in the classifier); within "
                f"{SAVING_TOLERANCE_PCT:g} points counts as holding")
    if paper.memory_inconsistency:
        measured += f"; but {paper.memory_inconsistency}"
        verdict = INCONSISTENT
    else:
        close = all(abs(o - p) <= SAVING_TOLERANCE_PCT for o, p in zip(ours, (fp32, int8),
                                                                        strict=True))
        verdict = HOLDS if close else FAILS
    return Claim(PAPER, text, f"{EXACT} (memory_report of the network as built)",
                 "one network", "exact", measured, verdict)


def gap_decades(device, cycles: float) -> float:
    """log10(BER 1T1R / BER 2T2R) of ``device`` after ``cycles``."""
    return math.log10(device.ber("1T1R", cycles) / device.ber("2T2R", cycles))


def two_decades(device=None, cycles: float = 1e6) -> Claim:
    """Self-check: the device model gives 2T2R about two decades fewer errors than 1T1R."""
    from bnn_edge.hardware.device import HFO2

    device = device or HFO2
    one, two = device.ber("1T1R", cycles), device.ber("2T2R", cycles)
    decades = gap_decades(device, cycles)
    verdict = HOLDS if 1.5 <= decades <= 2.5 else FAILS
    return Claim(SELF_CHECK, "The device model gives 2T2R about two decades fewer bit "
                             "errors than 1T1R", f"{EXACT} (closed form)", "-", "exact",
                 f"after {cycles:g} cycles: 1T1R {one:.2e}, 2T2R {two:.2e}, {decades:.2f} "
                 f"decades; {gap_decades(device, 1):.2f} at 1 cycle and "
                 f"{gap_decades(device, 7e8):.2f} at 7e8 (fig4_device.png). True by "
                 f"construction: BER2 = Phi(sqrt2 Phi^-1(BER1)) and the parameters were fitted "
                 f"to the paper's gap, so this checks the model, not the chip", verdict)


def read_curves(root: Path) -> list[dict]:
    """Every row of every ``ber_curve.csv`` under ``root`` swept over independent bit errors
    (``fault_model`` bitflip, or a file written before fault models had a column)."""
    rows = []
    for path in sorted(Path(root).rglob("ber_curve.csv")):
        with open(path, newline="") as f:
            rows += [r for r in csv.DictReader(f) if r.get("fault_model") in (None, "bitflip")]
    return rows


def _draw_interval(row: dict, base: float) -> tuple[float, float, float, int]:
    """(loss, low, high, draws): clean minus the row's mean accuracy over its fault draws,
    in points, with a 95 % t interval over the draws (exact when one draw or no spread)."""
    from scipy.stats import t

    loss = base - 100 * float(row["acc_mean"])
    draws = int(float(row.get("draws") or 1))
    sd = 100 * float(row.get("acc_std") or 0)
    half = t.ppf(0.975, draws - 1) * sd / math.sqrt(draws) if draws > 1 and sd > 0 else 0.0
    return loss, loss - half, loss + half, draws


def robust_at_2t2r(curves: list[dict], variant: str, device=None, cycles: float = 1e6,
                   margin: float = MARGIN) -> Claim:
    """Extension: the BNN keeps its accuracy at the 2T2R operating point, loses it higher."""
    from bnn_edge.hardware.device import HFO2

    device = device or HFO2
    rate = device.ber("2T2R", cycles)
    text = (f"{variant}: keeps its accuracy (within the margin) at the 2T2R operating point "
            f"(BER {rate:.1e}) and loses {LOSE_POINTS:g} points or more at some higher rate")
    test = "95 % t interval over the fault draws of one trained model"
    rows = [r for r in curves if r["variant"] == variant]
    clean = [float(r["acc_mean"]) for r in rows if float(r["ber"]) == 0]
    near = [r for r in rows if 0 < float(r["ber"]) <= 2 * rate]
    higher = [r for r in rows if float(r["ber"]) > 10 * rate]
    if not clean or not near or not higher:
        return Claim(EXTENSION, text, test, "-", "-", "needs a bit-error curve with rate 0, "
                     "a rate at or below twice the 2T2R rate and higher rates", MISSING)
    base = 100 * clean[0]
    at = max(near, key=lambda r: float(r["ber"]))
    worst = min(higher, key=lambda r: float(r["acc_mean"]))
    kept, k_low, k_high, draws = _draw_interval(at, base)
    lost, l_low, l_high, _ = _draw_interval(worst, base)
    keeps, loses = k_high <= margin, l_low >= LOSE_POINTS
    verdict = HOLDS if keeps and loses else (FAILS if (k_low > margin or l_high < LOSE_POINTS)
                                              else UNSURE)
    return Claim(EXTENSION, text, test, f"{draws} draws",
                 f"loss {kept:+.2f} [{k_low:+.2f}, {k_high:+.2f}] at BER "
                 f"{float(at['ber']):.1e}; {lost:+.2f} [{l_low:+.2f}, {l_high:+.2f}] at "
                 f"{float(worst['ber']):.1e}",
                 f"clean {base:.1f}%, at BER {float(at['ber']):.1e} "
                 f"{100 * float(at['acc_mean']):.1f}%, at BER {float(worst['ber']):.1e} "
                 f"{100 * float(worst['acc_mean']):.1f}%", verdict)


def claims(groups, curves: list[dict], margin: float = MARGIN) -> list[Claim]:
    """Every claim, in the paper's order, from the runs' groups and the bit-error curves."""
    found = {g.model for g in groups}
    # the paper's accuracy claims are of the tasks with an equal-memory comparison
    compared = [m for m, t in sorted(tasks().items()) if t.paper and t.paper.equal_memory]
    models = [m for m in compared if m in found] or compared[:1]
    out = [below(groups, m, margin) for m in models]
    out.append(rises_with_aug(groups, margin=margin))
    out += [classifier_matches(groups, m, margin) for m in models]
    out += [equal_memory(groups, m, bits, margin) for m in models for bits in (32, 8)]
    out += [memory_saving(m) for m, t in sorted(tasks().items())
            if t.paper and t.paper.memory_saving]
    variants = sorted({r["variant"] for r in curves if r.get("binarize") in (
        "full", "classifier") and r.get("real_format", "none") == "none"})
    out += [robust_at_2t2r(curves, v, margin=margin) for v in variants] or [
        robust_at_2t2r(curves, "a binarized ECG model", margin=margin)]
    out.append(two_decades())
    return out


METHOD = (
    "Accuracies are last-epoch validation accuracies. Comparisons use the Bayesian "
    "correlated t-test (Corani & Benavoli 2015; `baycomp`): the differences of runs paired "
    "by (seed, fold) have a Student-t posterior with n - 1 degrees of freedom and the "
    "variance s²(1/n + n_val/n_train) of Nadeau & Bengio (2003), n_val/n_train from the "
    "runs' recorded split sizes; runs without a (seed, fold) in common are compared unpaired "
    "(Welch-Satterthwaite, the same correction on each mean) and say so. The region of "
    "practical equivalence is ±{margin:g} points, fixed before the runs (`margin=`). A "
    "directional claim holds when P(difference > margin) ≥ 0.95 and does not hold when it "
    "is ≤ 0.05; an equivalence claim holds when P(|difference| ≤ margin) ≥ 0.95 and does "
    "not hold when it is ≤ 0.05; in between it is inconclusive. The interval is the 95 % "
    "credible interval of the mean difference (numerically the corrected t confidence "
    "interval).")
FAMILY = (
    "The family of claims is not corrected for multiplicity: each verdict is the posterior "
    "probability of its own claim given its own runs, which does not change with the number "
    "of other claims asked (Gelman, Hill & Yajima 2012; Benavoli et al. 2017), and the "
    "0.95 threshold is a decision rule, not a family-wise error rate. Read the tally as "
    "{n} separate decisions; with independent claims about one in twenty decisive verdicts "
    "at the threshold could be wrong.")


def claims_markdown(items: list[Claim], groups=(), root: Path = Path("."),
                    margin: float = MARGIN, pooled: dict | None = None) -> str:
    """claims.md: provenance, the method, one line per claim (kind, test, n, interval,
    verdict) and the tally of the paper's claims."""
    from bnn_edge.experiment.tables import header

    paper = [c for c in items if c.kind == PAPER]
    lines = header("The paper's claims, checked on these runs", list(groups), root,
                   pooled or {})
    lines += [METHOD.format(margin=margin), "", FAMILY.format(n=len(paper)), "",
              "| # | kind | claim | test | n | difference [95 % interval] | measured | "
              "verdict |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {i} | {c.kind} | {c.text} | {c.test} | {c.n} | {c.interval} | "
              f"{c.measured} | **{c.verdict}** |" for i, c in enumerate(items, 1)]
    counts = {v: sum(c.verdict == v for c in paper) for v in VERDICTS}
    others = {k: sum(c.kind == k for c in items) for k in (EXTENSION, SELF_CHECK)}
    lines += ["", f"Paper claims ({len(paper)}): "
              + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
              + f". Not counted: {others[EXTENSION]} project extension(s) and "
              f"{others[SELF_CHECK]} model self-check(s)."]
    return "\n".join(lines) + "\n"
