"""Composing app configs and training tiny runs, for the tests that need a run folder."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

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
             status=None):
    """A run folder as training leaves it (config.yaml, .hydra/, results.json), no model."""
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / "config.yaml").write_text(f"binarize: {binarize}\n")
    if val is not None:
        results = {"model": model, "binarize": binarize, "aug": aug, "fold": fold,
                   "val_acc": val, "val_acc_best": val, "test_acc": test}
        if status:
            results["status"] = status
            results["error"] = "RuntimeError: out of memory"
        (d / "results.json").write_text(json.dumps(results))
    return d
