"""The report's figures: the paper's Fig. 7 and Fig. 4, and the learning curves.

Each figure of runs carries a one-line caption of what it was computed from.
"""

from __future__ import annotations

import math
from pathlib import Path

from bnn_edge.experiment.tables import (
    VARIANT_TITLES,
    Group,
    listing,
    paper_figures,
    task_title,
)


def caption(groups: list[Group], model: str) -> str:
    """A one-line provenance for a figure."""
    runs = [r for g in groups if g.model == model for r in g.runs]
    source = runs[0].data.get("source", "data not recorded")
    trials = listing(sorted({r.data["n_trials"] for r in runs if "n_trials" in r.data}))
    epochs = listing(sorted({r.results["epochs"] for r in runs
                            if r.results.get("epochs") is not None}))
    folds = listing(sorted({r.fold for r in runs if r.fold is not None}))
    seeds = listing(sorted({r.seed for r in runs if r.seed is not None}))
    return (f"{source} data, {trials} trials, {epochs} epochs, folds {folds}, seeds {seeds}"
            + (" (synthetic: not the paper's data)" if source == "synthetic" else ""))


def fig7_series(groups: list[Group]) -> list[dict]:
    """The points of Fig. 7 for every model: per variant and aug our mean and s.d. of the
    last-epoch validation accuracy (%) over n runs (``source`` ours) and the paper's figure
    (``source`` paper, no spread)."""
    rows = []
    for model in sorted({g.model for g in groups}):
        for v in ("none", "classifier", "full"):
            for g in groups:
                stat = g.stat("val_acc") if (g.model, g.binarize) == (model, v) else None
                if stat is not None:
                    rows.append({"model": model, "series": VARIANT_TITLES[v], "source": "ours",
                                 "aug": g.aug, "accuracy": stat[0], "spread": stat[1],
                                 "n": g.n()})
            for aug, acc in sorted(paper_figures(model, v).items()):
                rows.append({"model": model, "series": f"paper, {VARIANT_TITLES[v]}",
                             "source": "paper", "aug": aug, "accuracy": acc, "spread": None,
                             "n": None})
    return rows


def plot_fig7(groups: list[Group], model: str, path: Path) -> None:
    """Accuracy against aug for the three variants, as the paper's Fig. 7: mean ± s.d. over
    the runs of each point (n beside it); cross-validated only when every point has 2+."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.3))
    augs: set[int] = set()
    styles = {"none": ("tab:blue", "o"), "classifier": ("tab:green", "s"),
              "full": ("tab:red", "^")}
    mine = [g for g in groups if g.model == model and g.stat("val_acc") is not None]
    for v in ("none", "classifier", "full"):
        points = [(g.aug, g.stat("val_acc"), g.n()) for g in mine if g.binarize == v]
        if not points:
            continue
        color, marker = styles[v]
        x = [a for a, _, _ in points]
        augs |= set(x)
        ax.errorbar(x, [s[0] for _, s, _ in points], yerr=[s[1] for _, s, _ in points],
                    color=color, marker=marker, capsize=3, label=VARIANT_TITLES[v].capitalize())
        for a, s, n in points:
            ax.annotate(f"n={n}", (a, s[0]), textcoords="offset points", xytext=(4, -10),
                        fontsize=6, color=color)
        paper = paper_figures(model, v)
        if paper:
            ax.scatter(list(paper), list(paper.values()), facecolors="none", edgecolors=color,
                       marker=marker, s=60, label=f"paper, {VARIANT_TITLES[v]}")
            augs |= set(paper)
    ax.set_xscale("log", base=2)
    ticks = sorted(augs) or [1]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel("Filter augmentation, times")
    crossval = bool(mine) and all(g.n() > 1 for g in mine)
    ax.set_ylabel("Cross-validated accuracy, % (mean ± s.d.)" if crossval
                  else "Validation accuracy, % (n=1: a single fold)")
    ax.set_title(f"{task_title(model)} task")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if mine:
        fig.text(0.01, 0.01, caption(groups, model), fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(rows: list[dict], groups: list[Group], model: str, path: Path) -> None:
    """Learning curves of ``model``: validation and training accuracy against the epoch,
    mean ± s.d. over the runs of each variant (shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, metric in zip(axes, ("val/acc", "train/acc"), strict=True):
        for g in [g for g in groups if g.model == model]:
            pts = [r for r in rows if (r["model"], r["binarize"], r["aug"], r["metric"]) ==
                   (model, g.binarize, g.aug, metric)]
            if not pts:
                continue
            x = [r["epoch"] + 1 for r in pts]
            mean = [r["mean"] for r in pts]
            sd = [r["std"] for r in pts]
            line, = ax.plot(x, mean, label=f"{g.binarize} aug {g.aug} (n={g.n()})")
            ax.fill_between(x, [m - s for m, s in zip(mean, sd, strict=True)],
                            [m + s for m, s in zip(mean, sd, strict=True)],
                            color=line.get_color(), alpha=0.15)
        ax.set_xlabel("Epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{task_title(model)}: {'validation' if metric == 'val/acc' else 'training'} "
                     f"accuracy")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Accuracy, % (mean ± s.d. over runs)")
    axes[0].legend(fontsize=7)
    fig.text(0.01, 0.01, caption(groups, model), fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_fig4(path: Path, device=None, cycles_max: float = 7e8) -> None:
    """The paper's Fig. 4 from the device model: bit error rate against programming cycles
    for 1T1R and 2T2R (log axes), with the gap in decades on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from bnn_edge.hardware.device import HFO2

    device = device or HFO2
    cycles = np.logspace(0, math.log10(cycles_max), 60)
    one = [device.ber("1T1R", c) for c in cycles]
    two = [device.ber("2T2R", c) for c in cycles]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(cycles, one, label="1T1R (one device, reference read)", color="tab:red")
    ax.loglog(cycles, two, label="2T2R (differential pair, PCSA)", color="tab:blue")
    ax.set_xlabel("Programming cycles")
    ax.set_ylabel("Bit error rate")
    ax.grid(alpha=0.3, which="both")
    gap = ax.twinx()
    gap.plot(cycles, [math.log10(a / b) for a, b in zip(one, two, strict=True)],
             color="gray", linestyle="--", label="gap, decades (right axis)")
    gap.set_ylabel("Gap 1T1R / 2T2R, decades")
    gap.set_ylim(0, 4)
    lines = ax.get_legend_handles_labels()
    more = gap.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="lower right")
    ax.set_title("Device model (not a measurement): the paper's Fig. 4", fontsize=9)
    fig.text(0.01, 0.01, f"window {device.window} dec, sigma {device.sigma}, growth "
             f"{device.sigma_growth}/decade of cycles (docs/bit_errors.md)", fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
