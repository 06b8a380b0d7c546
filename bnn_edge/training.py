"""config -> data + model -> trainer -> results: the work behind ``python -m bnn_edge.train``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from bnn_edge.config import instantiate_checked, validate_train_config
from bnn_edge.loggers import ResumableCSVLogger
from bnn_edge.module import BNNClassifier


def _metric(metrics: dict, name: str) -> float | None:
    value = metrics.get(name)
    return None if value is None else float(value)


def instantiate_group(group: DictConfig | None, option: str) -> list:
    """Instantiate every entry of a callbacks/logger group; ``name=null`` switches one off."""
    return [instantiate_checked(c, f"{option}.{name}") for name, c in (group or {}).items()
            if c is not None]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """``last`` means this run directory's ``checkpoints/last.ckpt`` (if it exists)."""
    if ckpt_path != "last":
        return ckpt_path
    last = output_dir / "checkpoints" / "last.ckpt"
    return str(last) if last.is_file() else None


def train(cfg: DictConfig, echo=print) -> dict:
    """Train (and test) one configuration; write the run directory; return its results.

    The run directory receives ``config.yaml`` (resolved), ``data.json``, ``metrics.csv``,
    ``checkpoints/`` (``last.ckpt`` and the best by ``val/acc``) and ``results.json``.
    """
    t0 = time.perf_counter()
    validate_train_config(cfg)
    out = Path(cfg.paths.output_dir)
    datamodule = instantiate_checked(cfg.data, "data")
    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks")
    loggers = instantiate_group(cfg.get("logger"), "logger")
    trainer: L.Trainer = instantiate_checked(cfg.trainer, "trainer", callbacks=callbacks,
                                             logger=loggers or False)

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule.setup("fit")
    data = datamodule.write_summary(out / "data.json")
    echo(f"Data: {data['description']} [{data['cache']}; fold {data['fold']}/{data['folds']}: "
         f"{data['split_sizes']['train']} train, {data['split_sizes']['val']} val, "
         f"{data['split_sizes']['test']} test]")

    module = BNNClassifier(network=cfg.model.name, binarize=cfg.binarize, aug=cfg.aug,
                           num_classes=cfg.model.num_classes, lr=cfg.model.lr,
                           weight_decay=cfg.model.weight_decay)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), out)
    if ckpt_path:
        for logger in loggers:
            if isinstance(logger, ResumableCSVLogger):
                logger.append = True
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    fit_metrics = dict(trainer.callback_metrics)

    results = {
        "model": cfg.model.name, "binarize": cfg.binarize, "aug": cfg.aug,
        "seed": cfg.seed, "fold": data["fold"], "folds": data["folds"],
        "data_source": data["source"], "epochs": trainer.current_epoch,
        "val_acc": _metric(fit_metrics, "val/acc"),
        "val_acc_best": _metric(fit_metrics, "val/acc_best"),
        "test_acc": None, "test_loss": None,
        "best_checkpoint": None, "output_dir": str(out),
    }
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        results["best_checkpoint"] = best
    if cfg.get("test"):
        (test_metrics,) = trainer.test(module, datamodule=datamodule,
                                       ckpt_path="best" if best else None,
                                       weights_only=True, verbose=False)
        results["test_acc"] = _metric(test_metrics, "test/acc")
        results["test_loss"] = _metric(test_metrics, "test/loss")
    results["wall_time_s"] = round(time.perf_counter() - t0, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def summary_line(results: dict) -> str:
    """The one line a run ends with: variant, accuracies, wall time and output path."""
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}%"

    return (f"Done: {results['model']} binarize={results['binarize']} aug={results['aug']} "
            f"fold={results['fold']} | val/acc {pct(results['val_acc'])} "
            f"(best {pct(results['val_acc_best'])}) | test/acc {pct(results['test_acc'])} | "
            f"{results['wall_time_s']:.0f} s | {results['output_dir']}")
