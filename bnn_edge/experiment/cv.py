"""Cross-validation in one invocation (``cv=all``): every fold, repeated with new seeds.

Each fold trains as a run of its own in ``<run>/repeat<r>_fold<k>/``; ``<run>/cv.json``
holds the per-fold metrics and their mean and standard deviation.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from bnn_edge.errors import ConfigError
from bnn_edge.files import write_atomic
from bnn_edge.validation import require_int

METRICS = ("val_acc", "val_acc_best", "test_acc")


def fold_configs(cfg: DictConfig) -> list[tuple[str, DictConfig]]:
    """(folder name, config) for every repeat and fold; data.folds follows cv.folds."""
    require_int("cv.folds", cfg.cv.folds, 2)
    require_int("cv.repeats", cfg.cv.repeats, 1)
    out = Path(cfg.paths.output_dir)
    runs = []
    for r in range(cfg.cv.repeats):
        for k in range(cfg.cv.folds):
            # a copy that keeps its interpolations, so that every path, the data seed and
            # the logger tags follow the fold's own values
            sub = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
            with open_dict(sub):
                sub.seed = cfg.seed + r
                sub.data.folds = cfg.cv.folds
                sub.data.fold = k
                sub.cv.mode = "single"
                sub.paths.output_dir = str(out / f"repeat{r}_fold{k}")
            runs.append((f"repeat{r}_fold{k}", sub))
    return runs


def aggregate(results: list[dict]) -> dict:
    """Mean and sample standard deviation of each metric over the folds that have it."""
    summary = {}
    for metric in METRICS:
        values = [r[metric] for r in results if r.get(metric) is not None]
        if values:
            summary[metric] = {"mean": statistics.fmean(values),
                               "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                               "n": len(values)}
    return summary


def cross_validate(cfg: DictConfig, train_fn, echo=print) -> dict:
    """Train every fold of ``cfg`` with ``train_fn(cfg)``; write and return cv.json."""
    if cfg.cv.mode != "all":
        raise ConfigError("cv.mode", cfg.cv.mode, "'all' for cross_validate")
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name, sub in fold_configs(cfg):
        echo(f"Cross-validation: {name} ({len(results) + 1}/{cfg.cv.folds * cfg.cv.repeats})")
        result = train_fn(sub)
        results.append({"run": name, "seed": sub.seed, "fold": sub.data.fold,
                        **{m: result.get(m) for m in METRICS}})
    cv = {"model": cfg.model.name, "binarize": cfg.binarize, "aug": cfg.aug,
          "folds": cfg.cv.folds, "repeats": cfg.cv.repeats, "runs": results,
          **aggregate(results)}
    write_atomic(out / "cv.json", json.dumps(cv, indent=2) + "\n")
    return cv


def cv_summary_line(cv: dict, out: str) -> str:
    def part(metric: str) -> str:
        s = cv.get(metric)
        return "n/a" if s is None else f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}%"

    return (f"Cross-validated: {cv['model']} binarize={cv['binarize']} aug={cv['aug']} | "
            f"{cv['folds']} folds x {cv['repeats']} repeats | val/acc {part('val_acc')} | "
            f"test/acc {part('test_acc')} | {out}/cv.json")
