"""Shared fixtures: a per-session cache of generated data, runs written under tmp paths."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One data cache for the whole session, so each synthetic set is generated once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, cache_dir, tmp_path):
    """Never touch the user's cache or the repository's logs/ from a test."""
    monkeypatch.setenv("BNN_EDGE_CACHE", str(cache_dir))
    monkeypatch.setenv("BNN_EDGE_LOG_DIR", str(tmp_path / "logs"))


def run_cli(module: str, *args: str, env: dict | None = None, timeout: int = 600,
            preexec_fn=None):
    """Run ``python -m module args`` from the repository root; return the CompletedProcess.

    ``preexec_fn`` runs in the child before the command (e.g. to set a resource limit)."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec_fn)


def stderr_lines(proc) -> list[str]:
    """The non-blank lines a CLI run wrote to stderr (a bad option must give exactly one)."""
    return [line for line in proc.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def ecg_checkpoint(tmp_path_factory, cache_dir) -> Path:
    """An ECG binarize=classifier model trained for one epoch by the CLI, in its run folder."""
    run = tmp_path_factory.mktemp("ecg_classifier_run")
    proc = run_cli("bnn_edge.train", "model=ecg", "binarize=classifier", "aug=1",
                   "data.n_trials=120", "trainer.max_epochs=1", "test=false",
                   f"hydra.run.dir={run}", env={"BNN_EDGE_CACHE": str(cache_dir),
                                                 "BNN_EDGE_LOG_DIR": str(run / "logs")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run / "checkpoints" / "last.ckpt"
