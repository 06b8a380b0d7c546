"""config -> data + model -> trainer -> results: the work behind ``python -m bnn_edge.train``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from bnn_edge.config import instantiate_checked, validate_train_config
from bnn_edge.loggers import ResumableCSVLogger
from bnn_edge.module import BNNClassifier, module_options
from bnn_edge.tracking import finish_wandb


def _metric(metrics: dict, name: str) -> float | None:
    value = metrics.get(name)
    return None if value is None else float(value)


def instantiate_group(group: DictConfig | None, option: str) -> list:
    """Instantiate every entry of a callbacks/logger group; ``name=null`` switches one off."""
    return [instantiate_checked(c, f"{option}.{name}") for name, c in (group or {}).items()
            if c is not None]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path, resume: bool) -> str | None:
    """``last`` (or ``resume=true``) means this run directory's ``checkpoints/last.ckpt``,
    when it exists; an explicit path is used as given."""
    if ckpt_path not in (None, "last"):
        return ckpt_path
    last = output_dir / "checkpoints" / "last.ckpt"
    wanted = ckpt_path == "last" or resume
    return str(last) if wanted and last.is_file() else None


def finished_results(output_dir: Path) -> dict | None:
    """The results.json of a run that finished (not failed), else None."""
    path = output_dir / "results.json"
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    done = results.get("status", "done") == "done" and results.get("val_acc") is not None
    return results if done else None


def train(cfg: DictConfig, echo=print) -> dict:
    """Train (and test) one configuration; write the run directory; return its results.

    The run directory receives ``config.yaml`` (resolved), ``data.json``, ``metrics.csv``,
    ``checkpoints/`` (``last.ckpt`` and the best by ``val/acc``) and ``results.json``.
    """
    t0 = time.perf_counter()
    validate_train_config(cfg)
    options = module_options(cfg.model)  # optimizer, schedule, network extras: checked now
    out = Path(cfg.paths.output_dir)
    resume = bool(cfg.get("resume"))
    if resume and (done := finished_results(out)) is not None:
        echo(f"Skipped: {out} already finished (resume=true)")
        return {**done, "skipped": True, "global_rank": 0}
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
                           weight_decay=cfg.model.weight_decay, **options)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), out, resume)
    if ckpt_path:
        echo(f"Resuming from {ckpt_path}")
    if ckpt_path:
        for logger in loggers:
            if isinstance(logger, ResumableCSVLogger):
                logger.append = True
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    fit_metrics = dict(trainer.callback_metrics)
    if "val/acc" not in fit_metrics:  # resumed at its last epoch: nothing was left to fit
        trainer.validate(module, datamodule=datamodule, verbose=False)
        fit_metrics = dict(trainer.callback_metrics)
        best = getattr(trainer.checkpoint_callback, "best_model_score", None)
        if best is not None:
            fit_metrics["val/acc_best"] = max(float(best), float(fit_metrics["val/acc"]))

    results = {
        "model": cfg.model.name, "binarize": cfg.binarize, "aug": cfg.aug,
        "seed": cfg.seed, "fold": data["fold"], "folds": data["folds"],
        "data_source": data["source"], "epochs": trainer.current_epoch,
        "val_acc": _metric(fit_metrics, "val/acc"),
        "val_acc_best": _metric(fit_metrics, "val/acc_best"),
        "val_acc_top5": _metric(fit_metrics, "val/acc_top5"),  # None with <= 5 classes
        "test_acc": None, "test_loss": None, "test_acc_top5": None,
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
        results["test_acc_top5"] = _metric(test_metrics, "test/acc_top5")
    results["wall_time_s"] = round(time.perf_counter() - t0, 1)
    finish_wandb(loggers)
    results["global_rank"] = trainer.global_rank  # DDP: only rank 0 writes and reports
    if trainer.is_global_zero:
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
