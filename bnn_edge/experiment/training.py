"""config -> data + model -> trainer -> results: the work behind ``python -m bnn_edge.train``."""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from bnn_edge.allocator import reuse_freed_memory
from bnn_edge.errors import BnnEdgeError, ConfigError, DataError, DiskFull, Interrupted
from bnn_edge.experiment.provenance import code_version
from bnn_edge.experiment.rundir import RunDir, check_checkpoint_matches
from bnn_edge.files import disk_full, write_atomic
from bnn_edge.lit.checkpoint_io import use_atomic_checkpoints
from bnn_edge.lit.loggers import ResumableCSVLogger, quiet_lightning
from bnn_edge.lit.module import BNNClassifier, module_options
from bnn_edge.lit.tracking import finish_wandb, wandb_runs
from bnn_edge.lit.wandb_panels import log_categories, run_config
from bnn_edge.tasks import check_network, tasks
from bnn_edge.validation import require_bool, require_int, require_number, require_seed


def validate_train_config(cfg: DictConfig) -> None:
    """Check the options shared by every task; data and trainer options are checked on build."""
    check_network(cfg.model.name, cfg.binarize, cfg.aug)
    require_seed("seed", cfg.seed)
    require_number("model.lr", cfg.model.lr, 0, low_open=True)
    require_number("model.weight_decay", cfg.model.weight_decay, 0)
    require_int("model.num_classes", cfg.model.get("num_classes"), 2, none_ok=True,
                allowed="an integer >= 2, or null (the number of classes of the data)")
    epochs = cfg.trainer.get("max_epochs")
    if epochs != -1:
        require_int("trainer.max_epochs", epochs, 1, none_ok=True,
                    allowed="an integer >= 1 (or -1: no limit)")
    for flag in ("resume", "test"):
        require_bool(flag, cfg.get(flag, False))
    ckpt = cfg.get("ckpt_path")
    if ckpt not in (None, "last") and not Path(str(ckpt)).is_file():
        raise ConfigError("ckpt_path", ckpt, "an existing checkpoint file, 'last' or null")


def check_options(cfg: DictConfig) -> None:
    """The option checks :func:`train` makes before any data or file is touched (a sweep
    makes them for every job before the first starts)."""
    validate_train_config(cfg)
    module_options(cfg.model)
    instantiate_checked(cfg.data, "data")


def instantiate_checked(cfg: DictConfig, option: str, **kwargs):
    """``hydra.utils.instantiate`` of the app's own config (never of a file's), its failures
    one line naming the config ``option``.

    The project's own errors pass through unchanged; anything else the target raises
    (e.g. Lightning rejecting ``trainer.accelerator=tpu``) becomes a BnnEdgeError.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, BnnEdgeError):
            raise cause from None
        reason = str(cause or e).strip().splitlines()[0]
        raise BnnEdgeError(f"{option}: {type(cause or e).__name__}: {reason}") from e


def _metric(metrics: dict, name: str) -> float | None:
    value = metrics.get(name)
    return None if value is None else float(value)


def instantiate_group(group: DictConfig | None, option: str) -> list:
    """Instantiate every entry of a callbacks/logger group; ``name=null`` switches one off."""
    return [instantiate_checked(c, f"{option}.{name}") for name, c in (group or {}).items()
            if c is not None]


def resolve_ckpt_path(ckpt_path: str | None, run: RunDir, resume: bool) -> str | None:
    """``last`` (or ``resume=true``) means this run directory's ``checkpoints/last.ckpt``,
    when it exists; an explicit path is used as given."""
    if ckpt_path not in (None, "last"):
        return ckpt_path
    wanted = ckpt_path == "last" or resume
    return str(run.last_checkpoint) if wanted and run.last_checkpoint.is_file() else None


def data_num_classes(cfg: DictConfig, datamodule) -> int:
    """The class count of the data; ``model.num_classes``, when set, must agree with it."""
    found = datamodule.num_classes
    wanted = cfg.model.get("num_classes")
    if wanted is not None and wanted != found:
        raise ConfigError("model.num_classes", wanted,
                          f"{found} (the number of classes of the data), or null")
    return found


_lightning_signals = threading.local()


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM raises :class:`Interrupted`, except while Lightning handles it itself.

    Inside ``trainer.fit``/``test`` Lightning's own handler stops at the end of the
    current batch (:class:`lightning.pytorch.utilities.exceptions.SIGTERMException`),
    which :func:`train` turns into the same error.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if not getattr(_lightning_signals, "active", False):
            raise Interrupted("SIGTERM", 128 + signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_trainer(trainer: L.Trainer, method: str, *args, **kwargs):
    """``trainer.fit``/``validate``/``test`` with SIGTERM and SIGINT made :class:`Interrupted`."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.trainer.states import TrainerStatus
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    _lightning_signals.active = True
    try:
        return getattr(trainer, method)(*args, **kwargs)
    except MisconfigurationException as e:  # a trainer.* option Lightning rejects late
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise BnnEdgeError(f"trainer: {type(e).__name__}: {reason}") from e
    except SIGTERMException:
        raise Interrupted("SIGTERM", 128 + signal.SIGTERM,
                          f" in epoch {trainer.current_epoch}") from None
    except SystemExit:
        if trainer.state.status == TrainerStatus.INTERRUPTED:  # Lightning's Ctrl-C shutdown
            raise Interrupted("SIGINT", 128 + signal.SIGINT,
                              f" in epoch {trainer.current_epoch}") from None
        raise
    finally:
        _lightning_signals.active = False


