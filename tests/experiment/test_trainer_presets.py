"""The trainer=gpu and trainer=ddp presets compose, build on CPU, and fail in one line."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import run_cli, stderr_lines
from tests.helpers.runs import compose_app


def build(cfg, root, **overrides):
    """The preset's Trainer with ``overrides`` (every key must be a Trainer argument)."""
    return instantiate(cfg.trainer, **overrides, default_root_dir=str(root), logger=False,
                       enable_progress_bar=False)


def test_the_gpu_preset_composes_with_the_paper_recipe_and_builds(tmp_path):
    cfg = compose_app("train", "experiment=paper_ecg", "trainer=gpu", "data.on_device=true",
                      "trainer.precision=bf16-mixed")
    t = cfg.trainer
    assert (t.accelerator, t.devices, t.benchmark, t.precision, t.max_epochs) == (
        "gpu", 1, True, "bf16-mixed", 1000)
    assert cfg.data.on_device is True and cfg.data.num_workers == 0
    trainer = build(cfg, tmp_path, accelerator="cpu")
    assert trainer.precision == "bf16-mixed" and trainer.max_epochs == 1000
    eeg = compose_app("train", "model=eeg", "trainer=gpu", "data.on_device=true")
    assert eeg.data.on_device is True and eeg.trainer.accelerator == "gpu"
    assert compose_app("train").data.on_device is False  # off by default


def test_the_ddp_preset_composes_and_builds_for_two_devices(tmp_path):
    cfg = compose_app("train", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                      "data.on_device=true")
    t = cfg.trainer
    assert (t.strategy, t.devices, t.num_nodes, t.benchmark, t.sync_batchnorm) == (
        "ddp", 4, 2, True, False)
    trainer = build(compose_app("train", "trainer=ddp"), tmp_path, accelerator="cpu")
    assert trainer.world_size == 2 and type(trainer.strategy).__name__ == "DDPStrategy"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_trainer_gpu_without_cuda_is_one_line_before_any_data(tmp_path):
    empty_cache = tmp_path / "cache"
    empty_cache.mkdir()
    proc = run_cli("bnn_edge.train", "trainer=gpu", "data.on_device=true",
                   f"hydra.run.dir={tmp_path / 'run'}", env={"BNN_EDGE_CACHE": str(empty_cache)})
    assert proc.returncode == 2
    err = stderr_lines(proc)
    assert len(err) == 1 and err[0].startswith("error: trainer: "), proc.stderr
    assert "gpu" in err[0].lower() or "cuda" in err[0].lower()
    assert list(empty_cache.iterdir()) == [] and not (tmp_path / "run").exists()
