"""Comparing cross-validated classifiers: the Bayesian correlated t-test, and binomial intervals.

The primary test is the Bayesian correlated t-test (Corani & Benavoli, Machine Learning
100, 2015), through :class:`baycomp.single.Posterior`. Two variants trained on the same
(seed, fold) see the same data and split, so they are compared on the paired differences
of their accuracies. The differences of k-fold runs are correlated (their training sets
overlap), so the posterior of the mean difference is a Student t with n - 1 degrees of
freedom and the variance of Nadeau & Bengio (2003), ``s^2 (1/n + n_val/n_train)``, with
``n_val/n_train`` taken from the runs' recorded split sizes. A region of practical
equivalence (ROPE) of +-``margin`` points splits the posterior into P(worse), P(practically
equivalent) and P(better); an outcome is decided when one of them reaches
:data:`PROBABILITY`, and is ``undecided`` otherwise.

Runs without a (seed, fold) in common fall back to an unpaired comparison (a
Welch-Satterthwaite t with the same correction on each mean), and say so.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

PROBABILITY = 0.95  # the posterior probability at which an outcome is decided
BETTER, EQUIVALENT, WORSE, UNDECIDED = "better", "practically equivalent", "worse", "undecided"
PAIRED = "Bayesian correlated t-test, paired by (seed, fold)"
UNPAIRED = "Bayesian correlated t-test, unpaired (Welch-Satterthwaite)"


@dataclass(frozen=True)
class Comparison:
    """The posterior of a mean difference (points): its 95 % interval and ROPE probabilities."""

    mean: float
    low: float
    high: float
    p_below: float  # P(difference < -margin)
    p_within: float  # P(|difference| <= margin)
    p_above: float  # P(difference > margin)
    n: int
    margin: float
    ratio: float  # n_val / n_train of the correction
    test: str
    note: str = ""

    @property
    def outcome(self) -> str:
        """better, practically equivalent, worse (P >= PROBABILITY) or undecided."""
        for p, outcome in ((self.p_above, BETTER), (self.p_within, EQUIVALENT),
                           (self.p_below, WORSE)):
            if p >= PROBABILITY:
                return outcome
        return UNDECIDED

    def interval(self) -> str:
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}] points (95 %)"

    def probabilities(self) -> str:
        m = f"{self.margin:g}"
        return (f"P(< -{m}) {self.p_below:.2f}, P(within ±{m}) {self.p_within:.2f}, "
                f"P(> +{m}) {self.p_above:.2f}")


def posterior(mean: float, var: float, df: float, margin: float, n: int, ratio: float,
              test: str, note: str = "") -> Comparison:
    """The Student-t posterior (mean, var, df) read through baycomp with a ROPE of +-margin."""
    from baycomp.single import Posterior
    from scipy.stats import t

    p_below, p_within, p_above = (float(p) for p in Posterior(mean, var, df, margin).probs())
    if var > 0:
        low, high = (float(v) for v in t.interval(0.95, df, loc=mean, scale=math.sqrt(var)))
    else:
        low = high = mean
    return Comparison(mean, low, high, p_below, p_within, p_above, n, margin, ratio, test, note)


def one_sample(values: list[float], ratio: float, margin: float, test: str = PAIRED,
               note: str = "") -> Comparison | None:
    """The correlated t-test of per-(seed, fold) values (differences, slopes); None below 2."""
    n = len(values)
    if n < 2:
        return None
    var = statistics.variance(values) * (1 / n + ratio)
    return posterior(statistics.fmean(values), var, n - 1, margin, n, ratio, test, note)


def compare(a: dict, b: dict, ratio: float, margin: float) -> Comparison | None:
    """``a - b`` for runs keyed by (seed, fold): paired on the keys they share (2 or more),
    else unpaired with the reason; None when a side has fewer than 2 runs to test."""
    common = sorted(set(a) & set(b), key=str)
    if len(common) >= 2:
        left = len(a) + len(b) - 2 * len(common)
        note = f"{left} run(s) without a partner left out" if left else ""
        return one_sample([a[k] - b[k] for k in common], ratio, margin, PAIRED, note)
    if len(a) < 2 or len(b) < 2:
        return None
    why = "no (seed, fold) in common" if not common else "only one (seed, fold) in common"
    va = statistics.variance(a.values()) * (1 / len(a) + ratio)
    vb = statistics.variance(b.values()) * (1 / len(b) + ratio)
    var = va + vb
    df = (var * var / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1)) if var > 0
          else len(a) + len(b) - 2)
    mean = statistics.fmean(a.values()) - statistics.fmean(b.values())
    return posterior(mean, var, df, margin, min(len(a), len(b)), ratio, UNPAIRED,
                     f"unpaired: {why}")


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (x not all equal)."""
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    return (sum((x - mx) * (y - my) for x, y in points)
            / sum((x - mx) ** 2 for x, _ in points))


def wilson(correct: float, n: float) -> tuple[float, float]:
    """The Wilson 95 % interval of a proportion ``correct / n`` (``correct`` rounded)."""
    from scipy.stats import binomtest

    k = int(round(correct))
    ci = binomtest(k, int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def pooled_accuracy(counts: list[tuple[float, int]], repeats: int = 1
                    ) -> tuple[float, float, float, int]:
    """(accuracy, Wilson low, high, trials) of runs' (accuracy, trials) pooled.

    With ``repeats`` repetitions of the cross-validation every trial is validated once per
    repeat, so the interval uses the trial count divided by ``repeats``."""
    correct = sum(acc * n for acc, n in counts)
    total = sum(n for _, n in counts)
    p = correct / total
    effective = max(1, round(total / max(1, repeats)))
    low, high = wilson(p * effective, effective)
    return p, low, high, total
