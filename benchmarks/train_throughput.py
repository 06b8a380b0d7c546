"""ECG training throughput (samples/s) per variant: the Lightning module vs a plain loop.

Both train the same network on the same random batches (throughput does not depend on
the values) with Adam and binary-weight clipping; the first epoch of each is a warm-up
and is not timed; the figure is the median over the other epochs.
Run: ``make bench`` or ``python -m benchmarks.train_throughput --help``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import lightning as L
import torch
from rich.console import Console
from rich.table import Table
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from bnn_edge.lit.module import BNNClassifier
from bnn_edge.models import BINARIZE_CHOICES
from bnn_edge.nn import clip_binary_weights_
from bnn_edge.tasks import build_network


class EpochTimer(L.Callback):
    """Wall time of every training epoch."""

    def __init__(self):
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.times.append(time.perf_counter() - self._t0)


ECG_SHAPE = (12, 750)


def loader(n: int, batch_size: int, seed: int, shape: tuple[int, ...] = ECG_SHAPE) -> DataLoader:
    """Random trials of ``shape`` with random binary labels (values do not change speed)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    data = TensorDataset(x, torch.randint(0, 2, (n,), generator=g))
    return DataLoader(data, batch_size=batch_size, shuffle=True, generator=g)


def lightning_throughput(binarize: str, aug: int, n: int, batch_size: int, epochs: int,
                         network: str = "ecg", shape: tuple[int, ...] = ECG_SHAPE) -> float:
    """Median training samples/s of BNNClassifier through a Lightning Trainer."""
    L.seed_everything(0, verbose=False)
    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0,
                        callbacks=[timer])
    trainer.fit(BNNClassifier(network, binarize=binarize, aug=aug),
                loader(n, batch_size, 0, shape))
    return n / statistics.median(timer.times[1:])


def plain_throughput(binarize: str, aug: int, n: int, batch_size: int, epochs: int,
                     network: str = "ecg", shape: tuple[int, ...] = ECG_SHAPE) -> float:
    """Median training samples/s of the same network in a plain PyTorch loop."""
    torch.manual_seed(0)
    net = build_network(network, binarize=binarize, aug=aug).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    data = loader(n, batch_size, 0, shape)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for x, y in data:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            opt.step()
            clip_binary_weights_(net)
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times[1:])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aug", type=int, default=1)
    parser.add_argument("--samples", type=int, default=640, help="trials per epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=6, help="the first one is a warm-up")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is not timed)")
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*validation_step.*no `val_dataloader`")
    rows = []
    for binarize in BINARIZE_CHOICES:
        lit = lightning_throughput(binarize, args.aug, args.samples, args.batch_size, args.epochs)
        plain = plain_throughput(binarize, args.aug, args.samples, args.batch_size, args.epochs)
        rows.append({"binarize": binarize, "lightning": lit, "plain": plain,
                     "ratio": lit / plain})
    table = Table(title=f"ECG training throughput, aug={args.aug}, batch {args.batch_size}, "
                        f"{args.threads} CPU threads, torch {torch.__version__}")
    for col in ("binarize", "Lightning samples/s", "plain loop samples/s", "Lightning / plain"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["binarize"], f"{r['lightning']:.1f}", f"{r['plain']:.1f}",
                      f"{r['ratio']:.3f}")
    Console().print(table)
    return rows


if __name__ == "__main__":
    main()