def train(cfg: DictConfig, echo=print) -> dict:
    """Train (and test) one configuration; write the run directory; return its results.

    The run directory receives ``config.yaml`` (resolved), ``data.json``, ``metrics.csv``,
    ``checkpoints/`` (``last.ckpt`` and the best by ``val/acc``) and ``results.json``.
    Every option, the data module's included, is checked before anything is written.
    The process holds the folder's lock throughout (RunLocked if another one holds it);
    a full disk is DiskFull naming the folder, every file written before left whole.
    """
    run = RunDir(cfg.paths.output_dir)
    with stop_on_sigterm(), run.locked():
        try:
            return _train(cfg, echo)
        except BnnEdgeError:
            raise
        except Exception as e:
            full = disk_full(e)
            if full is None:
                raise
            raise DiskFull(run.path, _inside(full.filename, run.path)) from e


def _inside(file, folder: Path) -> str | None:
    """``file`` relative to ``folder`` when it lies inside it, else as given."""
    if file is None:
        return None
    try:
        return str(Path(file).resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(file)


def _train(cfg: DictConfig, echo) -> dict:
    """:func:`train`'s work: check the options, build the data, network and trainer, fit,
    evaluate and write ``results.json`` (the skipped run's results if resumed when done)."""
    t0 = time.perf_counter()
    validate_train_config(cfg)
    reuse_freed_memory()  # large maps stay resident between steps (bnn_edge/allocator.py)
    options = module_options(cfg.model)  # optimizer, schedule, network extras: checked now
    run = RunDir(cfg.paths.output_dir)
    resume = bool(cfg.get("resume"))
    current = OmegaConf.to_container(cfg, resolve=True)
    if resume and (done := _finished_run(run, current, echo)) is not None:
        return done
    datamodule = instantiate_checked(cfg.data, "data")
    hparams = _module_hparams(cfg, data_num_classes(cfg, datamodule), options)
    ckpt_path = _checkpoint_to_resume(cfg, run, resume, hparams)
    trainer, loggers = _make_trainer(cfg)
    data = _start_run(cfg, run.path, current, datamodule, echo)
    module = BNNClassifier(**hparams)
    for wandb_run in wandb_runs(loggers):  # the whole config, params and Table IV memory
        wandb_run.config.update(run_config(current, hparams["num_classes"],
                                           options["net_options"]), allow_val_change=True)
    fit_metrics = _fit(trainer, module, datamodule, ckpt_path, loggers, echo)
    best = run.best_checkpoint()
    results = _fit_results(cfg, data, trainer, fit_metrics, best, run.path)
    _add_val_by_category(results, hparams["num_classes"], trainer, module, datamodule)
    _add_test(cfg, results, data["split_sizes"], trainer, module, datamodule, best)
    return _finish(results, t0, trainer, loggers, run.path, echo)


def _finished_run(run: RunDir, current: dict, echo) -> dict | None:
    """For ``resume=true``: refuse a run made with other options; the results of one that
    already finished, marked skipped (None if it has not)."""
    run.check_resume(current)
    if (done := run.finished()) is None:
        return None
    echo(f"Skipped: {run.path} already finished (resume=true)")
    return {**done, "skipped": True, "global_rank": 0}


def _module_hparams(cfg: DictConfig, num_classes: int, options: dict) -> dict:
    """The arguments of :class:`BNNClassifier` (stored in its checkpoints)."""
    return dict(network=cfg.model.name, binarize=cfg.binarize, aug=cfg.aug,
                num_classes=num_classes, lr=cfg.model.lr,
                weight_decay=cfg.model.weight_decay, **options)


def _checkpoint_to_resume(cfg: DictConfig, run: RunDir, resume: bool,
                          hparams: dict) -> str | None:
    """The checkpoint fitting starts from, checked to hold this network (DataError if not;
    the run's own ``last.ckpt`` says it can be deleted)."""
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), run, resume)
    if ckpt_path:
        try:
            check_checkpoint_matches(ckpt_path, hparams)
        except DataError as e:
            if ckpt_path != str(run.last_checkpoint):
                raise
            raise DataError(f"{e}; delete it to train this run from its start") from None
    return ckpt_path


