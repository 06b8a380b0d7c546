"""Interrupted, resumed, copied and mismatched runs: the run's record is never destroyed.

SIGTERM (what SLURM and ``kill`` send) ends training with a non-zero status and one line
saying how to resume; ``resume=true`` with other options than the run's is refused before
anything is written; a copied run folder resumes with its own checkpoints; a corrupt or
foreign checkpoint is one error line; a second process on a run folder is refused while the
first trains; a full disk stops in one line and the run resumes; a resume after a SIGKILL
leaves one metrics row per epoch and stage.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import ROOT, run_cli
from tests.helpers.runs import read_metrics, train_tiny_run

COMMON = ["callbacks.rich_progress_bar=null", "trainer.enable_model_summary=false"]


def digest(folder) -> dict[str, bytes]:
    """Every file of a run folder, Hydra's own record (.hydra/) included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_sigterm_stops_with_a_resume_line_and_the_line_resumes(tmp_path):
    run_dir = tmp_path / "run dir"  # a space, so the printed command must be quoted
    args = ["binarize=classifier", "aug=2", "data.n_trials=300", "trainer.max_epochs=4",
            *COMMON, f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen([sys.executable, "-m", "bnn_edge.train", *args], cwd=ROOT,
                            env=os.environ.copy(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert last.exists(), "the first epoch never finished"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1]
    assert errors[0].startswith("error: interrupted by SIGTERM in epoch ")
    assert not (run_dir / "results.json").exists()
    command = shlex.split(errors[0].split("resume with: ", 1)[1])
    assert command[:3] == ["python", "-m", "bnn_edge.train"]
    assert command[-2:] == ["resume=true", f"hydra.run.dir={run_dir}"]

    resumed = subprocess.run([sys.executable, *command[1:]], cwd=ROOT, env=os.environ.copy(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming from" in resumed.stdout
    assert json.loads((run_dir / "results.json").read_text())["epochs"] == 4


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache_dir):
    """A finished tiny ECG run (binarize=classifier)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    train_tiny_run(run, "binarize=classifier", f"data.cache_dir={cache_dir}")
    return run


def test_resume_with_other_options_is_refused_before_anything_is_written(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "results.json").unlink()  # an interrupted run
    before = digest(run)
    proc = run_cli("bnn_edge.train", "model=eeg", "resume=true", f"hydra.run.dir={run}",
                   "data.subjects=2")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: resume=True is not allowed: expected the options of the "
                           f"run in {run}; it differs in ")
    assert "model.name='ecg' (now 'eeg')" in line
    assert digest(run) == before


def test_resume_of_a_finished_run_with_other_options_is_refused(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = digest(run)
    proc = run_cli("bnn_edge.train", "data.n_trials=40", "trainer.max_epochs=1", *COMMON,
                   "binarize=full", "resume=true", f"hydra.run.dir={run}")
    assert proc.returncode == 2, proc.stdout
    assert "binarize='classifier' (now 'full')" in proc.stderr
    assert "already finished" not in proc.stdout
    assert digest(run) == before
    same = run_cli("bnn_edge.train", "data.n_trials=40", "trainer.max_epochs=1", *COMMON,
                   "binarize=classifier", "resume=true", f"hydra.run.dir={run}",
                   f"data.cache_dir={tmp_path / 'other_cache'}")
    assert same.returncode == 0 and "already finished (resume=true)" in same.stdout


def test_a_moved_run_resumes_with_its_own_checkpoints(tmp_path, cache_dir):
    """The best checkpoint recorded in last.ckpt is the old folder's; the resumed run must
    test and report the one inside its own folder (the old folder is gone)."""
    old = tmp_path / "old"
    flat = ("model.lr=1e-12", f"data.cache_dir={cache_dir}")  # val/acc stays: no new best
    train_tiny_run(old, "binarize=classifier", *flat)
    (old / "results.json").unlink()  # interrupted after its first epoch
    new = tmp_path / "moved"
    shutil.move(old, new)
    results = train_tiny_run(new, "binarize=classifier", *flat, "trainer.max_epochs=2",
                             "resume=true")
    assert results["epochs"] == 2 and results["test_acc"] is not None
    assert results["best_checkpoint"].startswith(str(new / "checkpoints" / "best-"))
    stored = torch.load(new / "checkpoints" / "last.ckpt", weights_only=True)
    states = [v for k, v in stored["callbacks"].items() if k.startswith("RunCheckpoint")]
    assert states and all(str(old) not in json.dumps(s, default=str) for s in states)


@pytest.mark.parametrize("kind", ["empty", "garbage", "truncated", "foreign"])
def test_bad_checkpoints_for_training_are_one_line(kind, finished, tmp_path):
    ckpt = tmp_path / f"{kind}.ckpt"
    good = (finished / "checkpoints" / "last.ckpt").read_bytes()
    if kind == "empty":
        ckpt.write_bytes(b"")
    elif kind == "garbage":
        ckpt.write_bytes(b"PK\x03\x04 not really a zip")
    elif kind == "truncated":
        ckpt.write_bytes(good[: len(good) // 2])
    else:  # a checkpoint of another task
        state = torch.load(finished / "checkpoints" / "last.ckpt", weights_only=True)
        state["hyper_parameters"]["network"] = "eeg"
        torch.save(state, ckpt)
    run_dir = tmp_path / "run"
    proc = run_cli("bnn_edge.train", "data.n_trials=40", *COMMON, f"ckpt_path={ckpt}",
                   f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {ckpt}: ")
    if kind == "foreign":
        assert "a checkpoint of eeg binarize=classifier aug=1" in line
        assert "this run is ecg binarize=classifier aug=1" in line
    assert not run_dir.exists()


def test_resume_with_a_truncated_last_checkpoint_says_what_to_do(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "results.json").unlink()
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    before = digest(run)
    proc = run_cli("bnn_edge.train", "data.n_trials=40", "trainer.max_epochs=1", *COMMON,
                   "binarize=classifier", "resume=true", f"hydra.run.dir={run}")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {last}: not a bnn_edge checkpoint")
    assert line.endswith("; delete it to train this run from its start")
    # the run's own files are untouched (Hydra re-records the same options in .hydra/)
    ours = {k: v for k, v in digest(run).items() if not k.startswith(".hydra") and
            k != "train.log"}
    assert ours == {k: v for k, v in before.items() if not k.startswith(".hydra")}


def test_a_second_process_is_refused_while_the_first_trains_and_resumes_after_a_kill(tmp_path):
    """Two processes on one run folder: the second stops in one line naming the holder and
    touches nothing; after the holder is SIGKILLed, its lock is gone and a resume runs."""
    run_dir = tmp_path / "run"
    args = ["binarize=classifier", "data.n_trials=120", *COMMON, f"hydra.run.dir={run_dir}"]
    first = subprocess.Popen([sys.executable, "-m", "bnn_edge.train", *args,
                              "trainer.max_epochs=1000"], cwd=ROOT, env=os.environ.copy(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        last = run_dir / "checkpoints" / "last.ckpt"
        deadline = time.time() + 300
        while not last.exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.1)
        assert last.exists(), "the first epoch never finished"
        record = json.loads((run_dir / ".lock").read_text())
        assert record["pid"] == first.pid and "trainer.max_epochs=1000" in record["command"]
        hydra_record = digest(run_dir / ".hydra")
        config = (run_dir / "config.yaml").read_bytes()
        for extra in (["resume=true"], []):  # a resume, and a fresh run into the folder
            second = run_cli("bnn_edge.train", *args, "trainer.max_epochs=1000", *extra)
            assert second.returncode == 2, (extra, second.stderr[-2000:])
            (line,) = second.stderr.strip().splitlines()
            assert line.startswith(f"error: run folder {run_dir} is in use by pid {first.pid} "
                                   f"on {record['host']} (user {record['user']}) since "
                                   f"{record['since']}: "), line
            assert first.poll() is None  # the holder trains on
        assert digest(run_dir / ".hydra") == hydra_record
        assert (run_dir / "config.yaml").read_bytes() == config
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (run_dir / ".lock").exists()  # left by the killed holder, and no obstacle
    epoch = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    resumed = run_cli("bnn_edge.train", *args, "resume=true", f"trainer.max_epochs={epoch + 2}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming from" in resumed.stdout
    assert json.loads((run_dir / "results.json").read_text())["epochs"] == epoch + 2
    assert not (run_dir / ".lock").exists()  # a process that ends gives its lock back


def test_a_full_disk_stops_in_one_line_and_the_run_resumes(tmp_path):
    """The disk fills while epoch 1 writes a checkpoint (os.write raises ENOSPC half-way):
    one line naming the folder, no partial file, and a resume finishes the run."""
    run_dir = tmp_path / "run"
    args = ["binarize=classifier", "data.n_trials=120", "trainer.max_epochs=3", *COMMON,
            f"hydra.run.dir={run_dir}"]
    full = run_cli("tests.helpers.faults", "2", *args)  # epoch 0 writes best and last
    assert full.returncode == 2, full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    errors = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == full.stderr.strip().splitlines()[-1]
    assert errors[0].startswith(f"error: no space left on the disk of {run_dir} (writing "
                                f"checkpoints/")
    assert errors[0].endswith(f"resume=true hydra.run.dir={run_dir}")
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints  # no temporary file left
    for name in checkpoints:  # each whole: it loads, and holds epoch 0
        assert torch.load(run_dir / "checkpoints" / name, weights_only=True)["epoch"] == 0
    assert not (run_dir / "results.json").exists()

    resumed = run_cli("bnn_edge.train", *args, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming from" in resumed.stdout
    assert json.loads((run_dir / "results.json").read_text())["epochs"] == 3


def test_metrics_hold_each_epoch_once_after_a_sigkill_and_a_resume(tmp_path):
    """SIGKILL after epoch 1's validation row was written, before its checkpoint: the
    resume trains epoch 1 again, and its rows replace the killed run's."""
    run_dir = tmp_path / "run"
    args = ["binarize=classifier", "data.n_trials=120", "trainer.max_epochs=3", *COMMON,
            f"hydra.run.dir={run_dir}"]
    killed = run_cli("bnn_edge.train", *args, "+callbacks.kill.epoch=1",
                     "+callbacks.kill._target_=tests.helpers.faults.KillAt")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [r["epoch"] for r in read_metrics(run_dir) if r["val/acc"]] == ["0", "1"]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0

    resumed = run_cli("bnn_edge.train", *args, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = read_metrics(run_dir)
    stages = [(r["epoch"], next(k.split("/")[0] for k, v in r.items() if "/" in k and v))
              for r in rows]
    assert sorted(stages) == sorted({*stages})  # one row per (epoch, stage)
    assert sorted(stages) == [("0", "train"), ("0", "val"), ("1", "train"), ("1", "val"),
                              ("2", "train"), ("2", "val"), ("3", "test")]
    val = [(float(r["val/acc"]), float(r["val/acc_best"])) for r in rows if r["val/acc"]]
    # the best so far goes on across the resume (it restarted from the epoch-1 value)
    assert [best for _, best in val] == pytest.approx(
        [max(acc for acc, _ in val[: i + 1]) for i in range(len(val))])
