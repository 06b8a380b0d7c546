"""An ordinary (non-editable) install works from any folder: the configs ship inside."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_a_wheel_install_runs_from_another_folder(tmp_path):
    target, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(ROOT)], check=True,
                   timeout=600, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target), "BNN_EDGE_CACHE": str(tmp_path / "cache"),
           "BNN_EDGE_LOG_DIR": str(tmp_path / "logs")}

    def run(*args):
        return subprocess.run(list(args), cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=600)

    where = run(sys.executable, "-c", "import bnn_edge; print(bnn_edge.__file__)")
    assert where.stdout.strip() == str(target / "bnn_edge" / "__init__.py")
    memory = run(sys.executable, "-m", "bnn_edge.memory", "model=ecg", "format=json")
    assert memory.returncode == 0, memory.stderr
    assert json.loads(memory.stdout)["total_params"] == 425_045
    trained = run(str(target / "bin" / "bnn-edge"), "train", "debug=fast", "data.n_trials=120",
                  f"hydra.run.dir={tmp_path / 'run'}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert trained.stdout.strip().splitlines()[-1].startswith("Done: ecg binarize=classifier")
    # Hydra finds the parallel launcher in the installed hydra_plugins namespace package
    swept = run(str(target / "bin" / "bnn-edge"), "train", "-m", "hydra/launcher=parallel",
                "debug=fast", "data.n_trials=120", "binarize=none,full",
                f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert swept.returncode == 0, swept.stderr[-2000:]
    assert f"Sweep: 2 of 2 jobs finished in {tmp_path / 'sweep'}" in swept.stdout
    exported = run(sys.executable, "-m", "bnn_edge.export",
                   f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}",
                   f"out={tmp_path / 'export'}", "n_vectors=64")
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "export" / "bnn_weights.h").is_file()
