"""bf16-mixed against 32-true on the CPU: test accuracy paired by seed, and training time.

Trains every (task, aug, variant) in both precisions on the same seeds (a seed fixes the
data, the split and the initial weights, so each bf16 run has a float32 partner), then
compares their held-out test accuracies: the mean bf16 - fp32 difference with its 95 %
interval and the probability that it lies within +-1 point, by the Bayesian correlated
t-test of ``bnn_edge.experiment.stats`` (the training sets of different seeds overlap, so the
variance carries Nadeau & Bengio's n_test / n_train term), and the ratio of training times.

    python experiments/bf16_accuracy.py [--out DIR] [--rows ecg:1 eeg:1] [--seeds 1 2 3]
    python experiments/bf16_accuracy.py --read DIR     # the table of runs made before

Runs two jobs at a time on one core each (Hydra's parallel launcher) and writes
``bf16_accuracy.md`` into the sweep folder. Measured: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from bnn_edge.experiment.stats import compare

PRECISIONS = ("32-true", "bf16-mixed")
MARGIN = 1.0


def sweep(out: Path, task: str, aug: int, seeds: list[int], variants: list[str],
          epochs: int | None) -> None:
    """One multirun: variants x seeds x both precisions of ``task`` at ``aug``."""
    cmd = [sys.executable, "-m", "bnn_edge.train", "-m", f"model={task}", f"aug={aug}",
           f"binarize={','.join(variants)}", f"seed={','.join(map(str, seeds))}",
           f"trainer.precision={','.join(PRECISIONS)}", "hydra/launcher=parallel",
           "callbacks.rich_progress_bar=null", "trainer.enable_model_summary=false",
           f"hydra.sweep.dir={out / f'{task}_aug{aug}'}",
           "hydra.sweep.subdir=${binarize}_seed${seed}_${trainer.precision}"]
    if epochs:
        cmd.append(f"trainer.max_epochs={epochs}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, env=env)


def read(folder: Path) -> list[dict]:
    """One row per (task, aug, variant) of the runs under ``folder``."""
    runs: dict[tuple, dict] = {}
    for result in sorted(folder.rglob("results.json")):
        res = json.loads(result.read_text())
        cfg = OmegaConf.load(result.parent / "config.yaml")
        data = json.loads((result.parent / "data.json").read_text())
        key = (res["model"], res["aug"], res["binarize"])
        entry = runs.setdefault(key, {p: {} for p in PRECISIONS} | {"time": {}, "ratio": []})
        precision = str(cfg.trainer.precision)
        entry[precision][res["seed"]] = 100 * res["test_acc"]
        entry["time"].setdefault(precision, []).append(res["wall_time_s"])
        sizes = data["split_sizes"]
        entry["ratio"].append(sizes["test"] / sizes["train"])
    rows = []
    for (task, aug, binarize), e in sorted(runs.items()):
        c = compare(e["bf16-mixed"], e["32-true"], statistics.fmean(e["ratio"]), MARGIN)
        times = {p: statistics.fmean(t) for p, t in e["time"].items()}
        rows.append({"task": task, "aug": aug, "binarize": binarize,
                     "fp32": e["32-true"], "bf16": e["bf16-mixed"], "comparison": c,
                     "time_ratio": times.get("32-true", float("nan"))
                     / times.get("bf16-mixed", float("nan"))})
    return rows


def table(rows: list[dict], folder: Path) -> str:
    lines = [f"# bf16-mixed against 32-true (from {folder})", "",
             "Test accuracy (%) per seed; bf16 - fp32 paired by seed, 95 % interval, "
             f"P(within ±{MARGIN:g} point); fp32 / bf16 wall time of a whole run.", "",
             "| task | aug | binarize | fp32 | bf16 | bf16 - fp32 | P(within ±1) | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["comparison"]
        acc = {p: ", ".join(f"{r[p][s]:.1f}" for s in sorted(r[p])) for p in ("fp32", "bf16")}
        lines.append(f"| {r['task']} | {r['aug']} | {r['binarize']} | {acc['fp32']} | "
                     f"{acc['bf16']} | {c.interval() if c else '-'} | "
                     f"{f'{c.p_within:.2f}' if c else '-'} | {r['time_ratio']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--read", type=Path, default=None, help="only tabulate this folder")
    parser.add_argument("--rows", nargs="+", default=["ecg:1", "eeg:1"], metavar="TASK:AUG")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=["none", "classifier", "full"])
    parser.add_argument("--epochs", type=int, default=None,
                        help="trainer.max_epochs (default: the task's)")
    args = parser.parse_args(argv)
    folder = args.read
    if folder is None:
        folder = args.out or Path("logs/bf16_accuracy") / time.strftime("%Y-%m-%d_%H-%M-%S")
        for row in args.rows:
            task, aug = row.split(":")
            sweep(folder, task, int(aug), args.seeds, args.variants, args.epochs)
    text = table(read(folder), folder)
    (folder / "bf16_accuracy.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
