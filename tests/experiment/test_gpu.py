"""Runs on a CUDA device: train() for every variant, CPU loading, the bit-error table, repeats."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from bnn_edge.experiment.robustness import evaluate
from bnn_edge.experiment.rundir import RunDir, load_module, read_checkpoint
from bnn_edge.hardware.faults.sweep import ieee_float32
from bnn_edge.nn import binary_layers
from tests.helpers.runs import compose_app, read_metrics, train_tiny_run

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

VARIANTS = ("none", "classifier", "full")
PRECISIONS = ("32-true", "bf16-mixed")


@pytest.fixture(scope="module")
def cuda_runs(tmp_path_factory, cache_dir) -> dict[tuple[str, str], tuple]:
    """Tiny ECG runs trained with trainer=gpu: every variant, both precisions (bf16 on device)."""
    runs = {}
    for binarize in VARIANTS:
        for precision in PRECISIONS:
            run = tmp_path_factory.mktemp(f"cuda_{binarize}_{precision}")
            results = train_tiny_run(run, "trainer=gpu", f"binarize={binarize}",
                                     f"trainer.precision={precision}",
                                     f"data.on_device={precision == 'bf16-mixed'}".lower(),
                                     "data.n_trials=60", f"data.cache_dir={cache_dir}")
            runs[binarize, precision] = run, results
    return runs


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory, cache_dir):
    """The same kind of run trained on the CPU."""
    run = tmp_path_factory.mktemp("cpu_classifier")
    train_tiny_run(run, "binarize=classifier", "trainer=cpu", "data.n_trials=60",
                   f"data.cache_dir={cache_dir}")
    return run


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("binarize", VARIANTS)
def test_every_variant_trains_on_cuda(cuda_runs, binarize, precision):
    run, results = cuda_runs[binarize, precision]
    assert results["epochs"] == 1 and 0 <= results["test_acc"] <= 1
    (row,) = [r for r in read_metrics(run) if r.get("train/loss")]
    assert math.isfinite(float(row["train/loss"]))
    config = (run / "config.yaml").read_text()
    assert "accelerator: gpu" in config and f"precision: {precision}" in config
    data = json.loads((run / "data.json").read_text())
    assert data["on_device"] is (precision == "bf16-mixed")


@pytest.mark.parametrize("binarize", VARIANTS)
def test_a_cuda_checkpoint_loads_on_the_cpu_and_predicts_as_on_cuda(cuda_runs, binarize):
    run, _ = cuda_runs[binarize, "32-true"]
    path = run / "checkpoints" / "last.ckpt"
    module = load_module(path)
    assert {p.device.type for p in module.parameters()} == {"cpu"}
    stored = read_checkpoint(path)["state_dict"]
    assert all(torch.equal(module.state_dict()[k], v) for k, v in stored.items())
    for _, layer in binary_layers(module.net):
        assert float(layer.weight.detach().abs().max()) <= 1.0
    datamodule = RunDir(run).datamodule()
    datamodule.setup("test")
    x, _ = datamodule.datasets["test"].tensors
    with torch.no_grad():
        on_cpu = module(x)
        on_cuda = module.cuda()
        with ieee_float32("cuda"):
            on_gpu = on_cuda(x.cuda()).cpu()
    agree = (on_cpu.argmax(1) == on_gpu.argmax(1)).float().mean().item()
    assert agree >= 1 - 1 / len(x)  # a sign at a threshold may fall the other way, once
    if binarize == "none":
        torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-3, atol=1e-4)


def read_rows(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "checkpoint"} for row in csv.DictReader(f)]


def test_the_bit_error_table_on_cuda_is_the_cpu_table(cpu_run, cuda_runs, tmp_path):
    ckpts = f"[{cpu_run},{cuda_runs['full', '32-true'][0]}]"
    tables, rows = {}, {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        cfg = compose_app("evaluate", f"ckpt_path={ckpts}", "bit_errors.ber=[0,1e-3,0.05,0.5]",
                          "bit_errors.draws=3", f"device={device}", f"paths.output_dir={out}")
        lines = []
        curves = evaluate(cfg, echo=lines.append)
        assert len(curves) == 2
        tables[device] = next(line for line in lines if line.startswith("variant"))
        rows[device] = read_rows(out / "ber_curve.csv")
    assert tables["cuda"] == tables["cpu"]
    assert rows["cuda"] == rows["cpu"] and len(rows["cpu"]) == 8


@pytest.mark.parametrize("on_device", ["false", "true"])
def test_deterministic_cuda_training_repeats_bit_for_bit(on_device, tmp_path, cache_dir):
    states = []
    for k in range(2):
        run = tmp_path / f"run{k}"
        train_tiny_run(run, "trainer=gpu", "trainer.deterministic=true", "trainer.benchmark=false",
                       "binarize=full", "trainer.max_epochs=2", "data.n_trials=60",
                       f"data.on_device={on_device}", f"data.cache_dir={cache_dir}")
        states.append(read_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
