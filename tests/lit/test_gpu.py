"""BNNClassifier on a CUDA device: Lightning training steps for every variant and precision."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from bnn_edge.lit.module import BNNClassifier
from bnn_edge.nn import binary_layers

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


class Steps(L.Callback):
    """The loss of every training step, and where the batch and the weights were."""

    def __init__(self):
        self.losses: list[float] = []
        self.devices: set[str] = set()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))
        self.devices |= {batch[0].device.type, next(pl_module.parameters()).device.type}


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("binarize", ["none", "classifier", "full"])
def test_training_steps_on_cuda(binarize, precision, tmp_path):
    L.seed_everything(0, verbose=False)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 12, 750, generator=g)
    y = torch.randint(0, 2, (96,), generator=g)
    module = BNNClassifier("ecg", binarize=binarize, aug=2)
    start = {k: v.clone() for k, v in module.state_dict().items()}
    steps = Steps()
    trainer = L.Trainer(accelerator="gpu", devices=1, precision=precision, max_epochs=2,
                        benchmark=True, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, callbacks=[steps])
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True))
    assert len(steps.losses) == 6 and all(math.isfinite(v) for v in steps.losses)
    assert steps.devices == {"cuda"}
    assert {p.dtype for p in module.parameters()} == {torch.float32}
    moved = [k for k, v in module.state_dict().items()
             if v.is_floating_point() and not torch.equal(v.cpu(), start[k])]
    assert moved  # the optimizer stepped
    for _, layer in binary_layers(module.net):
        assert layer.weight.is_cuda and float(layer.weight.detach().abs().max()) <= 1.0
        assert set(layer.binary_weight.unique().tolist()) == {-1.0, 1.0}
