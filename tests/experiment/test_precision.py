"""trainer.precision=bf16-mixed trains every variant (on CPU: torch.autocast('cpu'))."""

from __future__ import annotations

import math

import pytest
import torch

from bnn_edge.experiment.rundir import load_module
from bnn_edge.nn import binary_layers
from tests.helpers.runs import read_metrics, train_tiny_run


@pytest.mark.parametrize("binarize", ["none", "classifier", "full"])
def test_bf16_mixed_trains_every_variant_with_float32_weights(binarize, tmp_path):
    run = tmp_path / binarize
    results = train_tiny_run(run, f"binarize={binarize}", "trainer.precision=bf16-mixed",
                             "data.on_device=true")
    assert results["epochs"] == 1 and 0 <= results["test_acc"] <= 1
    (row,) = [r for r in read_metrics(run) if r.get("train/loss")]
    assert math.isfinite(float(row["train/loss"]))
    assert "precision: bf16-mixed" in (run / "config.yaml").read_text()
    module = load_module(run / "checkpoints" / "last.ckpt")
    assert {p.dtype for p in module.parameters()} == {torch.float32}
    for _, layer in binary_layers(module.net):
        assert layer.weight.abs().max() <= 1.0  # clipped after every (mixed) step
        assert set(layer.binary_weight.unique().tolist()) == {-1.0, 1.0}
