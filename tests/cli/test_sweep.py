"""Sweeps with ``hydra/launcher=parallel`` (bnn_edge/cli/sweep.py): every job runs in a process
of its own. SIGTERM stops every job and prints one resume line; a job killed by SIGKILL is
recorded as failed while the others go on; every job's options are checked before any starts.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, run_cli, stderr_lines
from tests.helpers.processes import alive, descendants, has_open, wait_until

SMALL = ["data.n_trials=40", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false", "trainer.enable_progress_bar=false"]


def start_sweep(tmp_path, *args: str) -> tuple[subprocess.Popen, object]:
    """``python -m bnn_edge.train -m hydra/launcher=parallel args`` in the background; its
    output goes to a file (a pipe nobody reads could block it)."""
    out = tmp_path / "output.txt"
    proc = subprocess.Popen([sys.executable, "-m", "bnn_edge.train", "-m",
                             "hydra/launcher=parallel", *args], cwd=ROOT, env=os.environ.copy(),
                            stdout=out.open("w"), stderr=subprocess.STDOUT, text=True)
    return proc, out


def results(folder) -> dict:
    return json.loads((folder / "results.json").read_text())


@pytest.mark.parametrize("stop", [
    pytest.param(signal.SIGTERM, id="SIGTERM"),
    pytest.param(signal.SIGINT, id="SIGINT", marks=pytest.mark.slow),
])
def test_sigterm_stops_every_job_and_the_printed_command_resumes(tmp_path, stop):
    sweep = tmp_path / "sweep"
    jobs = [sweep / "0_ecg_none_aug1_fold0", sweep / "1_ecg_classifier_aug1_fold0"]
    proc, out = start_sweep(tmp_path, "binarize=none,classifier", "trainer.max_epochs=1000",
                            *SMALL, f"hydra.sweep.dir={sweep}")
    assert wait_until(lambda: all((j / "checkpoints" / "last.ckpt").exists() for j in jobs)
                      or proc.poll() is not None), "the jobs never finished an epoch"
    workers = descendants(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(stop)  # SIGINT: what Ctrl-C sends
    assert proc.wait(timeout=300) == 128 + stop
    text = out.read_text()
    assert "Traceback" not in text and "KeyError" not in text, text[-3000:]
    assert not [pid for pid in workers if alive(pid)]  # no job trains on
    # each job says where it stopped; the sweep says it once, with the resume command
    assert text.count("interrupted by SIGTERM in epoch") == 2
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"error: sweep stopped by {stop.name} (2 stopped); the sweep folder "
                           f"is kept, resume with: python -m bnn_edge.train -m "), last
    command = shlex.split(last.split("resume with: ", 1)[1])
    assert command[-2:] == ["resume=true", f"hydra.sweep.dir={sweep}"]
    assert not any((j / "results.json").exists() for j in jobs)

    # the command as printed resumes both jobs; trainer.max_epochs may change on resume, to
    # no fewer epochs than a job has done
    done = max(torch.load(j / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
               for j in jobs)
    resumed = subprocess.run([sys.executable, *command[1:], f"trainer.max_epochs={done + 2}"],
                             cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("Resuming from") == 2
    assert f"Sweep: 2 of 2 jobs finished in {sweep}" in resumed.stdout
    assert all(results(j)["val_acc"] is not None for j in jobs)


def test_a_job_killed_by_sigkill_fails_alone_and_resume_redoes_only_it(tmp_path):
    sweep = tmp_path / "sweep"
    killed, sibling = sweep / "0_ecg_classifier_aug1_fold0", sweep / "1_ecg_classifier_aug1_fold0"
    # job 0 trains until it is killed, job 1 finishes two epochs
    proc, out = start_sweep(tmp_path, "trainer.max_epochs=1000,2", "data.batch_size=4", *SMALL,
                            f"hydra.sweep.dir={sweep}")
    assert wait_until(lambda: (killed / "config.yaml").exists() or proc.poll() is not None)
    log = killed / "train.log"
    (victim,) = [pid for pid in descendants(proc.pid) if has_open(pid, log)]
    os.kill(victim, signal.SIGKILL)  # what the out-of-memory killer does
    assert proc.wait(timeout=300) == 1
    text = out.read_text()
    assert "Traceback" not in text and "TerminatedWorkerError" not in text, text[-3000:]
    assert results(killed) == {"status": "failed", "error": "killed by SIGKILL (e.g. by the "
                                                             "out-of-memory killer)"}
    assert results(sibling)["epochs"] == 2 and results(sibling)["val_acc"] is not None
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"error: sweep {sweep}: 1 of 2 jobs did not finish "
                           f"({killed.name}: failed, killed by SIGKILL"), last
    assert "1 finished; redo the others with: python -m bnn_edge.train -m " in last

    # the printed command, trainer.max_epochs lowered, redoes only the killed job
    command = shlex.split(last.split("redo the others with: ", 1)[1])
    command = [a.replace("trainer.max_epochs=1000,2", "trainer.max_epochs=1,2") for a in command]
    finished = sibling.joinpath("results.json").stat().st_mtime_ns
    again = subprocess.run([sys.executable, *command[1:]], cwd=ROOT, env=os.environ.copy(),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already finished (resume=true)") == 1
    assert results(killed)["epochs"] == 1 and results(killed)["val_acc"] is not None
    assert sibling.joinpath("results.json").stat().st_mtime_ns == finished


def test_every_job_is_checked_before_any_starts(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"BNN_EDGE_CACHE": str(cache)}
    proc = run_cli("bnn_edge.train", "-m", "hydra/launcher=parallel", "binarize=none,full",
                   "data.fold=0,9", *SMALL, env=env)
    assert proc.returncode == 2
    assert stderr_lines(proc) == ["error: data.fold=9 is not allowed: expected an integer in "
                                  "[0, 4] (data.folds=5) (in the sweep's job binarize=none "
                                  "data.fold=9)"]
    assert list(cache.iterdir()) == [] and not (tmp_path / "logs").exists()
    # the launcher's own option is checked too
    bad = run_cli("bnn_edge.train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=0",
                  "binarize=none,full", env=env)
    assert bad.returncode == 2
    assert stderr_lines(bad) == ["error: hydra.launcher.n_jobs=0 is not allowed: expected an "
                                 "integer >= 1 (jobs at once), or -1 (one per CPU core)"]
    assert not (tmp_path / "logs").exists()
