"""Bit errors end to end: the callback in training, the evaluate command, its outputs and errors."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import lightning as L
import pytest
import torch

from bnn_edge.errors import ConfigError
from bnn_edge.experiment.robustness import CSV_COLUMNS, evaluate
from bnn_edge.experiment.rundir import RunDir
from bnn_edge.experiment.training import train
from bnn_edge.hardware.faults import accuracy
from bnn_edge.lit.callbacks import RRAMBitErrors
from bnn_edge.lit.module import BNNClassifier
from tests.conftest import run_cli, stderr_lines
from tests.helpers.runs import compose_app


def run_data(ckpt):
    """The data module of a checkpoint's run, set up."""
    datamodule = RunDir.of_checkpoint(ckpt).datamodule()
    datamodule.setup("fit")
    return datamodule




def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir) -> dict[str, Path]:
    """Two tiny ECG runs: binarized classifier (bit-error callback, error-aware training) and
    real weights."""
    out = {}
    common = ["model=ecg", "aug=1", "data.n_trials=60", "trainer.max_epochs=1",
              f"data.cache_dir={cache_dir}", "callbacks.rich_progress_bar=null",
              "trainer.enable_model_summary=false"]
    extra = {"classifier": ["callbacks=bit_errors", "bit_errors.ber=[0,0.01,0.5]",
                            "bit_errors.draws=2", "bit_errors.train_ber=0.05"],
             "none": []}
    for binarize, overrides in extra.items():
        run_dir = tmp_path_factory.mktemp(f"run_{binarize}")
        cfg = compose_app("train", *common, f"binarize={binarize}",
                             f"paths.output_dir={run_dir}", *overrides)
        train(cfg, echo=lambda *_: None)
        out[binarize] = run_dir
    return out


def test_callback_logs_sweeps_during_training(runs):
    rows = read_csv(runs["classifier"] / "metrics.csv")
    val = [r for r in rows if r.get("ber/acc@0.01")]
    test = [r for r in rows if r.get("ber/test_acc@0.01")]
    assert len(val) == 1 and len(test) == 1  # one epoch, one test
    sizes = json.loads((runs["classifier"] / "data.json").read_text())["split_sizes"]
    for prefix, row, n in (("ber/acc", val[0], sizes["val"]),
                           ("ber/test_acc", test[0], sizes["test"])):
        for rate in ("0", "0.01", "0.5"):
            # the mean of 2 draws of correct/n: a whole number of half-samples
            halves = 2 * n * float(row[f"{prefix}@{rate}"])
            assert abs(halves - round(halves)) < 1e-4 and 0 <= round(halves) <= 2 * n
            assert float(row[f"{prefix}_std@{rate}"]) >= 0
        assert float(row[f"{prefix}_std@0"]) == 0  # rate 0 is one deterministic pass
    results = json.loads((runs["classifier"] / "results.json").read_text())
    assert float(test[0]["ber/test_acc@0"]) == pytest.approx(results["test_acc"], abs=1e-6)
    config = (runs["classifier"] / "config.yaml").read_text()
    assert "train_ber: 0.05" in config and "ErrorAwareTraining" in config


def test_callback_gives_the_weights_back(runs):
    ckpt = runs["classifier"] / "checkpoints" / "last.ckpt"
    module = BNNClassifier.load_from_checkpoint(ckpt, weights_only=True)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    callback = RRAMBitErrors(ber=[0, 0.1, 0.5], draws=3)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback])
    (metrics,) = trainer.validate(module, datamodule=run_data(ckpt), verbose=False)
    assert {"ber/acc@0", "ber/acc@0.1", "ber/acc@0.5", "ber/acc_std@0.5"} <= metrics.keys()
    assert [p.draws for p in callback.results["val"]] == [1, 3, 3]
    assert metrics["ber/acc@0"] == pytest.approx(metrics["val/acc"], abs=1e-6)
    after = module.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_callback_sweeps_any_fault_model(runs):
    ckpt = runs["classifier"] / "checkpoints" / "last.ckpt"
    module = BNNClassifier.load_from_checkpoint(ckpt, weights_only=True)
    callback = RRAMBitErrors(fault_model={"name": "array", "columns": [0, 2]}, draws=2)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback])
    (metrics,) = trainer.validate(module, datamodule=run_data(ckpt), verbose=False)
    assert {"ber/acc@columns=0", "ber/acc@columns=2", "ber/acc_std@columns=2"} <= metrics.keys()
    assert [p.draws for p in callback.results["val"]] == [1, 2]
    assert callback.results["val"][1].flipped > 0
    assert metrics["ber/acc@columns=0"] == pytest.approx(metrics["val/acc"], abs=1e-6)


