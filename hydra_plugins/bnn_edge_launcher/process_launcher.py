"""A Hydra launcher that runs each job of a sweep in a process of its own, ``n_jobs`` at once.

Hydra finds launchers in the ``hydra_plugins`` namespace package; the work is done by
:func:`bnn_edge.cli.sweep.launch` (imported only when a sweep starts).
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ProcessLauncher(Launcher):
    """A failed or killed job costs only itself; SIGTERM/SIGINT stop every job cleanly."""

    def __init__(self, n_jobs: int = 2) -> None:
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        from bnn_edge.cli.sweep import launch

        return launch(self, job_overrides, initial_job_idx)
