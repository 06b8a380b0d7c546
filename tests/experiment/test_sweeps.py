"""Experiments at scale: cv=all, multiruns with launchers and failures, W&B offline, DDP."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from bnn_edge.experiment.cv import cross_validate
from bnn_edge.experiment.report import make_report
from bnn_edge.experiment.training import train
from tests.conftest import run_cli
from tests.helpers.runs import compose_app

TINY = ["data.n_trials=40", "trainer.max_epochs=1", "callbacks.rich_progress_bar=null",
        "trainer.enable_model_summary=false"]


def test_cv_all_trains_every_fold_and_aggregates(tmp_path):
    cfg = compose_app("train", "cv=all", "cv.repeats=2", "data.folds=2", *TINY, "test=true",
                        f"paths.output_dir={tmp_path}")
    cv = cross_validate(cfg, train, echo=lambda *_: None)
    assert [(r["seed"], r["fold"]) for r in cv["runs"]] == [(42, 0), (42, 1), (43, 0), (43, 1)]
    saved = json.loads((tmp_path / "cv.json").read_text())
    assert saved["folds"] == 2 and saved["repeats"] == 2 and len(saved["runs"]) == 4
    per_fold = [json.loads((tmp_path / r["run"] / "results.json").read_text())
                for r in saved["runs"]]
    vals = [r["val_acc"] for r in per_fold]
    assert saved["val_acc"]["mean"] == statistics.fmean(vals)
    assert saved["val_acc"]["std"] == statistics.stdev(vals) and saved["val_acc"]["n"] == 4
    # each fold is a run of its own: its own checkpoints, its own data split and seed
    for r, name in zip(per_fold, ("repeat0_fold0", "repeat0_fold1", "repeat1_fold0",
                                  "repeat1_fold1"), strict=True):
        assert (tmp_path / name / "checkpoints" / "last.ckpt").is_file()
        assert r["output_dir"] == str(tmp_path / name)
    data = [json.loads((tmp_path / n / "data.json").read_text()) for n in
            ("repeat0_fold0", "repeat1_fold0")]
    assert data[0]["seed"] == 42 and data[1]["seed"] == 43
    assert not (tmp_path / "checkpoints").exists()  # nothing trained at the top level
    # the report sees four runs of one group, not the cv folder itself
    report = make_report(tmp_path)
    assert [(g.binarize, len(g.runs)) for g in report["groups"]] == [("classifier", 4)]
    assert report["not_averaged"] == []


def test_multirun_goes_on_after_a_failed_job_and_reports(tmp_path):
    # trainer.precision=7 passes the checks made before the sweep; Lightning rejects it
    proc = run_cli("bnn_edge.train", "-m", "binarize=none,full", "trainer.precision=32-true,7",
                   *TINY, env={"BNN_EDGE_LOG_DIR": str(tmp_path)})
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    results = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/results.json")}
    assert len(results) == 4
    failed = {k for k, v in results.items() if v.get("status") == "failed"}
    assert failed == {"1_ecg_none_aug1_fold0", "3_ecg_full_aug1_fold0"}
    assert results["1_ecg_none_aug1_fold0"]["error"].startswith(
        "BnnEdgeError: trainer: ValueError: Precision 7")
    # the sweep ends with one line naming what failed and how to redo it, exit status 1
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: sweep {sweep}: 2 of 4 jobs did not finish "
                           f"(1_ecg_none_aug1_fold0: failed, BnnEdgeError: trainer: "), last
    assert last.endswith(f"and 1 more); 2 finished; redo the others with: python -m "
                         f"bnn_edge.train -m binarize=none,full trainer.precision=32-true,7 "
                         f"{' '.join(TINY)} resume=true hydra.sweep.dir={sweep}"), last
    report = run_cli("bnn_edge.report", str(sweep))
    assert report.returncode == 0
    assert "2 finished runs in 2 groups" in report.stdout
    assert report.stdout.count("not averaged (failed)") == 2
    assert (sweep / "table3.md").is_file() and (sweep / "fig7_ecg.png").is_file()


def test_parallel_launcher_runs_each_job_in_a_process_of_its_own(tmp_path):
    proc = run_cli("bnn_edge.train", "-m", "hydra/launcher=parallel", "binarize=none,classifier",
                   *TINY, env={"BNN_EDGE_LOG_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = list((tmp_path / "train" / "multiruns").glob("*/*/results.json"))
    assert len(done) == 2
    assert {json.loads(p.read_text())["binarize"] for p in done} == {"none", "classifier"}
    assert "Launching 2 jobs, 2 at a time, each in its own process" in proc.stdout
    assert f"Sweep: 2 of 2 jobs finished in {done[0].parent.parent}" in proc.stdout
    # no joblib/loky: no worker pool, no resource tracker and its KeyError lines
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output and "KeyError" not in output and "loky" not in output


def test_submitit_local_launcher(tmp_path):
    proc = run_cli("bnn_edge.train", "-m", "hydra/launcher=local", "binarize=full", *TINY,
                   env={"BNN_EDGE_LOG_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    (result,) = (tmp_path / "train" / "multiruns").glob("*/*/results.json")
    assert json.loads(result.read_text())["binarize"] == "full"


def wait_for_records(path, wanted, seconds: float = 90.0) -> bytes:
    """The bytes of a W&B record file once they hold every wanted string: wandb's service
    process writes them asynchronously, which can lag on a loaded machine."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        blob = path.read_bytes()
        if all(text in blob for text in wanted) or time.monotonic() > deadline:
            return blob
        time.sleep(0.5)


