"""Collecting finished runs and aggregating them into the paper's Table III and Fig. 7.

A run is a directory holding ``config.yaml`` or ``.hydra/`` written by ``bnn_edge.train``
(folders of other tools, such as ``evaluate``, are not runs); a ``cv=all`` run is a
folder of such runs (one per fold). A run is *done* when its ``results.json`` has
accuracies, *failed* when it says so, *unreadable* when its results.json is malformed
(checked field by field by :class:`~bnn_edge.experiment.rundir.RunDir`), and *incomplete*
otherwise (still running, killed, or stopped before training). Only done runs are
averaged; the others are listed with the reason.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bnn_edge.experiment.tasks import TASKS

# Table III of the paper, in percent, per (model, binarize): {aug: accuracy}.
PAPER_TABLE3 = {
    ("eeg", "none"): {1: 88.0}, ("eeg", "full"): {1: 84.6, 11: 86.0},
    ("eeg", "classifier"): {1: 87.0},
    ("ecg", "none"): {1: 96.3}, ("ecg", "full"): {1: 92.1, 7: 94.9},
    ("ecg", "classifier"): {1: 95.9},
    ("mobilenet", "none"): {1: 70.6}, ("mobilenet", "full"): {4: 54.4},
    ("mobilenet", "classifier"): {1: 70.0},
}
PAPER_TOP5 = {("mobilenet", "none"): {1: 89.5}, ("mobilenet", "full"): {4: 77.5},
              ("mobilenet", "classifier"): {1: 89.1}}
VARIANTS = ("none", "full", "classifier")
VARIANT_TITLES = {"none": "real weights", "full": "all binarized",
                  "classifier": "binarized classifier"}


@dataclass
class Run:
    """One run directory and what its results.json says."""

    path: Path
    status: str  # done | failed | incomplete | unreadable
    results: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.results["model"], self.results["binarize"], int(self.results["aug"]))


@dataclass
class Group:
    """The done runs of one (model, binarize, aug): folds and repeats."""

    model: str
    binarize: str
    aug: int
    runs: list[Run]

    def stat(self, metric: str) -> tuple[float, float] | None:
        """Mean and sample standard deviation (0 for one run) of ``metric``, in percent."""
        values = [100 * r.results[metric] for r in self.runs if r.results.get(metric) is not None]
        if not values:
            return None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def find_runs(root: Path) -> list[Run]:
    """Every run directory under ``root`` (``root`` itself included), sorted by path."""
    from bnn_edge.experiment.rundir import RunDir

    root = Path(root)
    dirs = {p.parent for p in root.rglob("config.yaml") if p.parent.name != ".hydra"}
    dirs |= {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    runs = []
    for d in sorted(dirs):
        run = RunDir(d)
        if run.task() not in (None, "train") or run.is_cv_parent():
            continue  # another tool's output, or a cv=all run whose folds are found below it
        status, results, reason = run.status()
        runs.append(Run(d, status, results, reason))
    return runs


def group_runs(runs: list[Run]) -> list[Group]:
    """Done runs grouped by (model, binarize, aug), in a stable order."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.status == "done":
            groups.setdefault(run.key, []).append(run)
    order = {v: i for i, v in enumerate(VARIANTS)}
    return [Group(m, b, a, rs) for (m, b, a), rs in
            sorted(groups.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9), kv[0][2]))]


def _title(model: str) -> str:
    return TASKS[model].title if model in TASKS else model


def _fmt(stat: tuple[float, float] | None) -> str:
    return "n/a" if stat is None else f"{stat[0]:.1f} ± {stat[1]:.1f}%"


def _paper(table: dict, model: str, binarize: str) -> str:
    figures = table.get((model, binarize), {})
    return ", ".join(f"{v:g}% ({a}x)" for a, v in sorted(figures.items())) or "-"


