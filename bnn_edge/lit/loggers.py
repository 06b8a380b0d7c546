"""A CSV logger for run directories: metrics.csv at the top, continued when training resumes."""

from __future__ import annotations

import csv
import logging
import os

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


class _RunDirWriter(ExperimentWriter):
    """Lightning's writer warns about (and deletes) an existing metrics.csv; in a run
    directory other files are expected, and a resumed run continues the file instead."""

    def __init__(self, log_dir: str, append: bool):
        self._append = append
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if not os.path.isfile(self.metrics_file_path):
            return
        if self._append:
            with open(self.metrics_file_path, newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))
        else:
            os.remove(self.metrics_file_path)


class ResumableCSVLogger(CSVLogger):
    """``metrics.csv`` in the run directory; with ``append=True`` earlier rows are kept.

    The training pipeline sets ``append`` when it resumes from a checkpoint, so a resumed
    run's metrics.csv holds every epoch. Rows of an epoch that was interrupted before its
    checkpoint may appear twice; the later one belongs to the resumed run.
    """

    def __init__(self, *args, append: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.append = append

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _RunDirWriter(self.log_dir, self.append)
        return self._experiment


class _DropAdverts(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger (printed by every Trainer)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def quiet_lightning() -> None:
    """Silence Lightning's "Tip: ... litlogger" line; its other messages stay."""
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropAdverts) for f in log.filters):
        log.addFilter(_DropAdverts())
