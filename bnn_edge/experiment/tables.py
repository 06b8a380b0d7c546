"""Collecting finished runs and aggregating them into the paper's Table III and Fig. 7.

A run is a directory holding ``config.yaml`` or ``.hydra/`` written by ``bnn_edge.train``
(folders of other tools, such as ``evaluate``, are not runs); a ``cv=all`` run is a
folder of such runs (one per fold). A run is *done* when its ``results.json`` has
accuracies, *failed* when it says so, *unreadable* when its results.json, config.yaml or
data.json is malformed (checked field by field), *incomplete* otherwise (still running,
killed, or stopped before training), and a *duplicate* when another done run of the same
variant and settings has its (seed, fold). Only done runs are averaged; the others are
listed with the reason.

Runs are grouped by variant (model, binarize, aug) and compared only when every setting
that changes the result agrees (:mod:`bnn_edge.experiment.provenance`); runs of one task
that differ are refused with the differing options named, unless ``pool=True``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import statistics
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from bnn_edge.errors import BnnEdgeError, DataError
from bnn_edge.experiment.provenance import code_version, differing, settings
from bnn_edge.experiment.stats import pooled_accuracy, wilson
from bnn_edge.tasks import tasks

VARIANTS = ("none", "full", "classifier")
VARIANT_TITLES = {"none": "real weights", "full": "all binarized",
                  "classifier": "binarized classifier"}
MAX_METRICS_BYTES = 64 << 20  # a metrics.csv of 1000 epochs with bit-error sweeps: a few MiB


@dataclass
class Run:
    """One run directory: its status, results.json, config.yaml and data.json."""

    path: Path
    status: str  # done | failed | incomplete | unreadable | duplicate
    results: dict = field(default_factory=dict)
    reason: str = ""
    config: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.results["model"], self.results["binarize"], int(self.results["aug"]))

    @property
    def seed(self):
        return self.results.get("seed", self.config.get("seed"))

    @property
    def fold(self):
        return self.results.get("fold", self.data.get("fold"))

    def settings(self) -> dict:
        return settings(self.config, self.data, self.results)

    def signature(self) -> str:
        return repr(sorted(self.settings().items(), key=lambda kv: kv[0]))

    @property
    def pair(self) -> tuple:
        """What pairs it with a run of another variant: (seed, fold) and the settings; a run
        that does not record its seed pairs with nothing."""
        if self.seed is None or self.fold is None:
            return ("unrecorded", str(self.path))
        return (self.seed, self.fold, self.signature())

    def split_size(self, name: str) -> int | None:
        return (self.data.get("split_sizes") or {}).get(name)

    @property
    def ratio(self) -> float | None:
        """n_val / n_train of this run's split (Nadeau & Bengio's correction)."""
        train, val = self.split_size("train"), self.split_size("val")
        if train and val is not None:
            return val / train
        folds = self.results.get("folds")
        return 1 / (folds - 1) if isinstance(folds, int) and folds > 1 else None

    @property
    def chance(self) -> float | None:
        """The majority class's share of the trials: what always guessing it scores."""
        counts = self.data.get("class_counts") or {}
        total = sum(counts.values())
        return max(counts.values()) / total if total else None