def table3_rows(groups: list[Group]) -> list[dict]:
    """Flat rows: one per (model, binarize, aug), with the paper's figure for that cell."""
    rows = []
    for g in groups:
        val, test = g.stat("val_acc"), g.stat("test_acc")
        paper = PAPER_TABLE3.get((g.model, g.binarize), {}).get(g.aug)
        rows.append({
            "model": g.model, "binarize": g.binarize, "aug": g.aug, "runs": len(g.runs),
            "val_acc_mean": None if val is None else round(val[0], 2),
            "val_acc_std": None if val is None else round(val[1], 2),
            "test_acc_mean": None if test is None else round(test[0], 2),
            "test_acc_std": None if test is None else round(test[1], 2),
            "paper_acc": paper,
        })
    return rows


def table3_markdown(groups: list[Group]) -> str:
    """Table III's layout (tasks x variants), ours and the paper's figures side by side.

    Each of our cells lists, per aug, the cross-validated accuracy (mean ± std over folds
    and repeats of the last-epoch validation accuracy), the aug and the number of runs.
    """
    header = ["task"]
    for v in VARIANTS:
        header += [f"{VARIANT_TITLES[v]} (ours)", f"{VARIANT_TITLES[v]} (paper)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in sorted({g.model for g in groups}):
        cells = [_title(model)]
        for v in VARIANTS:
            ours = [f"{_fmt(g.stat('val_acc'))} ({g.aug}x, n={len(g.runs)})"
                    for g in groups if g.model == model and g.binarize == v]
            cells += ["<br>".join(ours) or "-", _paper(PAPER_TABLE3, model, v)]
        lines.append("| " + " | ".join(cells) + " |")
        if model in TASKS and TASKS[model].top5_title:
            cells = [TASKS[model].top5_title]
            for v in VARIANTS:
                ours = [f"{_fmt(g.stat('val_acc_top5'))} ({g.aug}x, n={len(g.runs)})"
                        for g in groups if g.model == model and g.binarize == v]
                cells += ["<br>".join(ours) or "-", _paper(PAPER_TOP5, model, v)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    fields = ["model", "binarize", "aug", "runs", "val_acc_mean", "val_acc_std",
              "test_acc_mean", "test_acc_std", "paper_acc"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def plot_fig7(groups: list[Group], model: str, path: Path) -> None:
    """Accuracy against aug for the three variants (mean ± std), as the paper's Fig. 7."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    augs: set[int] = set()
    styles = {"none": ("tab:blue", "o"), "classifier": ("tab:green", "s"),
              "full": ("tab:red", "^")}
    for v in ("none", "classifier", "full"):
        points = [(g.aug, g.stat("val_acc")) for g in groups
                  if g.model == model and g.binarize == v and g.stat("val_acc") is not None]
        if not points:
            continue
        color, marker = styles[v]
        x = [a for a, _ in points]
        augs |= set(x)
        ax.errorbar(x, [s[0] for _, s in points], yerr=[s[1] for _, s in points],
                    color=color, marker=marker, capsize=3, label=VARIANT_TITLES[v].capitalize())
        paper = PAPER_TABLE3.get((model, v), {})
        if paper:
            ax.scatter(list(paper), list(paper.values()), facecolors="none", edgecolors=color,
                       marker=marker, s=60, label=f"paper, {VARIANT_TITLES[v]}")
            augs |= set(paper)
    ax.set_xscale("log", base=2)
    ticks = sorted(augs) or [1]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel("Filter augmentation, times")
    ax.set_ylabel("Cross-validated accuracy, %")
    ax.set_title(f"{_title(model)} task")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def make_report(root: Path, out: Path | None = None) -> dict:
    """Aggregate the runs under ``root``; write table3.md, table3.csv and fig7_<model>.png."""
    root = Path(root)
    out = Path(out) if out is not None else root
    out.mkdir(parents=True, exist_ok=True)
    runs = find_runs(root)
    groups = group_runs(runs)
    rows = table3_rows(groups)
    markdown = table3_markdown(groups) if groups else "No finished runs.\n"
    (out / "table3.md").write_text(markdown)
    write_csv(rows, out / "table3.csv")
    figures = []
    for model in sorted({g.model for g in groups}):
        path = out / f"fig7_{model}.png"
        plot_fig7(groups, model, path)
        figures.append(path)
    return {"runs": runs, "groups": groups, "rows": rows, "markdown": markdown,
            "figures": figures, "not_averaged": [r for r in runs if r.status != "done"]}
