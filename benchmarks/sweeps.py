"""A 6-job sweep of tiny ECG trainings: the sequential launcher against the parallel one (2 jobs).

Both run ``binarize=none,classifier,full aug=1,2`` (40 trials, 2 epochs each) through
``python -m bnn_edge.train -m`` into a temporary folder; wall time includes every job's
start-up. Run: ``make bench`` or ``python -m benchmarks.sweeps``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ["binarize=none,classifier,full", "aug=1,2", "data.n_trials=40", "trainer.max_epochs=2",
         "callbacks.rich_progress_bar=null", "trainer.enable_model_summary=false"]


def run_sweep(launcher: list[str], log_dir: Path) -> tuple[float, int]:
    """Wall seconds of one sweep and the number of jobs that wrote results."""
    env = {**os.environ, "BNN_EDGE_LOG_DIR": str(log_dir)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bnn_edge.train", "-m", *launcher, *SWEEP], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - t0
    return seconds, len(list(log_dir.glob("train/multiruns/*/*/results.json")))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # warm the data cache first so that neither launcher pays for generation
        subprocess.run([sys.executable, "-m", "bnn_edge.train", "data.n_trials=40",
                        "trainer.max_epochs=1", "callbacks.rich_progress_bar=null",
                        f"hydra.run.dir={tmp}/warm"], cwd=ROOT, check=True, capture_output=True)
        for name, launcher in (("sequential (basic)", []),
                               ("parallel, 2 jobs", ["hydra/launcher=parallel",
                                                     "hydra.launcher.n_jobs=2"])):
            seconds, jobs = run_sweep(launcher, Path(tmp) / name.split()[0])
            rows.append({"launcher": name, "seconds": seconds, "jobs": jobs})
    table = Table(title="6-job sweep of tiny ECG trainings (2 CPU cores)")
    for col in ("launcher", "jobs done", "wall time s", "speed-up"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["launcher"], str(r["jobs"]), f"{r['seconds']:.1f}",
                      f"{rows[0]['seconds'] / r['seconds']:.2f}x")
    Console(width=120).print(table)
    return rows


if __name__ == "__main__":
    main()
