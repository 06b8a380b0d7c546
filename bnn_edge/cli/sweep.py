"""Sweeps (``-m``): the parallel launcher's work, a job's own process, the closing summary.

``hydra/launcher=parallel`` runs every job in a process of its own, at most
``hydra.launcher.n_jobs`` at once: a job killed by the out-of-memory killer is recorded as
failed and the others go on. SIGTERM or SIGINT to the sweep sends SIGTERM to every running
job, which stops after its current batch; the sweep then prints one line with the command
that resumes it and exits with 128 + the signal. A sweep whose jobs all ran ends with
:class:`SweepSummary`'s line, and with exit status 1 when any job failed.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hydra.experimental.callback import Callback

_POLL_S = 0.2
#: set in a job process of a parallel sweep (its children inherit it): the sweep reports
#: for the job, and bnn_edge.cli.train names the job folder instead of a resume command
JOB_ENV = "BNN_EDGE_SWEEP_JOB"
log = logging.getLogger("hydra_plugins.bnn_edge_launcher")


def job_status(folder: Path) -> tuple[str, str]:
    """(done | failed | incomplete, reason) of one job folder of a sweep."""
    from bnn_edge.experiment.rundir import RunDir

    run = RunDir(folder)
    if not run.results_file.is_file() and (folder / "cv.json").is_file():
        return "done", ""
    status, _, reason = run.status()
    return ("failed" if status == "unreadable" else status), reason


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass
class _Job:
    idx: int
    overrides: list[str]
    folder: Path
    process: subprocess.Popen | None = None
    outcome: str = "not started"  # done | failed | stopped | not started
    signalled: bool = False
    results_before: int | None = None  # results.json's mtime when the job started


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _job_folder(config) -> Path:
    """Where Hydra's ``run_job`` puts a job: ``hydra.sweep.dir`` / ``hydra.sweep.subdir``."""
    return Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)


def launch(launcher, job_overrides, initial_job_idx: int) -> list:
    """Run the jobs, each as ``python -m bnn_edge.cli.sweep``, ``n_jobs`` at a time.

    Returns Hydra's JobReturns (the job's ``val_acc`` as its value); a stopped sweep exits
    here with 128 + the signal after its one line.
    """
    import cloudpickle
    from hydra.core.singleton import Singleton
    from hydra.core.utils import (
        JobReturn,
        JobStatus,
        configure_log,
        filter_overrides,
        setup_globals,
    )
    from omegaconf import open_dict

    from bnn_edge.experiment.rundir import RunDir

    setup_globals()
    config, context = launcher.config, launcher.hydra_context
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    n_jobs = launcher.n_jobs if launcher.n_jobs != -1 else os.cpu_count() or 1
    jobs = []
    for i, overrides in enumerate(job_overrides):
        job_config = context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(job_config):
            job_config.hydra.job.num = initial_job_idx + i
        jobs.append(_Job(initial_job_idx + i, list(overrides), _job_folder(job_config)))
    log.info(f"Launching {len(jobs)} jobs, {n_jobs} at a time, each in its own process")
    for job in jobs:
        log.info(f"\t#{job.idx} : {' '.join(filter_overrides(job.overrides))}")

    fd, payload = tempfile.mkstemp(prefix="bnn_edge_sweep_", suffix=".pkl")
    with os.fdopen(fd, "wb") as f:
        cloudpickle.dump({"context": context, "config": config, "task": launcher.task_function,
                          "singletons": Singleton.get_state(), "argv": sys.argv,
                          "jobs": {job.idx: job.overrides for job in jobs}}, f)
    try:
        stopped_by = _run(jobs, n_jobs, payload)
    finally:
        os.unlink(payload)
    if stopped_by:
        _stopped(jobs, stopped_by, sweep_dir)
    returns = []
    for job in jobs:
        results = RunDir(job.folder).finished() if job.outcome == "done" else None
        returns.append(JobReturn(overrides=job.overrides, working_dir=os.getcwd(),
                                 task_name=str(config.hydra.job.name),
                                 status=JobStatus.COMPLETED,
                                 _return_value=(results or {}).get("val_acc")))
    return returns


def _run(jobs: list[_Job], n_jobs: int, payload: str) -> int | None:
    """Start and wait for the jobs; on SIGTERM/SIGINT start no more and send SIGTERM to every
    running job (each runs in a session of its own, so a terminal's Ctrl-C reaches only
    this process). Returns the signal that stopped the sweep, None if it ran to its end."""
    received: list[int] = []
    handlers = {}

    def handler(signum, frame):
        received.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        handlers[sig] = signal.signal(sig, handler)
    pending, running = list(jobs), []
    try:
        while running or (pending and not received):
            while pending and len(running) < n_jobs and not received:
                job = pending.pop(0)
                job.results_before = _mtime(job.folder / "results.json")
                job.process = subprocess.Popen(
                    [sys.executable, "-m", "bnn_edge.cli.sweep", payload, str(job.idx),
                     str(os.getpid()), str(job.folder)], start_new_session=True)
                running.append(job)
            if received:  # also reaches a job started just before the signal came
                for job in running:
                    if not job.signalled:  # SIGTERM: a job stops cleanly at any point
                        job.process.send_signal(signal.SIGTERM)
                        job.signalled = True
            time.sleep(_POLL_S)
            for job in [j for j in running if j.process.poll() is not None]:
                running.remove(job)
                job.outcome = _outcome(job, job.process.returncode)
    finally:
        for sig, previous in handlers.items():
            signal.signal(sig, previous)
    return received[0] if received else None


