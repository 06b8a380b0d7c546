"""Composing app configs and training tiny runs, for the tests that need a run folder."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir

from bnn_edge.cli.app import CONF_DIR

TINY = ("data.n_trials=40", "trainer.max_epochs=1", "callbacks.rich_progress_bar=null",
        "callbacks.rich_model_summary=null", "trainer.enable_model_summary=false")


def compose_app(app: str, *overrides: str):
    """The composed config of ``conf/<app>.yaml`` with ``overrides`` (no Hydra run)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=app, overrides=list(overrides))


def train_tiny_run(run_dir: Path, *overrides: str) -> dict:
    """Train a one-epoch ECG run of 40 trials into ``run_dir``; return its results."""
    from bnn_edge.experiment.training import train

    cfg = compose_app("train", *TINY, f"paths.output_dir={run_dir}", *overrides)
    return train(cfg, echo=lambda *_: None)


def copy_run(run_dir: Path, dest: Path) -> Path:
    """A copy of a run folder, to tamper with."""
    shutil.copytree(run_dir, dest)
    return dest


def read_metrics(run_dir: Path) -> list[dict]:
    """The rows of a run's metrics.csv."""
    with open(Path(run_dir) / "metrics.csv") as f:
        return list(csv.DictReader(f))


def fake_run(root, name, model="ecg", binarize="none", aug=1, fold=0, val=0.9, test=0.85,
             status=None, seed=42, epochs=10, n_trials=1000, options=None, curve=None,
             by_class=None):
    """A run folder as training leaves it, no model: config.yaml (``options`` replace dotted
    values), .hydra/, data.json (a 5-fold split with a 20 % test split), results.json
    (``by_class``: extra fields such as ``val_acc_by_class``) and, given ``curve`` (a
    validation accuracy per epoch), metrics.csv."""
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    config = {"task_name": "train", "binarize": binarize, "aug": aug, "seed": seed,
              "model": {"name": model, "lr": 0.001},
              "data": {"source": "synthetic", "n_trials": n_trials, "folds": 5, "fold": fold,
                       "test_fraction": 0.2, "seed": seed, "num_workers": 0},
              "trainer": {"max_epochs": epochs, "precision": "32-true"},
              "paths": {"output_dir": str(d)}}
    for key, value in (options or {}).items():
        *parents, last = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    (d / "config.yaml").write_text(yaml.safe_dump(config))
    n_test = round(0.2 * n_trials)
    n_val = (n_trials - n_test) // 5
    data = {"source": config["data"]["source"], "description": "made-up trials",
            "n_trials": n_trials, "class_counts": {"0": n_trials // 2,
                                                   "1": n_trials - n_trials // 2},
            "fold": fold, "folds": 5, "test_fraction": 0.2, "seed": seed,
            "split_sizes": {"train": n_trials - n_test - n_val, "val": n_val, "test": n_test},
            "label_meaning": {"0": "correct electrodes", "1": "electrodes reversed"}}
    (d / "data.json").write_text(json.dumps(data))
    if val is not None:
        results = {"model": model, "binarize": binarize, "aug": aug, "fold": fold, "folds": 5,
                   "seed": seed, "epochs": epochs, "val_acc": val, "val_acc_best": val,
                   "test_acc": test, **(by_class or {})}
        if status:
            results["status"] = status
            results["error"] = "RuntimeError: out of memory"
        (d / "results.json").write_text(json.dumps(results))
    if curve is not None:
        with open(d / "metrics.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", "step", "train/acc", "val/acc"])
            for epoch, acc in enumerate(curve):
                writer.writerow([epoch, epoch, "", acc])
                writer.writerow([epoch, epoch, min(1.0, acc + 0.05), ""])
    return d
