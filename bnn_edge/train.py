"""Entry point: ``python -m bnn_edge.train model=ecg binarize=classifier aug=7``."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from bnn_edge.config import CONF_DIR, check_cli_or_exit
from bnn_edge.errors import BnnEdgeError


def fail(error: BnnEdgeError, run_dir: str | None = None) -> None:
    """Print ``error`` as one line, drop the run directory if nothing was written, exit 2."""
    # one line: an error re-raised by a DataLoader worker carries the worker's traceback
    print(f"error: {str(error).strip().splitlines()[0]}", file=sys.stderr)
    if run_dir is not None:
        discard_empty_run_dir(Path(run_dir))
    sys.exit(2)


def discard_empty_run_dir(run_dir: Path) -> None:
    """Remove a run directory holding only what Hydra writes at start (.hydra, the log)."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(run_dir, ignore_errors=True)


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failure(run_dir: Path, error: BaseException) -> None:
    """Mark a run as failed in its results.json, so the report lists it and averages nothing."""
    run_dir.mkdir(parents=True, exist_ok=True)
    reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"
    (run_dir / "results.json").write_text(json.dumps({"status": "failed", "error": reason},
                                                     indent=2) + "\n")


def _train_fold(cfg: DictConfig, train, summary_line) -> dict:
    results = train(cfg)
    if results["global_rank"] == 0:
        print(summary_line(results))
    return results


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def _main(cfg: DictConfig) -> float | None:
    from bnn_edge.training import summary_line, train

    try:
        if cfg.cv.mode == "all":
            from bnn_edge.cv import cross_validate, cv_summary_line

            cv = cross_validate(cfg, lambda sub: _train_fold(sub, train, summary_line))
            print(cv_summary_line(cv, cfg.paths.output_dir))
            return cv.get("val_acc", {}).get("mean")
        results = train(cfg)
    except Exception as e:
        if not in_multirun():
            if isinstance(e, BnnEdgeError):
                fail(e, cfg.paths.output_dir)
            raise
        # one failed job of a sweep must not stop the others: record it and go on
        record_failure(Path(cfg.paths.output_dir), e)
        print(f"error: job in {cfg.paths.output_dir} failed: {e}", file=sys.stderr)
        return None
    if results["global_rank"] == 0:
        print(summary_line(results))
    return results["val_acc"]


def main() -> None:
    check_cli_or_exit("train")
    _main()


if __name__ == "__main__":
    main()
