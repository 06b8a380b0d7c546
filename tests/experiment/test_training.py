"""The training entry point end to end: run directory, variants, errors, learning, resume."""

from __future__ import annotations

import json
import re

import pytest
import torch

from bnn_edge.cli.app import app_groups, check_cli_choices
from bnn_edge.errors import ConfigError
from bnn_edge.experiment.training import train
from bnn_edge.lit.module import BNNClassifier
from bnn_edge.nn import binary_layers
from tests.conftest import run_cli, stderr_lines
from tests.helpers.runs import compose_app, read_metrics, train_tiny_run

EXPECTED_BINARY = {"none": 0, "classifier": 2, "full": 7}






@pytest.mark.parametrize("binarize", ["none", "classifier", "full"])
def test_entry_point_writes_the_run_directory(binarize, tmp_path):
    run_dir = tmp_path / f"run_{binarize}"
    proc = run_cli("bnn_edge.train", "model=ecg", f"binarize={binarize}", "aug=1",
                   "data.n_trials=60", "trainer.max_epochs=2", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert any(line.startswith("Data: synthetic 12-lead ECGs") for line in lines)
    assert lines[-1].startswith(f"Done: ecg binarize={binarize} aug=1 fold=0")
    assert lines[-1].endswith(str(run_dir))

    for name in ["config.yaml", "data.json", "metrics.csv", "results.json",
                 "checkpoints/last.ckpt"]:
        assert (run_dir / name).is_file(), name
    assert len(list((run_dir / "checkpoints").glob("best-*.ckpt"))) == 1
    assert f"binarize: {binarize}" in (run_dir / "config.yaml").read_text()
    assert "${" not in (run_dir / "config.yaml").read_text()  # resolved

    data = json.loads((run_dir / "data.json").read_text())
    assert data["source"] == "synthetic" and data["n_trials"] == 60
    assert data["input_shape"] == [12, 750] and data["class_counts"] == {"0": 30, "1": 30}
    assert data["fold"] == 0 and data["folds"] == 5

    epochs = {row["epoch"] for row in read_metrics(run_dir) if row.get("val/acc")}
    assert epochs == {"0", "1"}
    results = json.loads((run_dir / "results.json").read_text())
    assert results["epochs"] == 2 and 0 <= results["test_acc"] <= 1
    # accuracy by reversal type over the test split: counts add up, the mean is test/acc
    by = results["test_acc_by_category"]
    assert list(by)[0] == "correct" and set(by) <= {"correct", *data["swaps"]}
    assert sum(v["n"] for v in by.values()) == data["split_sizes"]["test"]
    hits = sum(round(v["acc"] * v["n"]) for v in by.values())
    assert hits / data["split_sizes"]["test"] == pytest.approx(results["test_acc"], abs=1e-6)
    assert lines[-2].startswith("Test accuracy by reversal: correct ")

    # checkpoints load with weights_only=True and rebuild the same variant
    module = BNNClassifier.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt",
                                                weights_only=True)
    layers = binary_layers(module.net)
    assert len(layers) == EXPECTED_BINARY[binarize]
    for _, layer in layers:
        assert set(layer.binary_weight.unique().tolist()) <= {-1.0, 1.0}
        assert layer.weight.abs().max() <= 1.0  # clipped after every step


