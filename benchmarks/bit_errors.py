"""Cost of bit-error injection: a 5-rate x 20-draw sweep against 100 clean validation passes.

Both evaluate the same ECG network on the ECG validation split (fold 0 of the default
1000 synthetic trials: 160 trials); the sweep re-draws the faults before each of its 100
passes (rates 1e-5 to 1e-1, 20 draws each). Clean and injected passes alternate rate by
rate (20 clean passes, then the 20 draws of one rate), so that load from other processes
hits both alike; the figure is the median over ``--repeats`` of the ratio of the two
totals. The goal is at most 1.20 (injection adds at most 20%).
Run: ``make bench`` or ``python -m benchmarks.bit_errors --help``.
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from bnn_edge.data.ecg import ECGDataModule
from bnn_edge.hardware.faults import WeightFaults, accuracy, ber_sweep
from bnn_edge.lit.module import BNNClassifier

RATES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
VARIANTS = ("classifier:none", "full:none", "none:int8", "none:fp32")
GOAL = 1.20


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(binarize: str, real_format: str, loader, draws: int, repeats: int,
            aug: int) -> dict:
    torch.manual_seed(0)
    module = BNNClassifier("ecg", binarize=binarize, aug=aug).eval()
    accuracy(module, loader)  # warm-up
    runs = []
    for _ in range(repeats):
        clean = injected = 0.0
        for rate in RATES:
            clean += timed(lambda: [accuracy(module, loader) for _ in range(draws)])
            injected += timed(lambda r=rate: ber_sweep(module, loader, [r], draws,
                                                       real_format=real_format))
        runs.append((clean, injected, injected / clean))
    clean, injected, ratio = sorted(runs, key=lambda run: run[2])[len(runs) // 2]
    return {"variant": binarize, "real_format": real_format,
            "bits": WeightFaults(module, real_format).bits, "passes": len(RATES) * draws,
            "clean": clean, "injected": injected, "ratio": ratio}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS),
                        help="binarize:real_format pairs (default: %(default)s)")
    parser.add_argument("--draws", type=int, default=20, help="draws per rate")
    parser.add_argument("--repeats", type=int, default=3, help="median of this many runs")
    parser.add_argument("--aug", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    for v in args.variants:
        binarize, _, fmt = v.partition(":")
        if binarize not in ("none", "classifier", "full") or fmt not in ("none", "fp32", "int8"):
            parser.error(f"--variants: {v!r} is not binarize:real_format")
    torch.set_num_threads(args.threads)
    datamodule = ECGDataModule(n_trials=1000, seed=42)
    datamodule.setup("fit")
    loader = datamodule.val_dataloader()
    rows = [measure(*v.split(":"), loader, args.draws, args.repeats, args.aug)
            for v in args.variants]
    table = Table(title=f"Bit-error sweep ({len(RATES)} rates x {args.draws} draws) vs the same "
                        f"number of clean passes, ECG validation set ({len(loader.dataset)} "
                        f"trials), aug={args.aug}, {args.threads} CPU threads, "
                        f"torch {torch.__version__}")
    for col in ("binarize", "real_format", "faulted bits", "clean passes (s)",
                "with injection (s)", "ratio", f"goal <= {GOAL:.2f}"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["variant"], r["real_format"], f"{r['bits']:,}",
                      f"{r['clean']:.2f}", f"{r['injected']:.2f}", f"{r['ratio']:.3f}",
                      "met" if r["ratio"] <= GOAL else "missed")
    Console(width=140).print(table)
    return rows


if __name__ == "__main__":
    main()