@dataclass
class Group:
    """The done runs of one (model, binarize, aug) with equal settings: folds and repeats."""

    model: str
    binarize: str
    aug: int
    runs: list[Run]

    def values(self, metric: str = "val_acc") -> dict[tuple, float]:
        """``metric`` in percent per run, keyed by what pairs runs across variants."""
        return {r.pair: 100 * r.results[metric] for r in self.runs
                if r.results.get(metric) is not None}

    def stat(self, metric: str) -> tuple[float, float] | None:
        """Mean and sample standard deviation (0 for one run) of ``metric``, in percent."""
        values = list(self.values(metric).values())
        if not values:
            return None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    def n(self, metric: str = "val_acc") -> int:
        return len(self.values(metric))

    @property
    def seeds(self) -> list:
        return sorted({r.seed for r in self.runs if r.seed is not None})

    @property
    def folds(self) -> list:
        return sorted({r.fold for r in self.runs if r.fold is not None})

    @property
    def ratio(self) -> float | None:
        ratios = [r.ratio for r in self.runs if r.ratio is not None]
        return statistics.fmean(ratios) if ratios else None

    @property
    def chance(self) -> float | None:
        chances = [r.chance for r in self.runs if r.chance is not None]
        return max(chances) if chances else None

    def pooled(self, metric: str = "val_acc") -> tuple[float, float, float, int] | None:
        """(accuracy, Wilson 95 % low, high, trials) of the validation trials of every run."""
        counts = [(r.results[metric], r.split_size("val")) for r in self.runs
                  if r.results.get(metric) is not None and r.split_size("val")]
        return pooled_accuracy(counts, max(1, len(self.seeds))) if counts else None

    @property
    def at_chance(self) -> bool:
        """True when the pooled accuracy's 95 % interval reaches the majority-class share."""
        pooled, chance = self.pooled(), self.chance
        return pooled is not None and chance is not None and pooled[1] <= chance


def _read_run(d: Path) -> Run:
    from bnn_edge.experiment.rundir import RunDir, read_json

    run = RunDir(d)
    status, results, reason = run.status()
    if status != "done":
        return Run(d, status, results, reason)
    try:
        config = run.config() if run.config_file.is_file() else {}
        data_file = d / "data.json"
        data = check_data(read_json(data_file), data_file) if data_file.is_file() else {}
    except DataError as e:
        return Run(d, "unreadable", results, str(e))
    return Run(d, status, results, reason, config, data)


def check_data(data: dict, path: Path) -> dict:
    """The data.json fields the report computes with, checked (DataError names one)."""
    def counts(name: str) -> None:
        value = data.get(name)
        if value is None:
            return
        if not isinstance(value, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0
                for v in value.values()):
            raise DataError(f"{path}: {name}={value!r}, expected a mapping to counts >= 0")

    counts("split_sizes")
    counts("class_counts")
    for key in ("source", "description"):
        if not isinstance(data.get(key, ""), str | None):
            raise DataError(f"{path}: {key}={data[key]!r}, expected text")
    for key in ("n_trials", "folds", "fold"):
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise DataError(f"{path}: {key}={value!r}, expected an integer")
    meaning = data.get("label_meaning")
    if meaning is not None and not (isinstance(meaning, dict) and all(
            isinstance(v, str) for v in meaning.values())):
        raise DataError(f"{path}: label_meaning={meaning!r}, expected class names")
    return data


def _in_wandb_run(parts: tuple[str, ...]) -> bool:
    """True for a path inside a W&B run folder (``wandb/run-*``, ``wandb/offline-run-*``,
    ``wandb/latest-run``), not for a folder that is merely named ``wandb``."""
    return any(parent == "wandb" and (child.startswith(("run-", "offline-run-"))
                                      or child == "latest-run")
               for parent, child in pairwise(parts))


