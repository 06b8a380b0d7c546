"""A CSV logger that keeps the rows of an interrupted run when training resumes."""

from __future__ import annotations

import csv
import os

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class _AppendingWriter(ExperimentWriter):
    """Lightning's writer deletes an existing metrics.csv; this one continues it."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))


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
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self.append:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return super().experiment
