"""A CSV logger for run directories: metrics.csv at the top, continued when training resumes."""

from __future__ import annotations

import csv
import io
import logging
import os

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from bnn_edge.files import write_atomic


def _row_key(row: dict) -> tuple:
    """(epoch, stage) of a metrics row; the stage is the prefixes of its metrics (val, ...)."""
    try:
        epoch = int(float(row.get("epoch")))
    except (TypeError, ValueError):
        epoch = None
    stage = sorted({k.split("/")[0] for k, v in row.items() if "/" in k and v not in (None, "")})
    return epoch, tuple(stage)


class _RunDirWriter(ExperimentWriter):
    """Lightning's writer warns about (and deletes) an existing metrics.csv; in a run
    directory other files are expected, and a resumed run continues the file instead.

    A resumed run logs again the epochs after its checkpoint, some of which the earlier
    run had logged before it was killed: a row of the resumed run replaces the earlier
    run's row of the same epoch and stage. The file is rewritten atomically.
    """

    def __init__(self, log_dir: str, append: bool):
        self._append = append
        self._earlier: set[tuple] = set()  # (epoch, stage) of the rows of the earlier run
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if not os.path.isfile(self.metrics_file_path):
            return
        if self._append:
            with open(self.metrics_file_path, newline="") as f:
                reader = csv.DictReader(f)
                self._earlier = {_row_key(row) for row in reader}
                self.metrics_keys = sorted(reader.fieldnames or [])
        else:
            os.remove(self.metrics_file_path)

    def save(self) -> None:
        again = {_row_key(row) for row in self.metrics} & self._earlier
        if again and os.path.isfile(self.metrics_file_path):
            self._rewrite(self.metrics_keys, drop=again)
            self._earlier -= again
        super().save()

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        self._rewrite(fieldnames)

    def _rewrite(self, fieldnames: list[str], drop: set[tuple] = frozenset()) -> None:
        """metrics.csv with the header ``fieldnames``, less the rows of (epoch, stage) in
        ``drop``, replaced whole (a full disk leaves the old file)."""
        with open(self.metrics_file_path, newline="") as f:
            rows = [row for row in csv.DictReader(f) if _row_key(row) not in drop]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fieldnames, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.metrics_file_path, text.getvalue())


class ResumableCSVLogger(CSVLogger):
    """``metrics.csv`` in the run directory; with ``append=True`` earlier rows are kept.

    The training pipeline sets ``append`` when it resumes from a checkpoint, so a resumed
    run's metrics.csv holds every epoch, each epoch and stage (train, val, test) once: a
    row of the resumed run replaces the earlier run's row of the same epoch and stage.
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