def find_runs(root: Path) -> list[Run]:
    """Every run directory under ``root`` (``root`` itself included), sorted by path."""
    from bnn_edge.experiment.rundir import RunDir

    root = Path(root)
    dirs = {p.parent for p in root.rglob("config.yaml") if p.parent.name != ".hydra"}
    dirs |= {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    # W&B's run folders hold a config.yaml of their own (files/config.yaml once synced)
    dirs = {d for d in dirs if not _in_wandb_run(d.relative_to(root).parts)}
    runs = []
    for d in sorted(dirs):
        run = RunDir(d)
        if run.task() not in (None, "train") or run.is_cv_parent():
            continue  # another tool's output, or a cv=all run whose folds are found below it
        runs.append(_read_run(d))
    return runs


def _differences(model: str, runs: list[Run]) -> str:
    """One phrase naming the settings in which the runs of ``model`` differ, with counts."""
    all_settings = [r.settings() for r in runs]
    parts = []
    for key, values in differing(all_settings).items():
        counts = [sum(s.get(key, "<absent>") == v for s in all_settings) for v in values]
        parts.append(f"{key} (" + ", ".join(f"{v!r} in {c} run{'s' * (c > 1)}"
                                              for v, c in zip(values, counts, strict=True))
                     + ")")
    more = f" and {len(parts) - 3} more" if len(parts) > 3 else ""
    return f"{model.upper()}: " + "; ".join(parts[:3]) + more


def group_runs(runs: list[Run], pool: bool = False) -> list[Group]:
    """Done runs grouped by (model, binarize, aug), in a stable order.

    The runs of one task must agree in every setting that changes the result: BnnEdgeError
    names the differing ones unless ``pool`` (then runs of different settings are kept as
    different replicates). A second done run of a variant with the same (seed, fold) and
    settings becomes a ``duplicate`` and is not counted.
    """
    done = [r for r in runs if r.status == "done"]
    if not pool:
        for model in sorted({r.results["model"] for r in done}):
            mine = [r for r in done if r.results["model"] == model]
            if differing([r.settings() for r in mine]):
                raise BnnEdgeError(
                    f"runs of one task differ in settings that change the result, so they "
                    f"are not averaged or compared: {_differences(model, mine)}; report each "
                    f"set from its own folder, or pass pool=true to pool them anyway")
    kept: dict[tuple, Run] = {}
    groups: dict[tuple, list[Run]] = {}
    for run in done:
        twin = kept.get((run.key, run.pair))
        if twin is not None:
            run.status = "duplicate"
            run.reason = f"the same seed {run.seed}, fold {run.fold} and settings as {twin.path}"
            continue
        kept[(run.key, run.pair)] = run
        groups.setdefault(run.key, []).append(run)
    order = {v: i for i, v in enumerate(VARIANTS)}
    return [Group(m, b, a, rs) for (m, b, a), rs in
            sorted(groups.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9), kv[0][2]))]


def task_title(model: str) -> str:
    task = tasks().get(model)
    return task.title if task else model


def paper_figures(model: str, binarize: str, top5: bool = False) -> dict[int, float]:
    """The paper's accuracy (%) of a task's variant by aug (Table III), {} where it has none."""
    task = tasks().get(model)
    paper = task.paper if task else None
    return {} if paper is None else (paper.top5 if top5 else paper.accuracy).get(binarize, {})


def listing(values: list) -> str:
    return ", ".join(map(str, values)) if values else "not recorded"


def cell(group: Group, metric: str = "val_acc") -> str:
    """Our Table III figure of a group: mean ± s.d. (n >= 2) or one run with its Wilson
    interval, the aug and n; variants at chance say so."""
    values = list(group.values(metric).values())
    if not values:
        return f"n/a ({group.aug}x, n=0)"
    if len(values) == 1:
        text = f"{values[0]:.1f}%"
        n_val = group.runs[0].split_size("val")
        if n_val:
            low, high = wilson(values[0] / 100 * n_val, n_val)
            text += f" [{100 * low:.1f}, {100 * high:.1f}]"
        text += f" ({group.aug}x, n=1)"
    else:
        text = f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}% " \
               f"({group.aug}x, n={len(values)})"
    return text + (" at chance" if metric == "val_acc" and group.at_chance else "")


def _paper(model: str, binarize: str, top5: bool) -> str:
    figures = paper_figures(model, binarize, top5)
    return ", ".join(f"{v:g}% ({a}x)" for a, v in sorted(figures.items())) or "-"


def _mean_sd(group: Group, metric: str) -> tuple[float | None, float | None]:
    s = group.stat(metric)
    return (None, None) if s is None else (round(s[0], 2), round(s[1], 2))


