"""GPU timings (issue 18): epoch times, samples/s and peak memory, and the paper's protocols
in GPU-hours, from one run on a CUDA machine (``benchmarks/gpu.sh``; docs/gpu.md).

- ECG at aug 1, 7, 16 and EEG at aug 1, 11, every variant, in 32-true and bf16-mixed: Lightning
  fits of the project's module on random trials of the task's shape (values do not change
  speed) at the paper's data sizes (1000 ECG trials, 4410 EEG trials: fold 0 of 5 trains on
  640 / 2822 a epoch, validates on 160 / 706), the splits kept on the GPU (``data.on_device``),
  checkpoints and metrics.csv written every epoch as a training run does. One row each also
  loads through the host DataLoader (``data.on_device=false``), for comparison.
- MobileNet: training images/s of every variant from batches already in GPU memory (the
  GPU's rate), and of the binarized classifier through the JPEG/ImageFolder pipeline of a
  synthetic tree written to a temporary folder (what this machine's CPUs can feed).
- The projected GPU-hours of Fig. 7 ECG, Table III EEG and MobileNet's 255 ImageNet epochs
  (:mod:`bnn_edge.experiment.protocols`), runs one after another on one GPU.

Each section has a share of ``--budget-s`` and each fit stops when its share is spent, so the
whole run stays inside the budget. Writes ``gpu_timings.csv``, ``gpu_projection.csv`` and
``gpu_bench.md`` into ``--out``. ``--dry-run`` times tiny CPU versions of everything (seconds).
"""

from __future__ import annotations

import argparse
import csv
import gc
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch

from bnn_edge.data.base import ArrayDataModule, Arrays, DeviceBatches
from bnn_edge.experiment.protocols import (
    ECG_PAPER_TRIALS,
    EEG_PAPER_TRIALS,
    PROTOCOLS,
    imagenet_epoch_seconds,
    project,
)
from bnn_edge.lit.callbacks import RunCheckpoint
from bnn_edge.lit.loggers import ResumableCSVLogger
from bnn_edge.lit.module import BNNClassifier
from bnn_edge.models import BINARIZE_CHOICES

PRECISIONS = ("32-true", "bf16-mixed")
SECTIONS = ("ecg", "eeg", "mobilenet")
SHARES = {"ecg": 0.3, "eeg": 0.4, "mobilenet": 0.3}
TIMING_COLUMNS = ("section", "network", "binarize", "aug", "precision", "loader",
                  "train_samples", "val_samples", "batch_size", "epochs_timed", "epoch_s",
                  "train_s", "val_s", "ckpt_s", "samples_per_s", "val_samples_per_s",
                  "first_epoch_s", "overhead_s", "peak_mem_gib", "note")
PROJECTION_COLUMNS = ("protocol", "precision", "rate", "variant", "aug", "epoch_s", "how",
                      "runs", "epochs", "overhead_s", "gpu_hours")


@dataclass(frozen=True)
class Sizes:
    """What one section trains on: trials, batch, epochs, augs (full run or dry run)."""

    ecg_trials: int = ECG_PAPER_TRIALS
    eeg_trials: int = EEG_PAPER_TRIALS
    batch_size: int = 32
    epochs: int = 3  # the first is the warm-up
    ecg_augs: tuple[int, ...] = (1, 16, 7)  # in this order: Fig. 7 needs both ends first
    eeg_augs: tuple[int, ...] = (1, 11)
    eeg_variants: tuple[str, ...] = BINARIZE_CHOICES
    image_size: int = 224
    image_batch: int = 256
    image_classes: int = 1000
    images_per_class: int = 4
    image_side: tuple[int, int] = (500, 375)
    warmup_steps: int = 5
    timed_steps: int = 30
    pipeline_variants: tuple[str, ...] = ("classifier",)
    workers: int = 8