def _make_trainer(cfg: DictConfig) -> tuple[L.Trainer, list]:
    """The Lightning trainer with the configured callbacks and loggers (and the loggers),
    writing its checkpoints atomically."""
    quiet_lightning()
    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks")
    if cfg.trainer.get("enable_model_summary") is False:  # Lightning runs a summary it is given
        from lightning.pytorch.callbacks import ModelSummary

        callbacks = [c for c in callbacks if not isinstance(c, ModelSummary)]
    loggers = instantiate_group(cfg.get("logger"), "logger")
    trainer: L.Trainer = instantiate_checked(cfg.trainer, "trainer", callbacks=callbacks,
                                             logger=loggers or False)
    use_atomic_checkpoints(trainer)
    return trainer, loggers


def _start_run(cfg: DictConfig, out: Path, current: dict, datamodule, echo) -> dict:
    """Write ``config.yaml``, seed everything, set the data up and write ``data.json``;
    return its summary (echoed as the ``Data:`` line)."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.yaml", OmegaConf.to_yaml(current))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule.setup("fit")
    data = datamodule.write_summary(out / "data.json")
    sizes = data["split_sizes"]
    cache = f"{data['cache']}; " if data.get("cache") else ""  # data built in memory: none
    echo(f"Data: {data['description']} [{cache}fold {data['fold']}/{data['folds']}: "
         f"{sizes['train']} train, {sizes['val']} val, {sizes['test']} test]")
    return data


def _fit(trainer: L.Trainer, module, datamodule, ckpt_path: str | None, loggers: list,
         echo) -> dict:
    """Fit (from ``ckpt_path``, the CSV log appended to, when resuming); the metrics of the
    last validation, run once more if nothing was left to fit."""
    if ckpt_path:
        echo(f"Resuming from {ckpt_path}")
        for logger in loggers:
            if isinstance(logger, ResumableCSVLogger):
                logger.append = True
    _run_trainer(trainer, "fit", module, datamodule=datamodule, ckpt_path=ckpt_path,
                 weights_only=True)
    fit_metrics = dict(trainer.callback_metrics)
    if "val/acc" not in fit_metrics:  # resumed at its last epoch: nothing was left to fit
        _run_trainer(trainer, "validate", module, datamodule=datamodule, verbose=False)
        fit_metrics = dict(trainer.callback_metrics)
        best_score = getattr(trainer.checkpoint_callback, "best_model_score", None)
        if best_score is not None:
            fit_metrics["val/acc_best"] = max(float(best_score), float(fit_metrics["val/acc"]))
    return fit_metrics


def _fit_results(cfg: DictConfig, data: dict, trainer: L.Trainer, fit_metrics: dict,
                 best: Path | None, out: Path) -> dict:
    """The results of the fitted run: its variant, data and validation accuracies (the
    test's still None)."""
    return {
        "model": cfg.model.name, "binarize": cfg.binarize, "aug": cfg.aug,
        "seed": cfg.seed, "fold": data["fold"], "folds": data["folds"],
        "data_source": data["source"], "epochs": trainer.current_epoch,
        "val_acc": _metric(fit_metrics, "val/acc"),
        "val_acc_best": _metric(fit_metrics, "val/acc_best"),
        "val_acc_top5": _metric(fit_metrics, "val/acc_top5"),  # None with <= 5 classes
        "test_acc": None, "test_loss": None, "test_acc_top5": None,
        "test_split": data["split_sizes"]["test"] > 0,
        "best_checkpoint": str(best) if best else None, "output_dir": str(out),
        "code_version": code_version(),
    }


def _add_val_by_category(results: dict, num_classes: int, trainer: L.Trainer, module,
                         datamodule) -> None:
    """Add the validation accuracy per class and per category (reversal) to ``results``."""
    if num_classes <= 5:  # per class (and reversal), of the last-epoch model as val_acc
        limit = batch_limit(trainer.num_val_batches)  # the trials val/acc counts
        results["val_acc_by_class"] = category_accuracy(module, datamodule.val_dataloader(),
                                                        max_batches=limit)
        categories = datamodule.categories("val") if hasattr(datamodule, "categories") \
            else None
        if categories:
            results["val_acc_by_category"] = category_accuracy(
                module, datamodule.val_dataloader(), categories, limit)


def _add_test(cfg: DictConfig, results: dict, sizes: dict, trainer: L.Trainer, module,
              datamodule, best: Path | None) -> None:
    """With ``test=true`` and a test split: test the best checkpoint and add its accuracy
    and loss (and per category) to ``results``."""
    if cfg.get("test") and sizes["test"] > 0:
        (test_metrics,) = _run_trainer(trainer, "test", module, datamodule=datamodule,
                                       ckpt_path=str(best) if best else None,
                                       weights_only=True, verbose=False)
        categories = datamodule.categories("test") if hasattr(datamodule, "categories") \
            else None
        if categories:  # over the trials test/acc counts (trainer.limit_test_batches)
            results["test_acc_by_category"] = category_accuracy(
                module, datamodule.test_dataloader(), categories,
                batch_limit(trainer.num_test_batches))
        results["test_acc"] = _metric(test_metrics, "test/acc")
        results["test_loss"] = _metric(test_metrics, "test/loss")
        results["test_acc_top5"] = _metric(test_metrics, "test/acc_top5")


def _finish(results: dict, t0: float, trainer: L.Trainer, loggers: list, out: Path,
            echo) -> dict:
    """Add the wall time, close the W&B runs (echoing their lines) and write
    ``results.json`` on the main process; return the results."""
    results["wall_time_s"] = round(time.perf_counter() - t0, 1)
    log_categories(wandb_runs(loggers), results)
    for line in finish_wandb(loggers):
        echo(line)
    results["global_rank"] = trainer.global_rank  # DDP: only rank 0 writes and reports
    if trainer.is_global_zero:
        write_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    return results


def batch_limit(counts: list) -> int | None:
    """The batches Lightning ran of a stage's (first) loader, None for all of them."""
    if not counts or not math.isfinite(counts[0]):
        return None
    return int(counts[0])


@torch.no_grad()
def category_accuracy(module, loader, categories: list[str] | None = None,
                      max_batches: int | None = None) -> dict[str, dict]:
    """Accuracy of ``module`` (eval mode) per category of the (unshuffled) loader's trials
    (``categories``: a name per trial; None: each trial's class label, as text), over its
    first ``max_batches`` batches (None: all): ``{name: {"acc": fraction, "n": trials}}``,
    ordered by class label, then by where a name first appears (ECG: correct, then the
    reversals)."""
    from itertools import islice

    from bnn_edge.nn import evaluation_mode

    correct: dict[str, int] = {}
    total: dict[str, int] = {}
    first: dict[str, tuple[int, int]] = {}  # name -> (its class, where it first appears)
    names = iter(categories or ())
    with evaluation_mode(module):
        for x, y in islice(loader, max_batches):
            hits = (module(x.to(module.device)).argmax(dim=1).cpu() == y.cpu()).tolist()
            for hit, label in zip(hits, y.tolist(), strict=True):
                name = str(label) if categories is None else next(names)
                first.setdefault(name, (label, len(first)))
                correct[name] = correct.get(name, 0) + hit
                total[name] = total.get(name, 0) + 1
    order = sorted(total, key=first.__getitem__)
    return {k: {"acc": correct[k] / total[k], "n": total[k]} for k in order}


def category_line(results: dict) -> str | None:
    """``Test accuracy by reversal: correct 95.0% (100) | LA-RA 100.0% (34) | ...`` (the
    task's ``category_title``: ECG's categories are reversals)."""
    by = results.get("test_acc_by_category")
    if not by:
        return None
    task = tasks().get(results.get("model"))
    title = task.category_title if task and task.category_title else "category"
    return f"Test accuracy by {title}: " + " | ".join(
        f"{name} {100 * v['acc']:.1f}% ({v['n']})" for name, v in by.items())


def summary_line(results: dict) -> str:
    """The one line a run ends with: variant, accuracies, wall time and output path."""
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}%"

    test = pct(results["test_acc"])
    if results.get("test_split") is False:
        test = "n/a (no test split: data.test_fraction=0)"
    return (f"Done: {results['model']} binarize={results['binarize']} aug={results['aug']} "
            f"fold={results['fold']} | val/acc {pct(results['val_acc'])} "
            f"(best {pct(results['val_acc_best'])}) | test/acc {test} | "
            f"{results['wall_time_s']:.0f} s | {results['output_dir']}")