def test_evaluate_command(runs, tmp_path):
    ckpts = [runs["classifier"] / "checkpoints" / "last.ckpt", runs["none"]]
    digests = {p: digest(p) for p in runs["none"].glob("checkpoints/*.ckpt")}
    out = tmp_path / "eval"
    proc = run_cli("bnn_edge.evaluate", f"ckpt_path=[{ckpts[0]},{ckpts[1]}]",
                   "bit_errors.ber=[0,1e-3,0.5]", "bit_errors.draws=3",
                   "bit_errors.real_format=[none,int8]", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("variant"))
    assert lines[head].split() == ["variant", "ber", "draws", "acc", "mean", "acc", "std",
                                   "flipped"]
    table = lines[head + 1: head + 10]
    # the classifier run with none and int8, the real run with int8 only (none: nothing to fault)
    assert [r.split("  ")[0] for r in table[::3]] == [
        "ecg classifier aug1", "ecg classifier aug1 int8", "ecg none aug1 int8"]
    assert lines[-1] == f"Wrote {out / 'ber_curve.csv'} and {out / 'ber_curve.png'}"

    rows = read_csv(out / "ber_curve.csv")
    assert list(rows[0].keys()) == list(CSV_COLUMNS) and len(rows) == 9
    assert [float(r["ber"]) for r in rows] == [0, 1e-3, 0.5] * 3
    assert [int(r["draws"]) for r in rows] == [1, 3, 3] * 3
    for r in rows:
        assert r["split"] == "test" and int(r["n_samples"]) == 12
        # each draw's accuracy is a count of the 12 test trials; the mean lies between them
        for key in ("acc_min", "acc_max"):
            assert abs(12 * float(r[key]) - round(12 * float(r[key]))) < 1e-4
        assert float(r["acc_min"]) <= float(r["acc_mean"]) <= float(r["acc_max"])
    # rate 0 without real faults is the run's own test accuracy (one epoch: last = best)
    clean = json.loads((runs["classifier"] / "results.json").read_text())["test_acc"]
    assert float(rows[0]["acc_mean"]) == pytest.approx(clean, abs=1e-6)
    half = [r for r in rows if float(r["ber"]) == 0.5]
    assert all(abs(float(r["flipped_fraction"]) - 0.5) < 0.01 for r in half)

    import matplotlib.image

    image = matplotlib.image.imread(out / "ber_curve.png")
    assert image.shape[:2] == (600, 1200)
    assert {p: digest(p) for p in digests} == digests  # checkpoints untouched


def test_rate_zero_is_the_clean_accuracy(runs, tmp_path):
    ckpt = runs["classifier"] / "checkpoints" / "last.ckpt"
    cfg = compose_app("evaluate", f"ckpt_path={ckpt}", "bit_errors.ber=[0,1e-2]",
                         "bit_errors.draws=2", "split=val", f"paths.output_dir={tmp_path}")
    (curve,) = evaluate(cfg, echo=lambda *_: None)
    module = BNNClassifier.load_from_checkpoint(ckpt, weights_only=True)
    clean = accuracy(module, run_data(ckpt).val_dataloader())
    assert curve.points[0].mean == clean and curve.points[0].draws == 1
    assert curve.split == "val" and [p.draws for p in curve.points] == [1, 2]


def test_device_model_rates(runs, tmp_path):
    cfg = compose_app("evaluate", f"ckpt_path={runs['classifier']}", "bit_errors.cell=2T2R",
                         "bit_errors.cycles=[1e6,7e8]", "bit_errors.draws=2",
                         f"paths.output_dir={tmp_path}")
    lines = []
    (curve,) = evaluate(cfg, echo=lines.append)
    assert [p.ber for p in curve.points] == pytest.approx([6.21e-6, 2.61e-5], rel=0.01)
    table = next(t for t in lines if t.startswith("variant")).splitlines()
    assert table[0].split()[:4] == ["variant", "ber", "cell", "cycles"]
    assert table[1].split()[3:6] == ["6.21e-06", "2T2R", "1e+06"]
    rows = read_csv(tmp_path / "ber_curve.csv")
    assert [(r["cell"], float(r["cycles"])) for r in rows] == [("2T2R", 1e6), ("2T2R", 7e8)]