def table3_rows(groups: list[Group]) -> list[dict]:
    """Flat rows: one per (model, binarize, aug), with the paper's figure for that cell."""
    rows = []
    for g in groups:
        val, best, test = (_mean_sd(g, m) for m in ("val_acc", "val_acc_best", "test_acc"))
        rows.append({
            "model": g.model, "binarize": g.binarize, "aug": g.aug, "runs": len(g.runs),
            "val_acc_mean": val[0], "val_acc_std": val[1],
            "test_acc_mean": test[0], "test_acc_std": test[1],
            "paper_acc": paper_figures(g.model, g.binarize).get(g.aug),
            "val_acc_best_mean": best[0], "val_acc_best_std": best[1],
            "seeds": " ".join(map(str, g.seeds)), "folds": " ".join(map(str, g.folds)),
            "chance_pct": None if g.chance is None else round(100 * g.chance, 2),
            "at_chance": g.at_chance,
        })
    return rows


def provenance(groups: list[Group], model: str) -> list[str]:
    """What the numbers of ``model`` were computed from, as markdown lines."""
    runs = [r for g in groups if g.model == model for r in g.runs]
    first = runs[0].data
    source = first.get("source", "not recorded")
    trials = sorted({r.data["n_trials"] for r in runs if "n_trials" in r.data})
    epochs = sorted({r.results["epochs"] for r in runs if r.results.get("epochs") is not None})
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    folds = sorted({r.fold for r in runs if r.fold is not None})
    versions = sorted({str(r.results.get("code_version", "not recorded")) for r in runs})
    stamps = sorted(dt.date.fromtimestamp((r.path / "results.json").stat().st_mtime)
                    for r in runs)
    sizes = first.get("split_sizes") or {}
    split = (f"{first.get('folds', '?')}-fold split, test fraction "
             f"{first.get('test_fraction', '?')} ({sizes.get('train', '?')} train / "
             f"{sizes.get('val', '?')} validation / {sizes.get('test', '?')} test trials a "
             f"fold)")
    lines = [f"**{task_title(model)}**: data `{source}`"
             + (f" ({first['description']})" if first.get("description") else "")
             + f"; {listing(trials)} trials; {split}; {listing(epochs)} epochs; folds "
             f"{listing(folds)} x {len(seeds)} repeat(s) (seeds {listing(seeds)}); code "
             f"{listing(versions)}; runs finished {stamps[0]}"
             + (f" to {stamps[-1]}" if stamps[-1] != stamps[0] else "") + "."]
    task = tasks().get(model)
    if source == "synthetic":
        paper_data = task.paper.data if task and task.paper else "its own data"
        lines.append(f"These {task_title(model)} data are synthetic, generated by this project; "
                     f"the paper's figures beside ours were measured on "
                     f"{paper_data}, so the two columns are not the "
                     f"same experiment.")
    return lines


def header(title: str, groups: list[Group], root: Path, pooled: dict) -> list[str]:
    """A file's opening: title, when and by which code, each task's provenance and what was
    pooled (``pooled``: {model: {option: values}})."""
    lines = [f"# {title}", "",
             f"Written {dt.datetime.now():%Y-%m-%d %H:%M} by bnn_edge {code_version()} from "
             f"the {sum(len(g.runs) for g in groups)} finished runs under `{root}`.", ""]
    for model in sorted({g.model for g in groups}):
        lines += provenance(groups, model) + [""]
    for model, options in pooled.items():
        lines += [f"{task_title(model)} runs pooled although their settings differ (pool=true): "
                  + "; ".join(f"{k} ({', '.join(map(repr, v))})" for k, v in options.items())
                  + ".", ""]
    return lines