def test_wandb_logger_runs_offline_without_a_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no wandb settings
    cfg = compose_app("train", "logger=wandb", *TINY, f"paths.output_dir={tmp_path / 'run'}")
    results = train(cfg, echo=lambda *_: None)
    assert results["val_acc"] is not None
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    (record,) = offline.glob("*.wandb")
    wanted = (b"val/acc", b"train/loss", b"binarize=classifier", b"model=ecg", b"fold=0",
              b"source=synthetic")
    blob = wait_for_records(record, wanted)
    for text in wanted:
        assert text in blob, text
    assert (tmp_path / "run" / "metrics.csv").is_file()  # CSV is kept beside W&B


def test_ddp_on_cpu_with_two_processes(tmp_path):
    run_dir = tmp_path / "ddp"
    proc = run_cli("bnn_edge.train", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                   "data.n_trials=40", "trainer.max_epochs=2", "callbacks=bit_errors",
                   "callbacks.rich_progress_bar=null", "bit_errors.ber=[0,0.2]",
                   "bit_errors.draws=2", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("Done: ecg") == 1  # rank 0 reports once
    results = json.loads((run_dir / "results.json").read_text())
    assert results["epochs"] == 2 and results["global_rank"] == 0
    # each rank trained on its half of the 25 training trials: 13 a rank, one batch each
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {row["step"] for row in rows} >= {"0", "1"}
    assert Path(run_dir / "checkpoints" / "last.ckpt").is_file()
    # the fault-free point of the bit-error sweep pools both ranks' counts, like test/acc
    test_row = next(row for row in rows if row["test/acc"])
    assert float(test_row["ber/test_acc@0"]) == pytest.approx(float(test_row["test/acc"]))


def test_ddp_on_cpu_shards_the_on_device_training_split(tmp_path):
    run_dir = tmp_path / "ddp"
    proc = run_cli("bnn_edge.train", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                   "data.n_trials=40", "data.batch_size=4", "data.on_device=true",
                   "trainer.max_epochs=1", "callbacks.rich_progress_bar=null",
                   f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # 24 training trials (40 less 8 test, 8 val): 12 a rank, 3 batches of 4 (unsharded: 6);
    # the epoch's row is logged at its last step
    (train_row,) = [row for row in rows if row["train/loss"]]
    assert int(train_row["step"]) == 3 - 1
    results = json.loads((run_dir / "results.json").read_text())
    assert 0 <= results["test_acc"] <= 1


def test_report_uploads_to_wandb_offline(tmp_path, monkeypatch):
    from bnn_edge.cli.report import main as report_main
    from tests.helpers.runs import fake_run

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for fold, acc in enumerate((0.9, 0.8)):
        fake_run(tmp_path / "runs", f"r{fold}", binarize="full", fold=fold, val=acc)
    assert report_main([str(tmp_path / "runs"), "wandb=true"]) == 0
    (offline,) = (tmp_path / "runs" / "wandb").glob("offline-run-*")
    (record,) = offline.glob("*.wandb")
    blob = wait_for_records(record, (b"table3", b"fig7_ecg"))
    assert b"table3" in blob and b"fig7_ecg" in blob
