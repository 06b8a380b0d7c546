"""``python -m bnn_edge.train model=ecg binarize=classifier aug=7``."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from bnn_edge.cli.app import CONF_DIR, fail, one_line, run_app
from bnn_edge.errors import BnnEdgeError, Interrupted


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failure(run_dir: Path, error: BaseException) -> None:
    """Mark a run as failed in its results.json, so the report lists it and averages nothing."""
    run_dir.mkdir(parents=True, exist_ok=True)
    reason = f"{type(error).__name__}: {one_line(error) if str(error) else ''}"
    (run_dir / "results.json").write_text(json.dumps({"status": "failed", "error": reason},
                                                     indent=2) + "\n")


def resume_command(output_dir: str) -> str:
    """The command that continues this run (or sweep) where it stopped, shell-quoted."""
    from hydra.core.hydra_config import HydraConfig

    sweep = in_multirun()
    folder = HydraConfig.get().sweep.dir if sweep else output_dir
    keep = [a for a in sys.argv[1:]
            if not a.lstrip("+").startswith(("resume=", "hydra.run.dir=", "hydra.sweep.dir="))]
    where = f"hydra.sweep.dir={folder}" if sweep else f"hydra.run.dir={folder}"
    return shlex.join(["python", "-m", "bnn_edge.train", *keep, "resume=true", where])


def interrupted(error: Interrupted, output_dir: str) -> None:
    """One line saying what stopped the run and how to resume it; exit 128 + signal."""
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


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def _main(cfg: DictConfig) -> float | None:
    from bnn_edge.experiment.training import train

    try:
        if cfg.cv.mode == "all":
            from bnn_edge.experiment.cv import cross_validate, cv_summary_line

            cv = cross_validate(cfg, lambda sub: _train_fold(sub, train))
            print(cv_summary_line(cv, cfg.paths.output_dir))
            return cv.get("val_acc", {}).get("mean")
        results = train(cfg)
    except Interrupted as e:
        interrupted(e, cfg.paths.output_dir)
    except KeyboardInterrupt:
        interrupted(Interrupted("SIGINT", 130), cfg.paths.output_dir)
    except Exception as e:
        if not in_multirun():
            if isinstance(e, BnnEdgeError):
                fail(e, cfg.paths.output_dir)
            raise
        # one failed job of a sweep must not stop the others: record it and go on
        record_failure(Path(cfg.paths.output_dir), e)
        print(f"error: job in {cfg.paths.output_dir} failed: {one_line(e)}", file=sys.stderr)
        return None
    report(results)
    return results["val_acc"]


def main() -> None:
    run_app("train", _main)


if __name__ == "__main__":
    main()