def _outcome(job: _Job, code: int) -> str:
    """done | failed | stopped for a job process that ended with ``code``; a job that died
    without saying so (SIGKILL from the out-of-memory killer) is recorded as failed."""
    from bnn_edge.cli.train import record_failure

    status, _ = job_status(job.folder)
    if status == "done":
        return "done"
    if status == "failed" and _mtime(job.folder / "results.json") != job.results_before:
        return "failed"  # the job recorded why
    if job.signalled or code in (128 + signal.SIGTERM, 128 + signal.SIGINT):
        return "stopped"
    if code == 0:  # not run, and it said why (another process holds its folder)
        return "failed"
    if code < 0:
        reason = f"killed by {_signal_name(-code)}"
        if code == -signal.SIGKILL:
            reason += " (e.g. by the out-of-memory killer)"
    else:
        reason = f"its process ended with exit status {code} and no results"
    record_failure(job.folder, reason)
    print(f"error: job in {job.folder} failed: {reason}", file=sys.stderr)
    return "failed"


def _stopped(jobs: list[_Job], signum: int, sweep_dir: Path) -> None:
    """The one line of a stopped sweep, then exit 128 + signal."""
    from bnn_edge.cli.train import resume_command

    counts = {o: sum(j.outcome == o for j in jobs)
              for o in ("done", "stopped", "failed", "not started")}
    said = ", ".join(f"{n} {'finished' if o == 'done' else o}" for o, n in counts.items() if n)
    print(f"error: sweep stopped by {_signal_name(signum)} ({said}); the sweep folder is "
          f"kept, resume with: {resume_command(str(sweep_dir), sweep=True)}", file=sys.stderr)
    sys.exit(128 + signum)


def _is_job_folder(path: Path) -> bool:
    """A job's folder: Hydra's record (.hydra/) or a results.json; .submitit/ and the like
    are not."""
    return (path.is_dir() and not path.name.startswith(".")
            and ((path / ".hydra").is_dir() or (path / "results.json").is_file()))


class SweepSummary(Callback):
    """After a multirun: how many jobs finished; exit 1, with the resume command, if any
    failed or left no results."""

    def on_multirun_end(self, config, **kwargs) -> None:
        from bnn_edge.cli.train import resume_command

        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        folders = sorted((p for p in sweep_dir.iterdir() if _is_job_folder(p)),
                         key=lambda p: [int(t) if t.isdigit() else t
                                        for t in re.split(r"(\d+)", p.name)])
        outcome = {p: job_status(p) for p in folders}
        from bnn_edge.lit.tracking import sync_line

        if line := sync_line(sweep_dir):  # the jobs' offline W&B runs, and how to upload them
            print(line)
        bad = [(p, s, r) for p, (s, r) in outcome.items() if s != "done"]
        done = len(folders) - len(bad)
        if not bad:
            print(f"Sweep: {done} of {len(folders)} jobs finished in {sweep_dir}")
            return
        first, status, reason = bad[0]
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        print(f"error: sweep {sweep_dir}: {len(bad)} of {len(folders)} jobs did not finish "
              f"({first.name}: {status}, {reason or 'no reason recorded'}{more}); "
              f"{done} finished; redo the others with: "
              f"{resume_command(str(sweep_dir), sweep=True)}", file=sys.stderr)
        sys.exit(1)


def job_main(argv: list[str]) -> int:
    """One job of a parallel sweep, in this process: ``PAYLOAD IDX PARENT_PID [FOLDER]``."""
    import pickle

    from hydra.core.hydra_config import HydraConfig
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, run_job, setup_globals
    from omegaconf import open_dict

    os.environ[JOB_ENV] = "1"
    payload, idx, parent = argv[0], int(argv[1]), int(argv[2])
    _stop_with_parent(parent)
    with open(payload, "rb") as f:
        state = pickle.load(f)
    sys.argv = state["argv"]
    setup_globals()
    Singleton.set_state(state["singletons"])
    context = state["context"]
    config = context.config_loader.load_sweep_config(state["config"], state["jobs"][idx])
    with open_dict(config):
        config.hydra.job.id = f"{config.hydra.job.name}_{idx}"
        config.hydra.job.num = idx
    HydraConfig.instance().set_config(config)
    ret = run_job(hydra_context=context, task_function=state["task"], config=config,
                  job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    if ret.status == JobStatus.FAILED:
        from bnn_edge.cli.train import failure_reason, record_failure

        reason = failure_reason(ret._return_value)
        record_failure(_job_folder(config), reason)
        print(f"error: job in {_job_folder(config)} failed: {reason}", file=sys.stderr)
        return 1
    return 0


def _stop_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM to this job if the sweep's process dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before that took effect
        sys.exit(128 + signal.SIGTERM)


if __name__ == "__main__":
    from bnn_edge.cli import sweep

    sys.exit(sweep.job_main(sys.argv[1:]))