@pytest.mark.parametrize(("args", "option"), [
    (["model=foo"], "model='foo'"),
    (["bit_errors=foo"], "bit_errors='foo'"),
    (["trainer=cpu,tpu", "-m"], "trainer='tpu'"),
    (["binarize=half"], "binarize='half'"),
    (["aug=0"], "aug=0"),
    (["aug=1.5"], "aug=1.5"),
    (["data.fold=9"], "data.fold=9"),
])
def test_bad_options_fail_before_any_data(args, option, cache_dir, tmp_path):
    empty_cache = tmp_path / "cache"
    empty_cache.mkdir()
    run_dir = tmp_path / "run"
    proc = run_cli("bnn_edge.train", *args, f"hydra.run.dir={run_dir}",
                   env={"BNN_EDGE_CACHE": str(empty_cache)})
    assert proc.returncode == 2
    err = stderr_lines(proc)
    assert len(err) == 1 and err[0].startswith(f"error: {option} is not allowed"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(empty_cache.iterdir()) == []  # no data generated
    assert not run_dir.exists()  # no empty run directory left behind


def test_every_config_group_choice_is_checked_before_hydra():
    """Each group of train.yaml's defaults is checked; null and sweep syntax are let through."""
    groups = app_groups("train")
    assert set(groups) == {"model", "data", "trainer", "logger", "callbacks", "cv",
                           "bit_errors", "fault_model", "paths", "experiment", "debug"}
    check_cli_choices(["logger=wandb", "experiment=null", "cv=single,all", "data=range(1)",
                       "hydra/launcher=joblib", "model.lr=0.1"], groups)
    for arg, message in [("logger=tensorboard", "logger='tensorboard' is not allowed: "
                                                "expected one of csv, none, wandb"),
                         ("+experiment=paper_eg", "experiment='paper_eg' is not allowed"),
                         ("debug=fast,slow", "debug='slow' is not allowed"),
                         ("fault_model=stuk", "fault_model='stuk' is not allowed: expected "
                                              "one of array, asymmetric, bitflip, retention, "
                                              "sec, stuck")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            check_cli_choices([arg], groups)
    assert app_groups("memory") == ("model",)


def test_lightning_rejection_is_one_line(tmp_path):
    proc = run_cli("bnn_edge.train", "trainer.precision=7", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    err = stderr_lines(proc)
    assert len(err) == 1 and err[0].startswith("error: trainer: ValueError: Precision 7")


def test_training_beats_chance_on_learnable_data(tmp_path):
    """400 synthetic trials, LA-RA reversals only: the real-weight net clearly learns them."""
    cfg = compose_app("train", "model=ecg", "binarize=none", "aug=1", "data.n_trials=400",
                      "data.swaps=[LA-RA]", "trainer.max_epochs=4",
                      "callbacks.rich_progress_bar=null", f"paths.output_dir={tmp_path}",
                      "trainer.enable_model_summary=false")
    results = train(cfg, echo=lambda *_: None)
    assert results["test_acc"] > 0.8  # chance is 0.5 (balanced classes)
    assert results["val_acc_best"] > 0.8


def test_resume_from_last_checkpoint(tmp_path):
    common = ["model=ecg", "binarize=classifier", "data.n_trials=40",
              "callbacks.rich_progress_bar=null", f"paths.output_dir={tmp_path}",
              "trainer.enable_model_summary=false"]
    train(compose_app("train", *common, "trainer.max_epochs=1", "test=false"), echo=lambda *_: None)
    first = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["epoch"] == 0
    results = train(compose_app("train", *common, "trainer.max_epochs=2", "ckpt_path=last"),
                    echo=lambda *_: None)
    assert results["epochs"] == 2
    resumed = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == 2 * first["global_step"]  # one more epoch, not two
    epochs = {row["epoch"] for row in read_metrics(tmp_path) if row.get("val/acc")}
    assert epochs == {"0", "1"}


def test_last_checkpoint_follows_every_epoch_when_val_acc_stalls(tmp_path):
    """last.ckpt is the latest epoch even when val/acc never improves after epoch 0.

    (Lightning 2.6's ModelCheckpoint(save_last=True) only rewrites last.ckpt along with a
    new best, so an interrupted run would resume from its best epoch, not its last.)
    """
    common = ["model=ecg", "binarize=classifier", "data.n_trials=40",
              "callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=min",
              "callbacks.rich_progress_bar=null", f"paths.output_dir={tmp_path}",
              "trainer.enable_model_summary=false", "test=false"]
    train(compose_app("train", *common, "trainer.max_epochs=3"), echo=lambda *_: None)
    checkpoints = tmp_path / "checkpoints"
    (best,) = checkpoints.glob("best-*.ckpt")
    assert best.name.startswith("best-epoch000")  # the monitored value never improves
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 2
    train(compose_app("train", *common, "trainer.max_epochs=4", "ckpt_path=last"),
          echo=lambda *_: None)
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 3
    assert sorted(p.name for p in checkpoints.iterdir()) == [best.name, "last.ckpt"]


@pytest.mark.slow
def test_the_readme_command(tmp_path):
    """Exactly the README's first command (default sizes), as `make run` runs it."""
    proc = run_cli("bnn_edge.train", "model=ecg", "binarize=classifier", "aug=7",
                   f"hydra.run.dir={tmp_path / 'run'}", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["epochs"] == 10 and results["test_acc"] > 0.85


def test_no_test_split_trains_and_says_so(tmp_path):
    """data.test_fraction=0: no test split, no test metrics, and the summary line says so."""
    run_dir = tmp_path / "run"
    proc = run_cli("bnn_edge.train", "data.n_trials=40", "trainer.max_epochs=1",
                   "data.test_fraction=0", "callbacks.rich_progress_bar=null",
                   f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert "| test/acc n/a (no test split: data.test_fraction=0) |" in last
    results = json.loads((run_dir / "results.json").read_text())
    assert results["test_acc"] is None and results["test_split"] is False
    assert json.loads((run_dir / "data.json").read_text())["split_sizes"]["test"] == 0


def test_results_record_per_class_accuracy_and_the_code_version(tmp_path):
    """The last-epoch model's accuracy per class and per reversal on the validation fold
    (counts add up to the fold, the weighted mean is val/acc), and the code that ran."""
    results = train_tiny_run(tmp_path / "run", "data.test_fraction=0")
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    n_val = data["split_sizes"]["val"]
    for key, names in (("val_acc_by_class", {"0", "1"}),
                       ("val_acc_by_category", {"correct", *data["swaps"]})):
        by = results[key]
        assert set(by) <= names and sum(v["n"] for v in by.values()) == n_val
        hits = sum(round(v["acc"] * v["n"]) for v in by.values())
        assert hits / n_val == pytest.approx(results["val_acc"], abs=1e-6)
    assert list(results["val_acc_by_class"]) == sorted(results["val_acc_by_class"])
    assert results["code_version"].startswith("0.1.0")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["val_acc_by_class"] == results["val_acc_by_class"]


def test_a_limited_run_reports_each_category_over_the_trials_of_its_metric(tmp_path):
    """debug=fast reported test/acc over 2 batches but the per-reversal line over every test
    trial (51 % against 60.94 %): the categories now count the trials the metric counts."""
    results = train_tiny_run(tmp_path / "run", "data.batch_size=2",
                             "+trainer.limit_val_batches=2", "+trainer.limit_test_batches=3")
    sizes = json.loads((tmp_path / "run" / "data.json").read_text())["split_sizes"]
    assert sizes["val"] > 4 and sizes["test"] > 6
    for key, metric, n in (("val_acc_by_class", "val_acc", 4),
                           ("val_acc_by_category", "val_acc", 4),
                           ("test_acc_by_category", "test_acc", 6)):
        by = results[key]
        assert sum(v["n"] for v in by.values()) == n, key
        hits = sum(round(v["acc"] * v["n"]) for v in by.values())
        assert hits / n == pytest.approx(results[metric], abs=1e-6), key
