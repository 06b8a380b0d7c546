"""What every task's data module shares: k-fold splits, loaders and the ``data.json`` record.

Split protocol (deterministic for a seed, stratified by class): a held-out **test**
split of ``test_fraction`` of each class is set aside first and never changes with the
fold; the remaining trials are dealt round-robin, class by class, into ``folds`` folds.
Fold ``fold`` validates, the others train. So every fold of a cross-validation run is
tested on the same held-out trials, and the k validation folds partition the rest.

With ``groups`` (a subject or patient id per trial) whole groups are dealt instead of
trials, so no group is in two of train, validation and test.

Augmentation: with ``noise_std > 0`` every training batch gets fresh Gaussian noise of that
standard deviation (in the units of the stored signals) each time it is drawn; validation
and test trials are never altered.

Loading: by default each split is served by a DataLoader from host memory. With
``on_device=True`` the splits are moved once to the trainer's device (a GPU: the ECG and EEG
sets fit many times over) and batches are index slices of those tensors
(:class:`DeviceBatches`): no workers, no per-batch host-to-device copy.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset, default_collate

from bnn_edge.errors import ConfigError, DataError
from bnn_edge.files import write_atomic
from bnn_edge.validation import require_bool, require_int, require_number


@dataclass
class Arrays:
    """A task's trials: signals ``x`` (n, ...), integer labels ``y`` (n,), and provenance.

    ``groups`` (n,), when set, makes the split keep each group (subject, patient) whole.
    """

    x: np.ndarray
    y: np.ndarray
    info: dict = field(default_factory=dict)
    groups: np.ndarray | None = None


@dataclass(frozen=True)
class Split:
    """Indices of the train, validation and test trials."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def kfold_split(labels: np.ndarray, folds: int, fold: int, test_fraction: float,
                seed: int, groups: np.ndarray | None = None) -> Split:
    """Deterministic held-out test split plus k folds (see module docstring).

    Stratified by class without ``groups``; with ``groups``, whole groups are dealt.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if groups is not None:
        groups = np.asarray(groups)
        ids = rng.permutation(np.unique(groups))
        n_test = int(round(test_fraction * len(ids)))
        fold_of = np.full(len(ids), -1)
        fold_of[n_test:] = np.arange(len(ids) - n_test) % folds
        group_fold = dict(zip(ids.tolist(), fold_of.tolist(), strict=True))
        trial_fold = np.array([group_fold[g] for g in groups.tolist()])
        return Split(np.flatnonzero((trial_fold >= 0) & (trial_fold != fold)),
                     np.flatnonzero(trial_fold == fold), np.flatnonzero(trial_fold < 0))
    train, val, test = [], [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        rest = idx[n_test:]
        in_val = (np.arange(len(rest)) % folds) == fold
        val.append(rest[in_val])
        train.append(rest[~in_val])
    return Split(*(np.sort(np.concatenate(parts)) for parts in (train, val, test)))


def check_trials(arrays: dict[str, np.ndarray], where, trial_shape: tuple[int, ...],
                 num_classes: int, per_trial: tuple[str, ...] = ()) -> None:
    """DataError naming ``where`` unless ``arrays`` hold the task's trials as trained on.

    ``x`` (n, *trial_shape) of numbers that stay finite as float32, ``y`` (n,) integer
    labels in [0, num_classes) with at least two classes, and each ``per_trial`` array an
    integer vector of n values. Cached and freshly built arrays get the same check.
    """
    for key in ("x", "y", *per_trial):
        if key not in arrays:
            raise DataError(f"{where}: the array {key!r} is missing")
    x, y = arrays["x"], arrays["y"]
    expected = "(n, " + ", ".join(map(str, trial_shape)) + ")"
    if x.ndim != 1 + len(trial_shape) or tuple(x.shape[1:]) != tuple(trial_shape):
        raise DataError(f"{where}: x has shape {x.shape}, expected {expected}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{where}: x holds {x.dtype}, expected real numbers")
    with np.errstate(over="ignore"):
        bad = np.count_nonzero(~np.isfinite(x.astype(np.float32, copy=False)))
    if bad:
        raise DataError(f"{where}: x holds {bad} values that are NaN or Inf as float32")
    if y.shape != (len(x),):
        raise DataError(f"{where}: y has shape {y.shape}, expected ({len(x)},), one label "
                        f"per trial")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: y holds {y.dtype}, expected integer labels")
    outside = np.unique(y[(y < 0) | (y >= num_classes)])
    if len(outside):
        raise DataError(f"{where}: labels {outside[:5].tolist()} outside 0..{num_classes - 1}")
    if len(np.unique(y)) < 2:
        raise DataError(f"{where}: every trial has label {int(y[0]) if len(y) else None}; "
                        f"the task needs at least two classes")
    for key in per_trial:
        a = arrays[key]
        if a.shape != (len(x),) or not np.issubdtype(a.dtype, np.integer):
            raise DataError(f"{where}: {key} has shape {a.shape} ({a.dtype}), expected "
                            f"({len(x)},) integers, one per trial")


class AddGaussianNoise:
    """A collate function: stack a batch, then add N(0, std^2) noise to the signals.

    Noise comes from torch's global generator (seeded by ``seed_everything``; each loader
    worker is seeded by Lightning), so a seeded run draws the same noise every time.
    """

    def __init__(self, std: float):
        self.std = float(std)

    def __call__(self, batch):
        x, y = default_collate(batch)
        return x + self.std * torch.randn_like(x), y


def check_noise_std(noise_std) -> None:
    """``data.noise_std`` must be a number >= 0 (0 switches augmentation off)."""
    require_number("data.noise_std", noise_std, 0, allowed="a number >= 0 (0: no noise)")


def _seed_of(*words: int) -> int:
    """One 63-bit generator seed from several integers (distinct tuples, distinct streams)."""
    state = np.random.SeedSequence([int(w) for w in words]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


class EpochOrder:
    """The trial order of one epoch: a seeded permutation (or 0..n-1), this rank's share.

    The permutation of epoch ``e`` is drawn on the CPU from ``(seed, e)`` alone, so it is the
    same on every device and every rank. Lightning calls ``set_epoch`` on a loader's
    ``sampler`` at each epoch start, so a resumed run continues with the right order; each
    pass of :class:`DeviceBatches` also moves on to the next epoch by itself. With
    ``num_replicas > 1`` the order is padded with its first trials to a multiple of the
    replicas and rank ``r`` takes every ``num_replicas``-th trial from ``r``, as torch's
    DistributedSampler does.
    """

    def __init__(self, n: int, shuffle: bool, seed: int, num_replicas: int = 1, rank: int = 0):
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> torch.Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(_seed_of(self.seed, self.epoch))
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        if self.num_replicas > 1:
            total = -(-self.n // self.num_replicas) * self.num_replicas
            order = torch.cat([order, order[:total - self.n]]) if total > self.n else order
            order = order[self.rank::self.num_replicas]
        return order

    def __len__(self) -> int:
        return -(-self.n // self.num_replicas)

    def __iter__(self):
        return iter(self.indices().tolist())


class DeviceBatches:
    """(x, y) batches sliced from tensors that stay on their device, in :class:`EpochOrder`.

    What a DataLoader over a TensorDataset gives (same batch count, last batch partial), with
    no worker and no host copy: unshuffled batches are views, shuffled ones one
    ``index_select`` on the device. ``noise_std > 0`` adds N(0, std^2) to every batch, drawn on
    the device from a generator seeded by (seed, epoch, rank), so a seeded run repeats.
    ``drop_single``: a last batch of one trial is left out (as the DataLoader's
    ``drop_last`` would, only then).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
                 noise_std: float = 0.0, seed: int = 0, num_replicas: int = 1, rank: int = 0,
                 drop_single: bool = False):
        self.dataset = TensorDataset(x, y)
        self.batch_size, self.noise_std = batch_size, float(noise_std)
        self.drop_single = drop_single
        self.sampler = EpochOrder(len(x), shuffle, seed, num_replicas, rank)
        self.batch_sampler = None  # what Lightning's loader checks read on a DataLoader

    @property
    def device(self) -> torch.device:
        return self.dataset.tensors[0].device

    def _count(self) -> int:
        """The trials the batches hold (a single last one left out with ``drop_single``)."""
        count = len(self.sampler)
        single = self.drop_single and count > 1 and count % self.batch_size == 1
        return count - 1 if single else count

    def __len__(self) -> int:
        return -(-self._count() // self.batch_size)

    def __iter__(self):
        x, y = self.dataset.tensors
        order, bs = self.sampler, self.batch_size
        noise = None
        if self.noise_std > 0:
            noise = torch.Generator(device=x.device)
            noise.manual_seed(_seed_of(order.seed, order.epoch, order.rank, 1))
        index = None
        if order.shuffle or order.num_replicas > 1:
            index = order.indices().to(x.device)
        count = self._count()
        order.set_epoch(order.epoch + 1)  # the next pass differs, also where no one sets it
        for start in range(0, count, bs):
            if index is None:
                xb, yb = x[start:start + bs], y[start:start + bs]
            else:
                rows = index[start:start + bs]
                xb, yb = x.index_select(0, rows), y.index_select(0, rows)
            if noise is not None:
                xb = xb + self.noise_std * torch.randn(xb.shape, generator=noise,
                                                       device=x.device, dtype=xb.dtype)
            yield xb, yb


def check_split_options(folds, fold, test_fraction, batch_size, num_workers,
                        on_device=False) -> None:
    """Validate the options every data module shares; ConfigError names the bad one."""
    require_int("data.folds", folds, 2)
    require_int("data.fold", fold, 0, folds - 1,
                allowed=f"an integer in [0, {folds - 1}] (data.folds={folds})")
    require_number("data.test_fraction", test_fraction, 0, 1, high_open=True)
    require_int("data.batch_size", batch_size, 1)
    require_int("data.num_workers", num_workers, 0)
    require_bool("data.on_device", on_device)
    if on_device and num_workers:
        raise ConfigError("data.num_workers", num_workers,
                          "0 with data.on_device=true (batches are sliced on the device)")


class ArrayDataModule(L.LightningDataModule, ABC):
    """A data module over in-memory arrays with the project's split protocol.

    Subclasses implement :meth:`load` (build or read the trials, typically via the
    cache) and :meth:`describe_source` (one line saying which data this is), and set
    :attr:`num_classes`, the label count of the task, known before any data is loaded.
    """

    num_classes: int = 2
    trial_shape: tuple[int, ...] = ()

    def __init__(self, folds: int = 5, fold: int = 0, test_fraction: float = 0.2,
                 batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 noise_std: float = 0.0, on_device: bool = False):
        super().__init__()
        check_split_options(folds, fold, test_fraction, batch_size, num_workers, on_device)
        check_noise_std(noise_std)
        self.folds, self.fold, self.test_fraction = folds, fold, test_fraction
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.noise_std = float(noise_std)
        self.on_device = on_device
        self.arrays: Arrays | None = None
        self.split: Split | None = None
        self._device_splits: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}

    @abstractmethod
    def load(self) -> Arrays:
        """Build or read every trial of the task."""

    @abstractmethod
    def describe_source(self) -> str:
        """One line naming the data source, for the console and ``data.json``."""

    def setup(self, stage: str | None = None) -> None:
        if self.arrays is not None:
            return
        self.arrays = self.load()
        self.split = self.make_split()
        x = torch.from_numpy(np.ascontiguousarray(self.arrays.x, dtype=np.float32))
        y = torch.from_numpy(self.arrays.y.astype(np.int64))
        self.datasets = {name: TensorDataset(x[idx], y[idx])
                         for name, idx in vars(self.split).items()}

    def categories(self, split: str) -> list[str] | None:
        """A name per trial of ``split`` to report accuracy by (None: the task has none)."""
        return None

    def make_split(self) -> Split:
        """The train/val/test indices of the loaded trials (the module docstring's protocol)."""
        return kfold_split(self.arrays.y, self.folds, self.fold, self.test_fraction, self.seed,
                           groups=self.arrays.groups)

    def _loader(self, name: str, shuffle: bool, collate_fn=None) -> DataLoader:
        # training: a last batch of a single trial would stop every batch norm ("expected
        # more than 1 value per channel"); it is left out (another one each shuffled epoch)
        n = len(self.datasets[name])
        single = name == "train" and n > 1 and n % self.batch_size == 1
        return DataLoader(self.datasets[name], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, collate_fn=collate_fn,
                          persistent_workers=self.num_workers > 0, drop_last=single)

    def device(self) -> torch.device:
        """Where ``on_device`` keeps the splits: the attached trainer's device, else the CPU."""
        trainer = self.trainer
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def device_batches(self, name: str, shuffle: bool = False,
                       noise_std: float = 0.0) -> DeviceBatches:
        """Batches of split ``name`` from its tensors on :meth:`device`, moved there once.

        Under DDP only the training split is sharded (each rank its share, as Lightning's
        DistributedSampler would); validation and test give every rank the whole split, whose
        metrics then agree on all ranks.
        """
        device = self.device()
        key = (name, str(device))
        if key not in self._device_splits:
            x, y = self.datasets[name].tensors
            self._device_splits[key] = (x.to(device), y.to(device))
        trainer = self.trainer
        replicas, rank = ((trainer.world_size, trainer.global_rank)
                          if trainer is not None and name == "train" else (1, 0))
        return DeviceBatches(*self._device_splits[key], self.batch_size, shuffle=shuffle,
                             noise_std=noise_std, seed=self.seed, num_replicas=replicas,
                             rank=rank, drop_single=name == "train")

    def train_dataloader(self) -> DataLoader | DeviceBatches:
        if self.on_device:
            return self.device_batches("train", shuffle=True, noise_std=self.noise_std)
        noise = AddGaussianNoise(self.noise_std) if self.noise_std > 0 else None
        return self._loader("train", shuffle=True, collate_fn=noise)

    def val_dataloader(self) -> DataLoader | DeviceBatches:
        return self.device_batches("val") if self.on_device else self._loader("val", False)

    def test_dataloader(self) -> DataLoader | DeviceBatches:
        return self.device_batches("test") if self.on_device else self._loader("test", False)

    def summary(self) -> dict:
        """What ``data.json`` records: source, sizes, class counts and the split."""
        if self.arrays is None:
            raise RuntimeError("call setup() before summary()")
        y = self.arrays.y
        classes, counts = np.unique(y, return_counts=True)
        return {
            "source": self.arrays.info.get("source"),
            "description": self.describe_source(),
            "n_trials": int(len(y)),
            "input_shape": list(self.arrays.x.shape[1:]),
            "class_counts": {str(int(c)): int(n) for c, n in zip(classes, counts, strict=True)},
            "fold": self.fold,
            "folds": self.folds,
            "test_fraction": self.test_fraction,
            "split_sizes": {name: int(len(idx)) for name, idx in vars(self.split).items()},
            "seed": self.seed,
            "noise_std": self.noise_std,
            "on_device": self.on_device,
            **{k: v for k, v in self.arrays.info.items() if k != "source"},
        }

    def write_summary(self, path: Path) -> dict:
        """Write :meth:`summary` as JSON to ``path`` (atomically) and return it."""
        summary = self.summary()
        write_atomic(path, json.dumps(summary, indent=2) + "\n")
        return summary
