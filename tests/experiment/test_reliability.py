"""Faults: a training killed mid-epoch resumes; an interrupted sweep skips finished jobs;
the same seed gives the same numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bnn_edge.experiment.training import train
from tests.conftest import ROOT, run_cli
from tests.helpers.runs import compose_app, read_metrics


@pytest.mark.slow  # the default suite has it in test_interrupts (SIGKILL, resume, metrics)
def test_sigkill_mid_epoch_then_resume_finishes_all_epochs(tmp_path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "bnn_edge.train", "binarize=classifier", "aug=2",
            "data.n_trials=300", "trainer.max_epochs=4", "callbacks.rich_progress_bar=null",
            f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(args, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert last.exists(), "the first epoch never finished"
    time.sleep(0.5)  # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "results.json").exists()

    resumed = run_cli("bnn_edge.train", *args[3:], "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming from" in resumed.stdout
    results = json.loads((run_dir / "results.json").read_text())
    assert results["epochs"] == 4
    rows = read_metrics(run_dir)
    epochs = [int(r["epoch"]) for r in rows if r.get("val/acc")]
    assert epochs == [0, 1, 2, 3]  # each once, however the kill fell
    assert [int(r["epoch"]) for r in rows if r.get("train/loss")] == [0, 1, 2, 3]

    # a finished run is not trained again
    again = run_cli("bnn_edge.train", *args[3:], "resume=true")
    assert again.returncode == 0 and "already finished (resume=true)" in again.stdout


def test_interrupted_sweep_resumes_without_redoing_finished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    common = ["-m", "binarize=none,full", "data.n_trials=40", "trainer.max_epochs=1",
              "callbacks.rich_progress_bar=null", f"hydra.sweep.dir={sweep}"]
    first = run_cli("bnn_edge.train", *common)
    assert first.returncode == 0
    done = sweep / "0_ecg_none_aug1_fold0" / "results.json"
    stamp = done.stat().st_mtime_ns
    # the second job "was interrupted": no results, a checkpoint from its first epoch
    (sweep / "1_ecg_full_aug1_fold0" / "results.json").unlink()
    second = run_cli("bnn_edge.train", *common, "resume=true")
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.count("already finished") == 1
    assert done.stat().st_mtime_ns == stamp  # untouched
    assert json.loads((sweep / "1_ecg_full_aug1_fold0" / "results.json").read_text())[
        "val_acc"] is not None


def test_same_seed_same_numbers_on_cpu(tmp_path):
    common = ["binarize=full", "data.n_trials=60", "trainer.max_epochs=2",
              "callbacks.rich_progress_bar=null", "trainer.enable_model_summary=false"]
    a = train(compose_app("train", *common, f"paths.output_dir={tmp_path / 'a'}"),
              echo=lambda *_: None)
    b = train(compose_app("train", *common, f"paths.output_dir={tmp_path / 'b'}"),
              echo=lambda *_: None)
    for key in ("val_acc", "val_acc_best", "test_acc", "test_loss"):
        assert a[key] == b[key], key
    rows = read_metrics(tmp_path / "a")
    assert rows == read_metrics(tmp_path / "b")
    train(compose_app("train", *common, "seed=7", f"paths.output_dir={tmp_path / 'c'}"),
          echo=lambda *_: None)
    assert read_metrics(tmp_path / "c") != rows
