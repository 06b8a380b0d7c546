"""Weights & Biases: the logger for training runs and the upload of a report.

Without an API key (``WANDB_API_KEY`` or a ``~/.netrc`` entry for the W&B host) runs are
written offline under the run directory (``wandb/offline-run-*``), for a later
``wandb sync``; ``WANDB_MODE`` set by the user always wins.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path

WANDB_HOST = "api.wandb.ai"


def has_api_key() -> bool:
    """True when wandb could authenticate: WANDB_API_KEY or a netrc entry for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    """WANDB_MODE if set, else online with an API key and offline without one."""
    return os.environ.get("WANDB_MODE") or ("online" if has_api_key() else "offline")


def wandb_logger(project: str, save_dir: str, group: str | None = None,
                 name: str | None = None, tags: list[str] | None = None,
                 log_model: bool = False):
    """A Lightning WandbLogger that falls back to offline mode without credentials."""
    from lightning.pytorch.loggers import WandbLogger

    mode = wandb_mode()
    os.environ.setdefault("WANDB_MODE", mode)
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(project=project, save_dir=save_dir, group=group, name=name,
                       tags=[str(t) for t in tags or []], log_model=log_model,
                       offline=mode == "offline")


def finish_wandb(loggers: list) -> None:
    """End the W&B run of every WandbLogger, so the next run of this process starts a new
    one (cv=all, sweeps) and offline records are flushed to disk."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()


def upload_report(report: dict, out: Path, project: str = "bnn_edge") -> str:
    """Log the Table III aggregate (as a table) and the Fig. 7 images as one W&B run."""
    import wandb

    mode = wandb_mode()
    run = wandb.init(project=project, job_type="report", name=f"report-{Path(out).name}",
                     dir=str(out), mode=mode, config={"runs": len(report["runs"])})
    try:
        rows = report["rows"]
        if rows:
            columns = list(rows[0])
            run.log({"table3": wandb.Table(columns=columns,
                                           data=[[r[c] for c in columns] for r in rows])})
        for path in report["figures"]:
            run.log({Path(path).stem: wandb.Image(str(path))})
        return run.dir
    finally:
        run.finish()
