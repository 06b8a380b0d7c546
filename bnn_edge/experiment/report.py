"""The report of a folder of runs: Table III, the runs, the learning curves and per-class
accuracy as files, and the figures drawn from them (``python -m bnn_edge.report``)."""

from __future__ import annotations

from pathlib import Path

from bnn_edge.experiment.figures import plot_curves, plot_fig7
from bnn_edge.experiment.provenance import differing
from bnn_edge.experiment.tables import (
    find_runs,
    group_runs,
    learning_curves,
    per_class_markdown,
    table3_markdown,
    table3_rows,
    write_csv,
    write_curves_csv,
    write_runs_csv,
)


def make_report(root: Path, out: Path | None = None, pool: bool = False) -> dict:
    """Aggregate the runs under ``root``; write table3.md/.csv, runs.csv, fig7_<model>.png,
    the learning curves (curves.csv, curves_<model>.png) and per_class.md.

    Runs of one task whose settings differ are refused (BnnEdgeError, nothing written)
    unless ``pool``.
    """
    root = Path(root)
    out = Path(out) if out is not None else root
    runs = find_runs(root)
    groups = group_runs(runs, pool)
    pooled = {}
    for model in sorted({g.model for g in groups}) if pool else ():
        options = differing([r.settings() for g in groups if g.model == model for r in g.runs])
        if options:
            pooled[model] = options
    out.mkdir(parents=True, exist_ok=True)
    rows = table3_rows(groups)
    markdown = table3_markdown(groups, root, pooled) if groups else "No finished runs.\n"
    (out / "table3.md").write_text(markdown)
    write_csv(rows, out / "table3.csv")
    write_runs_csv(groups, out / "runs.csv")
    figures, written = [], [out / "table3.md", out / "table3.csv", out / "runs.csv"]
    curves = learning_curves(groups)
    if curves:
        write_curves_csv(curves, out / "curves.csv")
        written.append(out / "curves.csv")
    for model in sorted({g.model for g in groups}):
        path = out / f"fig7_{model}.png"
        plot_fig7(groups, model, path)
        figures.append(path)
        if any(r["model"] == model for r in curves):
            path = out / f"curves_{model}.png"
            plot_curves(curves, groups, model, path)
            figures.append(path)
    classes = per_class_markdown(groups, root, pooled)
    if classes:
        (out / "per_class.md").write_text(classes)
        written.append(out / "per_class.md")
    return {"runs": runs, "groups": groups, "rows": rows, "markdown": markdown,
            "figures": figures, "written": written + figures, "pooled": pooled,
            "not_averaged": [r for r in runs if r.status != "done"]}
