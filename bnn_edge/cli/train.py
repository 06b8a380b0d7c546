"""``python -m bnn_edge.train model=ecg binarize=classifier aug=7``: :data:`ABOUT`."""

from __future__ import annotations

import copy
import json
import os
import shlex
import sys
from pathlib import Path

from omegaconf import DictConfig

from bnn_edge.cli.app import fail, one_line, run_app
from bnn_edge.cli.help import app_help
from bnn_edge.errors import BnnEdgeError, DiskFull, Interrupted, RunLocked
from bnn_edge.files import write_atomic


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failure(run_dir: Path, reason: str) -> None:
    """Mark a run as failed in its results.json, so the report lists it and averages nothing
    and ``resume=true`` runs it again."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "results.json",
                 json.dumps({"status": "failed", "error": reason}, indent=2) + "\n")


def failure_reason(error: BaseException) -> str:
    """``ConfigError: data.fold=7 is not allowed: ...``, as results.json records it."""
    return f"{type(error).__name__}: {one_line(error) if str(error) else ''}"


def resume_command(output_dir: str, sweep: bool | None = None) -> str:
    """The command that continues this run (or, in a multirun, its sweep) where it stopped,
    shell-quoted; ``sweep=True``: ``output_dir`` is the sweep's folder."""
    from hydra.core.hydra_config import HydraConfig

    folder = output_dir
    if sweep is None and (sweep := in_multirun()):
        folder = HydraConfig.get().sweep.dir
    keep = [a for a in sys.argv[1:]
            if not a.lstrip("+").startswith(("resume=", "hydra.run.dir=", "hydra.sweep.dir="))]
    where = f"hydra.sweep.dir={folder}" if sweep else f"hydra.run.dir={folder}"
    return shlex.join(["python", "-m", "bnn_edge.train", *keep, "resume=true", where])


def interrupted(error: Interrupted | DiskFull, output_dir: str) -> None:
    """One line saying what stopped the run and how to resume it; exit 128 + signal (a full
    disk: 2). A job of a parallel sweep names its folder: the sweep prints the resume
    command once."""
    if os.environ.get("BNN_EDGE_SWEEP_JOB") == "1":  # a job of a parallel sweep (cli/sweep.py)
        print(f"error: job in {output_dir} {error}", file=sys.stderr)
    else:
        print(f"error: {error}; the run folder is kept, resume with: "
              f"{resume_command(output_dir)}", file=sys.stderr)
    sys.exit(error.exit_code)


def report(results: dict) -> None:
    """The run's closing lines: accuracy by category (when the task has one), then Done."""
    from bnn_edge.experiment.training import category_line, summary_line

    if results["global_rank"] == 0:
        if line := category_line(results):
            print(line)
        print(summary_line(results))


def _train_fold(cfg: DictConfig, train) -> dict:
    results = train(cfg)
    report(results)
    return results


ABOUT = """\
Train one network on one task and keep everything in a run folder: config.yaml, data.json
(the data used), metrics.csv, checkpoints/ (the best by val/acc and last.ckpt) and
results.json, under logs/train/runs/<time>_<model>_<binarize>_aug<k>/. model= picks the
task (its network and its data), binarize= which layers have binary weights, aug= the
filter augmentation. The run prints the data it used, a summary of the network (binary
memory as Table IV counts it, MACs), the test accuracy per category and one closing line.

With -m, comma-separated values make a sweep, one run per combination (-m binarize=none,full
aug=1,2,4; hydra/launcher=parallel runs them side by side); cv=all trains every fold in
turn; resume=true continues an interrupted run or sweep in its folder."""
#: what the command line holds, for the usage line
ARGS = "[-m] [option=value ...]"


def _main(cfg: DictConfig) -> float | None:
    from bnn_edge.experiment.training import train

    try:
        if cfg.cv.mode == "all":
            from bnn_edge.experiment.cv import cross_validate, cv_summary_line

            cv = cross_validate(cfg, lambda sub: _train_fold(sub, train))
            print(cv_summary_line(cv, cfg.paths.output_dir))
            from bnn_edge.lit.tracking import sync_line

            if line := sync_line(cfg.paths.output_dir):  # every fold's offline W&B run
                print(line)
            return cv.get("val_acc", {}).get("mean")
        results = train(cfg)
    except (Interrupted, DiskFull) as e:
        interrupted(e, cfg.paths.output_dir)
    except KeyboardInterrupt:
        interrupted(Interrupted("SIGINT", 130), cfg.paths.output_dir)
    except Exception as e:
        if not in_multirun():
            if isinstance(e, BnnEdgeError):
                fail(e, cfg.paths.output_dir)
            raise
        if isinstance(e, RunLocked):  # the folder is another process's: leave it as it is
            print(f"error: job in {cfg.paths.output_dir} not run: {one_line(e)}",
                  file=sys.stderr)
            return None
        # one failed job of a sweep must not stop the others: record it and go on
        record_failure(Path(cfg.paths.output_dir), failure_reason(e))
        print(f"error: job in {cfg.paths.output_dir} failed: {one_line(e)}", file=sys.stderr)
        return None
    report(results)
    return results["val_acc"]


def check_job(cfg: DictConfig) -> None:
    """What :func:`train` checks before any data, for one job of a sweep (every job is
    checked before the first starts); ``cv=all`` sets the fold itself."""
    from omegaconf import open_dict

    from bnn_edge.experiment.training import check_options

    if cfg.cv.mode == "all":
        cfg = copy.deepcopy(cfg)
        with open_dict(cfg):
            cfg.data.folds, cfg.data.fold = cfg.cv.folds, 0
    check_options(cfg)


def main() -> None:
    run_app("train", _main, ABOUT, ARGS, render_help=app_help, check_job=check_job)


if __name__ == "__main__":
    main()
