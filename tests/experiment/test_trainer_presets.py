"""The presets: the paper's protocol (split, repeats, seeds), trainer=gpu and trainer=ddp
compose, build on CPU, and fail in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from hydra.utils import instantiate

from bnn_edge.cli.app import CONF_DIR
from bnn_edge.data.base import kfold_split
from tests.conftest import run_cli, stderr_lines
from tests.helpers.runs import compose_app

TUNING_SEEDS = (42, 43, 44)  # the seeds the data settings and recipes were chosen on


def test_the_paper_presets_run_the_papers_split_on_seeds_not_used_for_tuning():
    """ECG: 5 folds x 5 repeats, no test split, 800 training trials a fold; EEG: 5 folds
    once; Fig. 7: the same 5 x 5 as a sweep; no seed of any of them was used for tuning."""
    ecg = compose_app("train", "experiment=paper_ecg")
    assert (ecg.cv.mode, ecg.cv.folds, ecg.cv.repeats) == ("all", 5, 5)
    assert (ecg.data.n_trials, ecg.data.test_fraction, ecg.trainer.max_epochs) == (1000, 0,
                                                                                  1000)
    assert not set(range(ecg.seed, ecg.seed + ecg.cv.repeats)) & set(TUNING_SEEDS)
    split = kfold_split(np.repeat([0, 1], 500), ecg.data.folds, 0, ecg.data.test_fraction,
                        ecg.seed)
    assert (len(split.train), len(split.val), len(split.test)) == (800, 200, 0)
    eeg = compose_app("train", "experiment=paper_eeg")
    assert (eeg.cv.mode, eeg.cv.folds, eeg.cv.repeats, eeg.data.test_fraction) == ("all", 5,
                                                                                   1, 0)
    assert eeg.seed not in TUNING_SEEDS
    assert compose_app("train", "experiment=fig7_ecg").data.test_fraction == 0
    fig7 = yaml.safe_load((CONF_DIR / "experiment" / "fig7_ecg.yaml").read_text())
    swept = fig7["hydra"]["sweeper"]["params"]
    assert (swept["seed"], swept["data.fold"]) == ("100,101,102,103,104", "0,1,2,3,4")


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
