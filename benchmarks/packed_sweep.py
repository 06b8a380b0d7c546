"""Monte-Carlo bit-error sweep on the packed engine against the torch engine, same draws.

ECG network (aug=1 by default), ``binarize=classifier`` and ``full``, trained here for a few
epochs on the default synthetic ECG data (1000 trials, seed 42) so that accuracy falls with
the error rate; then the same sweep (5 rates x ``--draws`` draws, rate draws seeded as in
``python -m bnn_edge.evaluate``) on the 200-trial test split by both engines, one after
the other in this run: wall time of each, their ratio, and whether every draw's accuracy
is identical. Run: ``make bench`` or ``python -m benchmarks.packed_sweep --help``.
"""

from __future__ import annotations

import argparse
import time

import lightning as L
import torch
from rich.console import Console
from rich.table import Table

from bnn_edge.data.ecg import ECGDataModule
from bnn_edge.hardware.faults import ber_sweep, rate_label
from bnn_edge.hardware.packed import kernels
from bnn_edge.hardware.packed.sweep import packed_ber_sweep
from bnn_edge.lit.module import BNNClassifier

RATES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
GOAL = 10.0


def trained(binarize: str, aug: int, datamodule, epochs: int) -> BNNClassifier:
    torch.manual_seed(0)
    module = BNNClassifier("ecg", binarize=binarize, aug=aug)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module, datamodule=datamodule)
    return module.eval()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000, help="draws per rate")
    parser.add_argument("--variants", nargs="+", default=["classifier", "full"])
    parser.add_argument("--aug", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the model")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    datamodule = ECGDataModule(n_trials=1000, seed=42, progress=False)
    datamodule.setup("fit")
    loader = datamodule.test_dataloader()
    rows = []
    for binarize in args.variants:
        module = trained(binarize, args.aug, datamodule, args.epochs)
        t0 = time.perf_counter()
        packed = packed_ber_sweep(module, loader, RATES, args.draws)
        t1 = time.perf_counter()
        reference = ber_sweep(module, loader, RATES, args.draws)
        t2 = time.perf_counter()
        differing = sum(a != b for p, q in zip(reference, packed, strict=True)
                        for a, b in zip(p.accuracies, q.accuracies, strict=True))
        rows.append({"variant": binarize, "torch_s": t2 - t1, "packed_s": t1 - t0,
                     "differing": differing, "draws": sum(p.draws for p in packed),
                     "acc": [(p.mean, q.mean) for p, q in zip(reference, packed, strict=True)]})
    table = Table(title=f"Bit-error sweep, {len(RATES)} rates x {args.draws} draws, ECG "
                        f"aug={args.aug} ({args.epochs} training epochs), test split "
                        f"({len(loader.dataset)} trials): packed engine ({kernels.isa()}) vs "
                        f"torch engine, {args.threads} CPU threads, torch {torch.__version__}")
    for col in ("binarize", "draws", "torch engine s", "packed engine s", "torch / packed",
                f"goal >= {GOAL:.0f}x", "draws whose accuracy differs"):
        table.add_column(col, justify="right")
    for r in rows:
        ratio = r["torch_s"] / r["packed_s"]
        table.add_row(r["variant"], f"{r['draws']:,}", f"{r['torch_s']:.1f}",
                      f"{r['packed_s']:.2f}", f"{ratio:.1f}x", "met" if ratio >= GOAL else "missed",
                      str(r["differing"]))
    accuracy = Table(title="Mean accuracy over the draws at each rate")
    for col in ("binarize", "engine", *(rate_label(r) for r in RATES)):
        accuracy.add_column(col, justify="right")
    for r in rows:
        for k, engine in enumerate(("torch", "packed")):
            accuracy.add_row(r["variant"], engine, *(f"{100 * a[k]:.3f}%" for a in r["acc"]))
    console = Console(width=160)
    console.print(table)
    console.print(accuracy)
    return rows


if __name__ == "__main__":
    main()
