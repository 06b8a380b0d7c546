"""Entry point: ``python -m bnn_edge.train model=ecg binarize=classifier aug=7``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from bnn_edge.config import CONF_DIR, check_cli_choices
from bnn_edge.errors import BnnEdgeError


def fail(error: BnnEdgeError, run_dir: str | None = None) -> None:
    """Print ``error`` as one line, drop the run directory if nothing was written, exit 2."""
    print(f"error: {error}", file=sys.stderr)
    if run_dir is not None:
        discard_empty_run_dir(Path(run_dir))
    sys.exit(2)


def discard_empty_run_dir(run_dir: Path) -> None:
    """Remove a run directory holding only what Hydra writes at start (.hydra, the log)."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(run_dir, ignore_errors=True)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def _main(cfg: DictConfig) -> float | None:
    from bnn_edge.training import summary_line, train

    try:
        results = train(cfg)
    except BnnEdgeError as e:
        fail(e, cfg.paths.output_dir)
    print(summary_line(results))
    return results["val_acc"]


def main() -> None:
    try:
        check_cli_choices(sys.argv[1:])
    except BnnEdgeError as e:
        fail(e)
    _main()


if __name__ == "__main__":
    main()