@pytest.mark.parametrize(("overrides", "message"), [
    ([], "ckpt_path=None is not allowed"),
    (["ckpt_path=/no/such.ckpt"], "ckpt_path='/no/such.ckpt' is not allowed"),
    (["bit_errors.ber=[0,2]"], "bit_errors.ber=[0, 2] is not allowed"),
    (["bit_errors.real_format=fp16"], "bit_errors.real_format='fp16' is not allowed"),
    (["bit_errors.cell=3T3R"], "bit_errors.cell='3T3R' is not allowed"),
    (["bit_errors.cycles=0"], "bit_errors.cycles=0 is not allowed"),
    (["bit_errors.draws=0"], "bit_errors.draws=0 is not allowed"),
    (["bit_errors.device.sigma=-1"], "bit_errors.device.sigma=-1 is not allowed"),
    (["split=train"], "split='train' is not allowed"),
    (["device=tpu"], "device='tpu' is not allowed"),
    (["batch_size=0"], "batch_size=0 is not allowed"),
    (["REAL", "bit_errors.real_format=none"], "bit_errors.real_format='none' is not allowed"),
    (["fault_model=stuck", "bit_errors.fault_model.fraction=[0,2]"],
     "bit_errors.fault_model.fraction=2 is not allowed: expected a number in [0, 1]"),
    (["fault_model=array", "bit_errors.fault_model.spares=-1"],
     "bit_errors.fault_model.spares=-1 is not allowed: expected an integer >= 0"),
    (["fault_model=stuck", "bit_errors.cell=1T1R"], "bit_errors.cell='1T1R' is not allowed"),
    (["fault_model=asymmetric", "bit_errors.fault_model.ratio=[1,3]"],
     "bit_errors.ber=[0, 0.0001, 0.001, 0.01, 0.1] is not allowed: expected one rate"),
])
def test_bad_options(runs, tmp_path, overrides, message):
    if "REAL" in overrides:
        overrides = [f"ckpt_path={runs['none']}", *overrides[1:]]
    elif not overrides or not overrides[0].startswith("ckpt_path"):
        overrides = [*([f"ckpt_path={runs['classifier']}"] if overrides else []), *overrides]
    cfg = compose_app("evaluate", *overrides, f"paths.output_dir={tmp_path / 'out'}")
    with pytest.raises(ConfigError) as info:
        evaluate(cfg, echo=lambda *_: None)
    assert str(info.value).startswith(message)
    assert not (tmp_path / "out").exists()


def test_cli_errors_are_one_line_and_leave_nothing(runs, tmp_path):
    out = tmp_path / "eval"
    proc = run_cli("bnn_edge.evaluate", f"ckpt_path={runs['none']}", f"hydra.run.dir={out}")
    assert proc.returncode == 2
    err = stderr_lines(proc)
    assert err == ["error: bit_errors.real_format='none' is not allowed: expected fp32 or int8 "
                   "for a model without binary layers (binarize=none)"]
    assert not out.exists()


def test_a_bad_fault_model_is_one_line_and_leaves_nothing(runs, tmp_path):
    for overrides, message in [
        (["fault_model=stuk"], "error: fault_model='stuk' is not allowed: expected one of "
                               "array, asymmetric, bitflip, retention, sec, stuck"),
        (["fault_model=retention", "bit_errors.fault_model.hours=[0,-1]"],
         "error: bit_errors.fault_model.hours=-1 is not allowed: expected a number >= 0"),
    ]:
        out = tmp_path / "eval"
        proc = run_cli("bnn_edge.evaluate", f"ckpt_path={runs['classifier']}", *overrides,
                       f"hydra.run.dir={out}")
        assert proc.returncode == 2
        assert stderr_lines(proc) == [message]
        assert not out.exists()


def test_error_aware_training_of_a_real_model_fails_before_data(tmp_path):
    empty = tmp_path / "cache"
    empty.mkdir()
    cfg = compose_app("train", "binarize=none", "bit_errors.train_ber=0.01",
                         f"data.cache_dir={empty}", f"paths.output_dir={tmp_path / 'run'}")
    with pytest.raises(ConfigError, match=r"^bit_errors.train_ber=0.01 is not allowed"):
        train(cfg, echo=lambda *_: None)
    assert list(empty.iterdir()) == []
