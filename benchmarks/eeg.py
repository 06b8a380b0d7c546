"""EEG benchmarks: training throughput of the Table I network per variant, data preparation.

Throughput: the Lightning module and a plain PyTorch loop train the same network on the
same random (64, 960) batches with Adam and binary-weight clipping; the first epoch of each
is a warm-up and is not timed; the figure is the median over the other epochs.
Data preparation: building the synthetic set (head model, simulation, normalisation,
atomic cache write) in an empty cache, then the same setup again reading the cache; and
the physionet source reading a small EEGMMIDB tree of EDF files (written first, not timed)
cold and cached. Run: ``make bench`` or ``python -m benchmarks.eeg --help``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from benchmarks import train_throughput
from bnn_edge.models import BINARIZE_CHOICES

EEG_SHAPE = (64, 960)


def lightning_throughput(binarize: str, aug: int, n: int, batch_size: int, epochs: int) -> float:
    return train_throughput.lightning_throughput(binarize, aug, n, batch_size, epochs,
                                                 "eeg", EEG_SHAPE)


def plain_throughput(binarize: str, aug: int, n: int, batch_size: int, epochs: int) -> float:
    return train_throughput.plain_throughput(binarize, aug, n, batch_size, epochs,
                                             "eeg", EEG_SHAPE)


def _timed_setup(**kwargs) -> tuple[float, str]:
    from bnn_edge.data.eeg import EEGDataModule

    t0 = time.perf_counter()
    dm = EEGDataModule(progress=False, **kwargs)
    dm.setup()
    return time.perf_counter() - t0, f"{len(dm.arrays.y)} trials"


def data_preparation(synthetic_subjects: int, physionet_subjects: int) -> list[dict]:
    """Cold (empty cache) and cached setup times of both sources."""
    from bnn_edge.data.eeg import eegmmidb
    from bnn_edge.data.eeg import synthetic as eeg_synthetic
    from tests.helpers.edf import write_run

    rows = []
    with tempfile.TemporaryDirectory(prefix="bnn_edge_bench_") as tmp:
        cache = Path(tmp) / "cache"
        eeg_synthetic.head_model.cache_clear()  # cold includes building the head model
        cold, size = _timed_setup(subjects=synthetic_subjects, cache_dir=str(cache))
        warm, _ = _timed_setup(subjects=synthetic_subjects, cache_dir=str(cache))
        rows.append({"source": f"synthetic, {synthetic_subjects} subjects", "size": size,
                     "cold": cold, "cached": warm})
        root = Path(tmp) / "mne_data"
        for s in range(1, physionet_subjects + 1):
            for run, r in eeg_synthetic.simulate_subject(s, 0).items():
                write_run(eegmmidb.run_path(root, s, run), r.signals, eegmmidb.FS,
                          r.onsets_s, r.durations_s, r.descriptions)
        kwargs = {"source": "physionet", "root": str(root), "subjects": physionet_subjects,
                  "cache_dir": str(cache)}
        cold, size = _timed_setup(**kwargs)
        warm, _ = _timed_setup(**kwargs)
        rows.append({"source": f"physionet (EDF), {physionet_subjects} subjects", "size": size,
                     "cold": cold, "cached": warm})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aug", type=int, default=1)
    parser.add_argument("--samples", type=int, default=64, help="trials per epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="the first one is a warm-up")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--variants", nargs="+", default=list(BINARIZE_CHOICES),
                        choices=BINARIZE_CHOICES)
    parser.add_argument("--no-plain", action="store_true", help="skip the plain-loop column")
    parser.add_argument("--synthetic-subjects", type=int, default=20)
    parser.add_argument("--physionet-subjects", type=int, default=4)
    parser.add_argument("--skip-data", action="store_true")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is not timed)")
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*validation_step.*no `val_dataloader`")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    console = Console()
    out: dict = {"train": [], "data": []}
    if not args.skip_train:
        for binarize in args.variants:
            lit = lightning_throughput(binarize, args.aug, args.samples, args.batch_size,
                                       args.epochs)
            plain = None if args.no_plain else plain_throughput(
                binarize, args.aug, args.samples, args.batch_size, args.epochs)
            out["train"].append({"binarize": binarize, "lightning": lit, "plain": plain})
        table = Table(title=f"EEG training throughput, aug={args.aug}, batch {args.batch_size}, "
                            f"{args.threads} CPU threads, torch {torch.__version__}")
        for col in ("binarize", "Lightning samples/s", "plain loop samples/s",
                    "Lightning / plain", "s per epoch of 537 trials"):
            table.add_column(col, justify="right")
        for r in out["train"]:
            plain = r["plain"]
            table.add_row(r["binarize"], f"{r['lightning']:.2f}",
                          "-" if plain is None else f"{plain:.2f}",
                          "-" if plain is None else f"{r['lightning'] / plain:.3f}",
                          f"{537 / r['lightning']:.0f}")
        console.print(table)
    if not args.skip_data:
        out["data"] = data_preparation(args.synthetic_subjects, args.physionet_subjects)
        table = Table(title="EEG data preparation (setup of the data module)")
        for col in ("source", "trials", "cold (s)", "cached (s)", "speed-up"):
            table.add_column(col, justify="right")
        for r in out["data"]:
            table.add_row(r["source"], r["size"], f"{r['cold']:.1f}", f"{r['cached']:.2f}",
                          f"{r['cold'] / r['cached']:.0f}x")
        console.print(table)
    return out


if __name__ == "__main__":
    main()