def table3_markdown(groups: list[Group], root: Path = Path("."), pooled: dict | None = None
                    ) -> str:
    """Table III's layout (tasks x variants), ours and the paper's figures side by side.

    Each of our cells lists, per aug, the last-epoch validation accuracy (mean ± s.d. over
    folds and repeats, or one run with its Wilson 95 % interval) and n; a second table
    gives the best-epoch and test accuracy beside it, the seeds, folds and chance.
    """
    head = ["task"]
    for v in VARIANTS:
        head += [f"{VARIANT_TITLES[v]} (ours)", f"{VARIANT_TITLES[v]} (paper)"]
    lines = header("Table III: accuracy of the three variants", groups, root, pooled or {})
    lines += ["Ours: last-epoch validation accuracy, mean ± sample s.d. over the runs (n "
              "runs; one run: its Wilson 95 % interval); `at chance`: the pooled accuracy's "
              "95 % interval reaches the majority-class share.", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model in sorted({g.model for g in groups}):
        rows = [(task_title(model), "val_acc", False)]
        task = tasks().get(model)
        if task and task.top5_title:
            rows.append((task.top5_title, "val_acc_top5", True))
        for title, metric, top5 in rows:
            cells = [title]
            for v in VARIANTS:
                ours = [cell(g, metric) for g in groups if g.model == model and g.binarize == v]
                cells += ["<br>".join(ours) or "-", _paper(model, v, top5)]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Per cell (accuracies in %, mean ± s.d. over n runs):", "",
              "| task | variant | aug | n | seeds | folds | last-epoch val | best-epoch val | "
              "test | chance |", "|---|---|---|---|---|---|---|---|---|---|"]
    for g in groups:
        parts = []
        for metric in ("val_acc", "val_acc_best", "test_acc"):
            s, n = g.stat(metric), g.n(metric)
            parts.append("-" if s is None else f"{s[0]:.1f}" + (f" ± {s[1]:.1f}" if n > 1
                                                                 else "") + f" (n={n})")
        chance = "-" if g.chance is None else f"{100 * g.chance:.1f}" + (
            " (at chance)" if g.at_chance else "")
        lines.append(f"| {task_title(g.model)} | {g.binarize} | {g.aug} | {len(g.runs)} | "
                     f"{listing(g.seeds)} | {listing(g.folds)} | {' | '.join(parts)} | "
                     f"{chance} |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    fields = ["model", "binarize", "aug", "runs", "val_acc_mean", "val_acc_std",
              "test_acc_mean", "test_acc_std", "paper_acc", "val_acc_best_mean",
              "val_acc_best_std", "seeds", "folds", "chance_pct", "at_chance"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def write_runs_csv(groups: list[Group], path: Path) -> None:
    """Every averaged run: its accuracies and, on its validation trials, a Wilson interval."""
    fields = ["model", "binarize", "aug", "seed", "fold", "val_acc", "val_wilson_low",
              "val_wilson_high", "n_val", "val_acc_best", "test_acc", "epochs", "path"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for g in groups:
            for r in g.runs:
                n_val, acc = r.split_size("val"), r.results.get("val_acc")
                low, high = wilson(acc * n_val, n_val) if n_val and acc is not None else (None,
                                                                                         None)
                writer.writerow({"model": g.model, "binarize": g.binarize, "aug": g.aug,
                                 "seed": r.seed, "fold": r.fold, "val_acc": acc,
                                 "val_wilson_low": low, "val_wilson_high": high,
                                 "n_val": n_val, "val_acc_best": r.results.get("val_acc_best"),
                                 "test_acc": r.results.get("test_acc"),
                                 "epochs": r.results.get("epochs"), "path": str(r.path)})


def read_curve(run: Run) -> dict[str, dict[int, float]]:
    """``{metric: {epoch: value}}`` of ``val/acc`` and ``train/acc`` in a run's metrics.csv
    (the last value logged for an epoch wins; unreadable cells are skipped)."""
    path = run.path / "metrics.csv"
    out: dict[str, dict[int, float]] = {"val/acc": {}, "train/acc": {}}
    if not path.is_file() or path.stat().st_size > MAX_METRICS_BYTES:
        return out
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            try:
                epoch = int(row.get("epoch") or "")
            except ValueError:
                continue
            for metric, series in out.items():
                try:
                    value = float(row.get(metric) or "")
                except ValueError:
                    continue
                if math.isfinite(value):
                    series[epoch] = 100 * value
    return out


def learning_curves(groups: list[Group]) -> list[dict]:
    """Per group, metric and epoch: mean, s.d. and n over the runs that logged it."""
    rows = []
    for g in groups:
        curves = [read_curve(r) for r in g.runs]
        for metric in ("val/acc", "train/acc"):
            epochs = sorted({e for c in curves for e in c[metric]})
            for epoch in epochs:
                values = [c[metric][epoch] for c in curves if epoch in c[metric]]
                rows.append({"model": g.model, "binarize": g.binarize, "aug": g.aug,
                             "metric": metric, "epoch": epoch,
                             "mean": round(statistics.fmean(values), 3),
                             "std": round(statistics.stdev(values), 3) if len(values) > 1
                             else 0.0, "n": len(values)})
    return rows


def write_curves_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["model", "binarize", "aug", "metric", "epoch",
                                               "mean", "std", "n"])
        writer.writeheader()
        writer.writerows(rows)


def _breakdown(group: Group, field_name: str) -> dict[str, tuple[float, float, float, int]]:
    """Per name in the runs' ``field_name`` (``val_acc_by_class`` / ``_by_category``): the
    pooled accuracy, its Wilson interval and the trials."""
    counts: dict[str, list[tuple[float, int]]] = {}
    for r in group.runs:
        for name, v in (r.results.get(field_name) or {}).items():
            counts.setdefault(name, []).append((v["acc"], v["n"]))
    return {name: pooled_accuracy(c, max(1, len(group.seeds))) for name, c in counts.items()
            if sum(n for _, n in c)}


def _fmt_pooled(p: tuple[float, float, float, int]) -> str:
    return f"{100 * p[0]:.1f}% [{100 * p[1]:.1f}, {100 * p[2]:.1f}] ({p[3]})"


def per_class_markdown(groups: list[Group], root: Path, pooled: dict | None = None) -> str | None:
    """Per-class accuracy on the validation folds, pooled across runs with Wilson intervals:
    sensitivity and specificity of reversal detection and accuracy per reversal for ECG,
    per-class accuracy for the other tasks. None when no run recorded them."""
    with_classes = [g for g in groups if any(r.results.get("val_acc_by_class") for r in g.runs)]
    if not with_classes:
        return None
    lines = header("Per-class accuracy on the validation folds", groups, root, pooled or {})
    lines += ["Each run's last-epoch model on its validation fold; counts pooled over the "
              "runs of a cell, with the Wilson 95 % interval of the pooled proportion (its "
              "trial count divided by the repeats, as each trial is validated once a "
              "repeat); the trial count in brackets.", ""]
    for model in sorted({g.model for g in with_classes}):
        mine = [g for g in with_classes if g.model == model]
        meaning = next((r.data["label_meaning"] for g in mine for r in g.runs
                        if r.data.get("label_meaning")), {})
        classes = sorted({k for g in mine for r in g.runs
                          for k in (r.results.get("val_acc_by_class") or {})}, key=int)
        lines += [f"## {task_title(model)}: accuracy per class", ""]
        if len(classes) == 2:
            lines += ["Two classes: where class 1 is the finding (ECG: a reversal), its "
                      "accuracy is the sensitivity and class 0's the specificity.", ""]
        lines += ["| variant | aug | n | " + " | ".join(
                      f"{k}: {meaning.get(k, 'class ' + k)}" for k in classes) + " |",
                  "|---|---|---|" + "---|" * len(classes)]
        for g in mine:
            by = _breakdown(g, "val_acc_by_class")
            lines.append(f"| {g.binarize} | {g.aug} | {g.n()} | " + " | ".join(
                _fmt_pooled(by[k]) if k in by else "-" for k in classes) + " |")
        # categories in the order the runs list them (by class, then as they appear)
        names = list(dict.fromkeys(k for g in mine for r in g.runs
                                   for k in (r.results.get("val_acc_by_category") or {})))
        if names:
            task = tasks().get(model)
            title = task.category_title if task and task.category_title else "category"
            lines += ["", f"Accuracy per {title}:", "",
                      "| variant | aug | " + " | ".join(names) + " |",
                      "|---|---|" + "---|" * len(names)]
            for g in mine:
                by = _breakdown(g, "val_acc_by_category")
                lines.append(f"| {g.binarize} | {g.aug} | " + " | ".join(
                    _fmt_pooled(by[k]) if k in by else "-" for k in names) + " |")
        lines.append("")
    return "\n".join(lines)
