"""`model=eeg` through the training entry point, on the synthetic source."""

from __future__ import annotations

import json

import pytest

from bnn_edge.lit.module import BNNClassifier
from bnn_edge.nn import binary_layers
from tests.conftest import run_cli, stderr_lines

EXPECTED_BINARY = {"none": 0, "classifier": 2, "full": 4}


def test_entry_point_selects_eeg_data_and_writes_the_run(tmp_path):
    """model=eeg picks data=eeg; a one-epoch full BNN run writes the usual run directory."""
    run_dir = tmp_path / "run"
    proc = run_cli("bnn_edge.train", "model=eeg", "binarize=full", "aug=1",
                   "data.subjects=[3,4]", "data.folds=2", "data.batch_size=16",
                   "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
                   "trainer.log_every_n_steps=1", "trainer.enable_model_summary=false",
                   "callbacks.rich_progress_bar=null", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert any(line.startswith("Data: synthetic EEGMMIDB-shaped motor imagery") for line in lines)
    assert lines[-1].startswith("Done: eeg binarize=full aug=1 fold=0")
    data = json.loads((run_dir / "data.json").read_text())
    assert data["source"] == "synthetic" and data["input_shape"] == [64, 960]
    assert data["subjects"] == [3, 4] and data["trials_per_subject"] == {"3": 42, "4": 42}
    assert data["normalize"] == "subject" and data["noise_std"] == 0.1
    results = json.loads((run_dir / "results.json").read_text())
    assert results["model"] == "eeg" and results["epochs"] == 1
    module = BNNClassifier.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt",
                                                weights_only=True)
    assert len(binary_layers(module.net)) == EXPECTED_BINARY["full"]
    for _, layer in binary_layers(module.net):
        assert layer.weight.abs().max() <= 1.0


def test_bad_eeg_option_fails_before_any_data(tmp_path):
    """One line, exit 2, nothing generated (every option's check: tests/test_eeg_data.py)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    proc = run_cli("bnn_edge.train", "model=eeg", "data.split=run",
                   f"hydra.run.dir={tmp_path / 'run'}", env={"BNN_EDGE_CACHE": str(cache)})
    assert proc.returncode == 2
    err = stderr_lines(proc)
    assert len(err) == 1 and err[0].startswith("error: data.split='run' is not allowed"), \
        proc.stderr
    assert list(cache.iterdir()) == []
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_default_synthetic_set_is_learned_by_the_real_network(tmp_path):
    """The default command with binarize=none: 70-90 % is what the synthetic set is tuned for.

    About 15 minutes on 2 CPU cores (generation, 10 epochs of 537 trials, test).
    """
    run_dir = tmp_path / "run"
    proc = run_cli("bnn_edge.train", "model=eeg", "binarize=none", "aug=1",
                   "callbacks.rich_progress_bar=null", f"hydra.run.dir={run_dir}", timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["epochs"] == 10
    # 168 balanced test trials: >= 0.7 is far beyond chance (P < 1e-7 by guessing)
    assert 0.7 <= results["test_acc"] <= 0.95