FULL = Sizes()
DRY = Sizes(ecg_trials=40, eeg_trials=20, batch_size=4, epochs=2, ecg_augs=(1, 2),
            eeg_augs=(1,), eeg_variants=("classifier",), image_size=64, image_batch=4,
            image_classes=4, images_per_class=6, image_side=(96, 72), warmup_steps=1,
            timed_steps=2, workers=0)


@dataclass
class Timing:
    """One measured configuration (a row of ``gpu_timings.csv``)."""

    section: str
    network: str
    binarize: str
    aug: int
    precision: str
    loader: str
    train_samples: int = 0
    val_samples: int = 0
    batch_size: int = 0
    epochs_timed: int = 0
    epoch_s: float | None = None
    train_s: float | None = None
    val_s: float | None = None
    ckpt_s: float | None = None
    samples_per_s: float | None = None
    val_samples_per_s: float | None = None
    first_epoch_s: float | None = None
    overhead_s: float | None = None
    peak_mem_gib: float | None = None
    note: str = ""


class Clock:
    """Wall time, synchronised with the device when it is a GPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


class EpochClock(L.Callback):
    """Start of every training epoch and time spent validating; stops the fit when its
    ``budget_s`` is spent (after one timed epoch, or after the warm-up at three budgets).

    An epoch runs from its start to the next one's, so checkpoints written at its end count.
    """

    def __init__(self, clock: Clock, budget_s: float):
        self.clock, self.budget_s = clock, budget_s
        self.starts: list[float] = []
        self.val: list[float] = []
        self.ckpt: list[float] = []
        self.end: float | None = None

    def on_fit_start(self, trainer, pl_module):
        self.t_fit = self.clock()

    def on_train_epoch_start(self, trainer, pl_module):
        self.starts.append(self.clock())
        self.val.append(0.0)
        self.ckpt.append(0.0)

    def on_validation_epoch_start(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self._v0 = self.clock()

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking and self.starts:
            self.val[-1] += self.clock() - self._v0

    def on_train_epoch_end(self, trainer, pl_module):
        spent = self.clock() - self.t_fit
        done = len(self.starts)
        if (done >= 2 and spent > self.budget_s) or spent > 3 * self.budget_s:
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module):
        self.end = self.clock()

    @property
    def epochs(self) -> list[float]:
        marks = [*self.starts, self.end]
        return [b - a for a, b in zip(marks, marks[1:], strict=False)]


class TimedCheckpoint(RunCheckpoint):
    """The run's checkpoint callback, adding the seconds of every write to its epoch's."""

    def __init__(self, epochs: EpochClock, **options):
        super().__init__(**options)
        self.epochs = epochs

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        t0 = self.epochs.clock()
        super()._save_checkpoint(trainer, filepath)
        if self.epochs.ckpt:
            self.epochs.ckpt[-1] += self.epochs.clock() - t0


class StepClock(L.Callback):
    """Time of the ``timed`` batches after ``warmup`` ones (training or validation)."""

    def __init__(self, clock: Clock, warmup: int, timed: int):
        self.clock, self.warmup, self.timed = clock, warmup, timed
        self.t0 = self.t1 = None
        self.samples = 0
        self._n = 0

    def _batch_end(self, batch):
        self._n += 1
        if self._n == self.warmup:
            self.t0 = self.clock()
        elif self.warmup < self._n <= self.warmup + self.timed:
            self.samples += len(batch[1])
            if self._n == self.warmup + self.timed:
                self.t1 = self.clock()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._batch_end(batch)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx=0):
        if not trainer.sanity_checking:
            self._batch_end(batch)

    @property
    def rate(self) -> float | None:
        return self.samples / (self.t1 - self.t0) if self.t1 is not None else None


class RandomTrials(ArrayDataModule):
    """Random trials of a task's shape with balanced labels, split as the task's data are."""

    def __init__(self, trial_shape: tuple[int, ...], n_trials: int, **options):
        super().__init__(**options)
        self.trial_shape, self.n_trials = tuple(trial_shape), n_trials

    def load(self) -> Arrays:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((self.n_trials, *self.trial_shape), dtype=np.float32)
        return Arrays(x, np.arange(self.n_trials) % 2, {"source": "random"})

    def describe_source(self) -> str:
        return f"{self.n_trials} random trials of shape {self.trial_shape}"


def mem_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


def reset(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def trainer_for(device: torch.device, precision: str, workdir: Path, callbacks: list,
                **kwargs) -> L.Trainer:
    """A Trainer as ``trainer=gpu`` builds one (cudnn benchmark on), quiet."""
    return L.Trainer(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
                     precision=precision, benchmark=device.type == "cuda",
                     default_root_dir=str(workdir), callbacks=callbacks,
                     enable_progress_bar=False, enable_model_summary=False, **kwargs)


def time_task(section: str, network: str, binarize: str, aug: int, precision: str,
              datamodule: RandomTrials, sizes: Sizes, device: torch.device, budget_s: float,
              workdir: Path) -> Timing:
    """Epoch times of one variant on ``datamodule`` (train + val, checkpoints, metrics.csv)."""
    loader = "on_device" if datamodule.on_device else "DataLoader"
    row = Timing(section, network, binarize, aug, precision, loader,
                 batch_size=datamodule.batch_size)
    reset(device)
    datamodule._device_splits.clear()  # every run moves its data once, as a real one does
    clock = Clock(device)
    epochs = EpochClock(clock, budget_s)
    run = workdir / f"{network}_{binarize}_aug{aug}_{precision}_{loader}"
    checkpoints = [  # as conf/callbacks/default.yaml: the best by val/acc and last.ckpt
        TimedCheckpoint(epochs, dirpath=run / "checkpoints", filename="best", monitor="val/acc",
                        mode="max", save_top_k=1, save_last=False),
        TimedCheckpoint(epochs, dirpath=run / "checkpoints", filename="last", monitor=None,
                        save_top_k=1, enable_version_counter=False)]
    t0 = time.perf_counter()
    module = BNNClassifier(network, binarize=binarize, aug=aug)
    trainer = trainer_for(device, precision, run, [epochs, *checkpoints],
                          max_epochs=sizes.epochs, log_every_n_steps=10,
                          logger=ResumableCSVLogger(save_dir=str(run), name="", version=""))
    trainer.fit(module, datamodule=datamodule)
    fit_s = clock() - t0
    row.peak_mem_gib = mem_gib(device)
    row.train_samples = len(datamodule.split.train)
    row.val_samples = len(datamodule.split.val)
    times = epochs.epochs
    row.first_epoch_s = times[0] if times else None
    steady = times[1:]
    if steady:
        row.epochs_timed = len(steady)
        row.epoch_s = statistics.median(steady)
        row.val_s = statistics.median(epochs.val[1:len(times)])
        row.ckpt_s = statistics.median(epochs.ckpt[1:len(times)])
        row.train_s = row.epoch_s - row.val_s - row.ckpt_s
    elif times:
        row.epoch_s, row.val_s, row.ckpt_s = times[0], epochs.val[0], epochs.ckpt[0]
        row.train_s = row.epoch_s - row.val_s - row.ckpt_s
        row.note = "warm-up epoch only (an upper bound)"
    if row.train_s:
        row.samples_per_s = row.train_samples / row.train_s
    if row.val_s:
        row.val_samples_per_s = row.val_samples / row.val_s
    if row.epoch_s is not None:
        row.overhead_s = max(0.0, fit_s - len(times) * row.epoch_s)
    del trainer, module
    return row


def time_images(binarize: str, precision: str, sizes: Sizes, device: torch.device,
                workdir: Path, tree: Path | None, budget_s: float) -> Timing:
    """Training (and validation) images/s of MobileNet, from GPU memory or the JPEG tree."""
    from bnn_edge.data.imagenet import ImageNetDataModule

    loader = "in memory" if tree is None else "ImageFolder"
    bs = sizes.image_batch
    row = Timing("mobilenet", "mobilenet", binarize, 1, precision, loader, batch_size=bs)
    reset(device)
    clock = Clock(device)
    steps = StepClock(clock, sizes.warmup_steps, sizes.timed_steps)
    module = BNNClassifier("mobilenet", binarize=binarize, aug=1,
                           num_classes=sizes.image_classes, optimizer="sgd", lr=0.1)
    total = sizes.warmup_steps + sizes.timed_steps
    kwargs = dict(max_steps=total, max_time={"seconds": max(budget_s, 1)}, logger=False,
                  enable_checkpointing=False, limit_val_batches=0)
    trainer = trainer_for(device, precision, workdir, [steps], **kwargs)
    if tree is None:
        g = torch.Generator(device=device).manual_seed(0)
        pool = 4 * bs  # a few batches cycled: their values do not change speed
        x = torch.randn(pool, 3, sizes.image_size, sizes.image_size, generator=g,
                        device=device)
        y = torch.randint(0, sizes.image_classes, (pool,), generator=g, device=device)
        trainer.fit(module, train_dataloaders=DeviceBatches(x, y, bs, shuffle=True))
        row.samples_per_s = steps.rate
        val = StepClock(clock, 1, 3)
        trainer_for(device, precision, workdir, [val], logger=False).validate(
            module, dataloaders=DeviceBatches(x, y, bs), verbose=False)
        row.val_samples_per_s = val.rate
        del x, y
    else:
        data = ImageNetDataModule(root=str(tree), image_size=sizes.image_size, batch_size=bs,
                                  num_workers=sizes.workers, pin_memory=device.type == "cuda",
                                  num_classes=sizes.image_classes)
        trainer.fit(module, datamodule=data)
        row.samples_per_s = steps.rate
    row.peak_mem_gib = mem_gib(device)
    row.train_samples = steps.samples
    row.epochs_timed = 0
    if row.samples_per_s is None:
        row.note = f"fewer than {total} steps in {budget_s:.0f} s"
    del trainer, module
    return row


def _write_class(args) -> int:
    """Write the JPEGs of one class folder (smooth random images, like photographs)."""
    from PIL import Image

    root, k, counts, side = args
    rng = np.random.default_rng(k)
    for split, n in counts.items():
        folder = Path(root) / split / f"class{k:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            small = rng.integers(0, 256, (side[1] // 16 + 1, side[0] // 16 + 1, 3), np.uint8)
            image = np.asarray(Image.fromarray(small).resize(side, Image.BICUBIC), np.int16)
            image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(folder / f"{i:03d}.jpg", quality=90)
    return sum(counts.values())


def write_image_tree(root: Path, sizes: Sizes) -> int:
    """A synthetic ImageFolder tree (train/ and val/, ``image_classes`` folders); its size."""
    counts = {"train": sizes.images_per_class, "val": 1}
    jobs = [(str(root), k, counts, sizes.image_side) for k in range(sizes.image_classes)]
    if sizes.workers == 0:
        return sum(map(_write_class, jobs))
    with ProcessPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        return sum(pool.map(_write_class, jobs, chunksize=16))


@dataclass
class Budget:
    """Seconds left to a section and how many configurations still share them."""

    deadline: float
    left: int

    def share(self) -> float:
        return max(0.0, self.deadline - time.perf_counter()) / max(self.left, 1)

    def spent(self) -> bool:
        return time.perf_counter() >= self.deadline


@dataclass
class Plan:
    """The configurations of a section, in the order they are measured."""

    section: str
    runs: list[tuple] = field(default_factory=list)


def plans(sizes: Sizes, sections: tuple[str, ...]) -> list[Plan]:
    """ECG and EEG: each aug over variants x precisions (cheap augs first), then the host
    DataLoader row; MobileNet: in-memory rows, then the ImageFolder ones."""
    out = []
    for section, augs, variants in (("ecg", sizes.ecg_augs, BINARIZE_CHOICES),
                                    ("eeg", sizes.eeg_augs, sizes.eeg_variants)):
        if section in sections:
            runs = [(b, a, p, True) for a in augs for p in PRECISIONS for b in variants]
            runs.append(("classifier" if "classifier" in variants else variants[0], augs[0],
                         PRECISIONS[0], False))
            out.append(Plan(section, runs))
    if "mobilenet" in sections:
        runs = [(b, 1, p, False) for p in PRECISIONS for b in BINARIZE_CHOICES]
        runs += [(b, 1, p, True) for p in PRECISIONS for b in sizes.pipeline_variants]
        out.append(Plan("mobilenet", runs))
    return out


def measure(sizes: Sizes, sections: tuple[str, ...], device: torch.device, budget_s: float,
            workdir: Path, echo=print) -> list[Timing]:
    """Every configuration of ``sections``, each section within its share of ``budget_s``."""
    start = time.perf_counter()
    todo = plans(sizes, sections)
    rows: list[Timing] = []
    for i, plan in enumerate(todo):
        left = budget_s - (time.perf_counter() - start)
        section_s = left * SHARES[plan.section] / sum(SHARES[p.section] for p in todo[i:])
        budget = Budget(time.perf_counter() + section_s, len(plan.runs))
        echo(f"[{plan.section}] {len(plan.runs)} configurations in {section_s:.0f} s")
        shape = {"ecg": (12, 750), "eeg": (64, 960)}.get(plan.section)
        n = {"ecg": sizes.ecg_trials, "eeg": sizes.eeg_trials}.get(plan.section)
        data = {}
        tree = None
        for binarize, aug, precision, flag in plan.runs:
            if budget.spent():
                rows.append(Timing(plan.section, plan.section, binarize, aug, precision,
                                   "-", note="skipped: section time budget spent"))
                budget.left -= 1
                continue
            share = budget.share()
            try:
                if plan.section == "mobilenet":
                    if flag and tree is None:
                        tree = workdir / "imagefolder"
                        t0 = time.perf_counter()
                        count = write_image_tree(tree, sizes)
                        echo(f"  wrote {count} JPEGs in {time.perf_counter() - t0:.1f} s")
                    row = time_images(binarize, precision, sizes, device, workdir,
                                      tree if flag else None, share)
                else:
                    if flag not in data:
                        data[flag] = RandomTrials(shape, n, batch_size=sizes.batch_size,
                                                  on_device=flag, seed=0)
                        data[flag].setup("fit")
                    row = time_task(plan.section, plan.section, binarize, aug, precision,
                                    data[flag], sizes, device, share, workdir)
            except Exception as e:  # one failing configuration must not cost the others
                reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
                row = Timing(plan.section, plan.section, binarize, aug, precision, "-",
                             note=f"failed: {type(e).__name__}: {reason}")
                reset(device)
            budget.left -= 1
            rows.append(row)
            echo("  " + short(row))
    return rows


def short(row: Timing) -> str:
    """One console line per configuration."""
    def f(v, unit="", digits=3):
        return "n/a" if v is None else f"{v:.{digits}g}{unit}"

    return (f"{row.network} {row.binarize} aug{row.aug} {row.precision} {row.loader}: "
            f"epoch {f(row.epoch_s, ' s')}, {f(row.samples_per_s, '/s', 4)}, "
            f"peak {f(row.peak_mem_gib, ' GiB')}" + (f" [{row.note}]" if row.note else ""))


def projections(rows: list[Timing]) -> list[dict]:
    """Rows of ``gpu_projection.csv``: every cell of every protocol, per precision."""
    out = []

    def add(protocol, precision, rate, epoch_s, overhead_s=None):
        proj = project(PROTOCOLS[protocol], epoch_s, overhead_s, precision)
        for c in proj.cells:
            out.append({"protocol": PROTOCOLS[protocol].title, "precision": precision,
                        "rate": rate, "variant": c.variant, "aug": c.aug, "epoch_s": c.epoch_s,
                        "how": c.how, "runs": proj.protocol.runs,
                        "epochs": proj.protocol.epochs, "overhead_s": c.overhead_s,
                        "gpu_hours": c.hours})
        return proj

    for precision in PRECISIONS:
        for protocol, network in (("fig7_ecg", "ecg"), ("table3_eeg", "eeg")):
            mine = [r for r in rows if r.network == network and r.precision == precision
                    and r.loader == "on_device" and r.epoch_s is not None]
            if any(r.network == network for r in rows):
                setup = {(r.binarize, r.aug): r.overhead_s or 0.0 for r in mine}
                add(protocol, precision, "measured epochs",
                    {(r.binarize, r.aug): r.epoch_s for r in mine}, setup)
                add(protocol, precision, "measured epochs less checkpoint writes",
                    {(r.binarize, r.aug): r.epoch_s - (r.ckpt_s or 0.0) for r in mine}, setup)
        for loader, rate in (("in memory", "GPU-bound (batches in GPU memory)"),
                             ("ImageFolder", "this machine's JPEG pipeline")):
            mine = [r for r in rows if r.network == "mobilenet" and r.precision == precision
                    and r.loader == loader and r.samples_per_s]
            if mine:
                add("mobilenet", precision, rate,
                    {(r.binarize, 1): imagenet_epoch_seconds(
                        r.samples_per_s, r.val_samples_per_s or None) for r in mine})
    return out


def summary(proj_rows: list[dict]) -> list[dict]:
    """One line per (protocol, precision, rate): total GPU-hours and the estimated cells."""
    groups: dict[tuple, list[dict]] = {}
    for r in proj_rows:
        groups.setdefault((r["protocol"], r["precision"], r["rate"]), []).append(r)
    lines = []
    for (protocol, precision, rate), cells in groups.items():
        hours = [c["gpu_hours"] for c in cells]
        known = [h for h in hours if h is not None]
        estimated = sorted({(c["how"], c["aug"]) for c in cells
                            if c["how"] in ("interpolated", "extrapolated")})
        missing = sorted({(c["variant"], c["aug"]) for c in cells if c["gpu_hours"] is None})
        notes = [f"aug {a} {how}" for how, a in estimated]
        if missing:
            notes.append("not measured: " + ", ".join(f"{v} aug{a}" for v, a in missing))
        lines.append({"protocol": protocol, "precision": precision, "rate": rate,
                      "cells": len(cells),
                      "gpu_hours": None if missing else sum(known),
                      "known_hours": sum(known), "notes": "; ".join(notes)})
    return lines


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown_table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def environment(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    cudnn = torch.backends.cudnn.version() if device.type == "cuda" else None
    return (f"{name or 'CPU'}; torch {torch.__version__}, lightning {L.__version__}, cuDNN "
            f"{cudnn}, {os.cpu_count()} CPUs, python {platform.python_version()}")


def report(rows: list[Timing], device: torch.device, sizes: Sizes, wall_s: float,
           tests_line: str | None, dry_run: bool) -> str:
    """The markdown of ``gpu_bench.md``: timings, protocol totals, how they were had."""
    timing_head = ["network", "binarize", "aug", "precision", "loader", "train samples",
                   "epoch s", "of which checkpoints s", "train samples/s", "val samples/s",
                   "peak GiB", "run set-up s", "note"]
    timing_rows = [[r.network, r.binarize, r.aug, r.precision, r.loader, r.train_samples,
                    r.epoch_s, r.ckpt_s, r.samples_per_s, r.val_samples_per_s,
                    r.peak_mem_gib, r.overhead_s, r.note] for r in rows]
    proj = projections(rows)
    sums = summary(proj)
    head = ["protocol", "precision", "from", "cells", "GPU-hours", "notes"]
    sum_rows = [[s["protocol"], s["precision"], s["rate"], s["cells"],
                 s["gpu_hours"] if s["gpu_hours"] is not None else
                 f"> {s['known_hours']:.3g} (incomplete)", s["notes"]] for s in sums]
    protos = "; ".join(f"{p.title}: {p.describe()}" for p in PROTOCOLS.values())
    lines = [
        "# GPU timings" + (" (dry run: tiny CPU sizes, not GPU figures)" if dry_run else ""),
        "",
        f"Device: {environment(device)}. Wall time of the timings: {wall_s:.0f} s.",
    ]
    if tests_line:
        lines += ["", f"GPU-marked tests (`pytest -m gpu`): {tests_line}"]
    lines += [
        "", "## Epochs and throughput", "",
        f"ECG {sizes.ecg_trials} and EEG {sizes.eeg_trials} random trials of the tasks' "
        f"shapes, fold 0 of 5, batch {sizes.batch_size}; an epoch is training plus validation "
        f"plus the checkpoints (best and last.ckpt, model and Adam state) and metrics.csv, "
        f"the median over the epochs after the first; train samples/s counts the training "
        f"part alone; 'run set-up' is the rest of a fit's wall time (building, the first "
        f"epoch's warm-up beyond a steady one, teardown). MobileNet: batch "
        f"{sizes.image_batch} at {sizes.image_size} px, {sizes.timed_steps} steps timed after "
        f"{sizes.warmup_steps} (train samples: the images timed).",
        "", markdown_table(timing_head, timing_rows),
        "", "## The paper's protocols on one GPU", "",
        f"{protos}. Runs one after another on one device; the final test pass of each run is "
        f"not counted. Augs not measured take their epoch time by linear interpolation "
        f"between the measured augs (an upper bound where time grows faster than linearly "
        f"with aug) or linear extrapolation; the notes name them.",
        "", markdown_table(head, sum_rows),
    ]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, columns, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else
                             (repr(row[k]) if isinstance(row[k], float) else row[k])
                             for k in columns})


def tests_summary(log: Path | None) -> str | None:
    """The last line of a pytest log (its ``N passed, M skipped in T s`` summary)."""
    if log is None or not log.is_file():
        return None
    lines = [line.strip("= ").strip() for line in log.read_text(errors="replace").splitlines()
             if line.strip()]
    return lines[-1] if lines else "empty log"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_bench",
                        help="folder for gpu_bench.md, gpu_timings.csv, gpu_projection.csv")
    parser.add_argument("--budget-s", type=float, default=540.0,
                        help="seconds for all timings together (default 540)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated: " + ", ".join(SECTIONS))
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny CPU timings of every code path (seconds; not GPU figures)")
    parser.add_argument("--tests-log", type=Path, default=None,
                        help="a pytest log whose summary line goes into gpu_bench.md")
    args = parser.parse_args(argv)
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        parser.error(f"--sections: {', '.join(unknown) or 'none given'} (expected "
                     f"{', '.join(SECTIONS)})")
    if args.budget_s <= 0 or not math.isfinite(args.budget_s):
        parser.error("--budget-s must be a positive number of seconds")
    if not args.dry_run and not torch.cuda.is_available():
        print("error: benchmarks/gpu.py needs a CUDA device (torch.cuda.is_available() is "
              "False); --dry-run times tiny CPU runs instead", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    sizes = DRY if args.dry_run else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bnn_edge_gpu_") as tmp:
        rows = measure(sizes, sections, device, args.budget_s, Path(tmp))
    wall = time.perf_counter() - t0
    text = report(rows, device, sizes, wall, tests_summary(args.tests_log), args.dry_run)
    (out / "gpu_bench.md").write_text(text)
    write_csv(out / "gpu_timings.csv", TIMING_COLUMNS, [asdict(r) for r in rows])
    write_csv(out / "gpu_projection.csv", PROJECTION_COLUMNS, projections(rows))
    print(text)
    print(f"Wrote {out / 'gpu_bench.md'}, {out / 'gpu_timings.csv'} and "
          f"{out / 'gpu_projection.csv'}")
    failed = [r for r in rows if r.note.startswith(("failed", "skipped"))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
