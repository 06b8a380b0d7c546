"""ImageNet (or any class-per-folder image set) for MobileNet: ``data.root/{train,val}``.

The layout is torchvision's ``ImageFolder``: one sub-folder per class in ``train/`` and
``val/`` (the same class folder names in both; for ImageNet the 1000 WordNet ids, with the
validation images moved into their class folders). Classes are numbered in sorted folder
order. There is no cross-validation: the split is the folders' (``fold`` 0 of 1).
The test split is ``test/`` when such a folder of class folders exists, otherwise the
validation folder (ImageNet's own test labels are not public, so its results are
reported on ``val/``, as the paper and MobileNet's authors do).

Transforms: training takes a random resized crop (scale 0.08-1, aspect 3/4-4/3) to
``image_size`` and a random horizontal flip; evaluation resizes the short side to
``image_size * 256 / 224`` and takes the centre ``image_size`` square. Both normalise with
the ImageNet channel means and standard deviations.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from bnn_edge.errors import ConfigError, DataError
from bnn_edge.files import write_atomic
from bnn_edge.validation import require_bool, require_int

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
MIN_IMAGE_SIZE = 32  # MobileNet downsamples by 32


def load_rgb(path: str) -> Image.Image:
    """Read one image as RGB; an unreadable file is a DataError naming it."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e


def train_transform(image_size: int) -> v2.Compose:
    """Random resized crop to ``image_size``, random flip, tensor, ImageNet normalisation."""
    return v2.Compose([
        v2.RandomResizedCrop(image_size, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD),
    ])


def eval_transform(image_size: int) -> v2.Compose:
    """Resize the short side to ``image_size * 256 / 224``, centre crop, normalise."""
    return v2.Compose([
        v2.Resize(round(image_size * 256 / 224), antialias=True),
        v2.CenterCrop(image_size),
        v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD),
    ])


def has_class_folders(path: Path) -> bool:
    """Whether ``path`` is a folder with at least one sub-folder (a class)."""
    return path.is_dir() and any(p.is_dir() for p in path.iterdir())


class ImageNetDataModule(L.LightningDataModule):
    """ImageFolder train/val(/test) loaders with the standard ImageNet transforms.

    Options are checked on construction (ConfigError names the option); a missing
    ``root`` or class folder is a DataError naming the path. The class count comes from the
    folders; ``num_classes`` (``model.num_classes`` in the config), when given, must equal
    it, so a 1000-way head is never trained on a 10-class folder by mistake.
    """

    #: the crop size and the class count come from the options and the folders
    trial_shape: tuple[int, ...] = ()

    def __init__(self, root: str | None = None, image_size: int = 224, batch_size: int = 256,
                 num_workers: int = 8, pin_memory: bool = True, num_classes: int | None = None,
                 folds: int = 1, fold: int = 0, seed: int = 0):
        super().__init__()
        require_int("data.image_size", image_size, MIN_IMAGE_SIZE)
        require_int("data.batch_size", batch_size, 2,
                    allowed="an integer >= 2 (batch norm needs two samples)")
        require_int("data.num_workers", num_workers, 0)
        require_bool("data.pin_memory", pin_memory)
        require_int("data.num_classes", num_classes, 2, none_ok=True)
        if folds != 1 or isinstance(folds, bool):
            raise ConfigError("data.folds", folds, "1 (the image folders fix one train/val split)")
        if fold != 0 or isinstance(fold, bool):
            raise ConfigError("data.fold", fold, "0 (the image folders fix one train/val split)")
        if root is None or str(root).strip() == "":
            raise DataError("data.root is not set: pass data.root=PATH, a folder holding "
                            "train/ and val/ with one sub-folder per class")
        self.root = Path(str(root)).expanduser()
        for split in ("train", "val"):
            if not has_class_folders(self.root / split):
                raise DataError(f"{self.root / split}: no class folders there (data.root must "
                                "hold train/ and val/, each with one sub-folder per class)")
        self.image_size, self.batch_size = image_size, batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.folds, self.fold, self.seed = folds, fold, seed
        self.test_dir = self.root / ("test" if has_class_folders(self.root / "test") else "val")
        self._classes = sorted(p.name for p in (self.root / "train").iterdir() if p.is_dir())
        if num_classes is not None and num_classes != len(self._classes):
            raise ConfigError("model.num_classes", num_classes,
                              f"{len(self._classes)} (the class folders of "
                              f"{self.root / 'train'}), or null")
        self.datasets: dict[str, ImageFolder] = {}

    def _folder(self, path: Path, transform) -> ImageFolder:
        try:
            return ImageFolder(str(path), transform=transform, loader=load_rgb)
        except FileNotFoundError as e:  # ImageFolder: no class folder or no image in one
            raise DataError(f"{path}: {e}") from e

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.datasets = {
            "train": self._folder(self.root / "train", train_transform(self.image_size)),
            "val": self._folder(self.root / "val", eval_transform(self.image_size)),
        }
        self.datasets["test"] = (self.datasets["val"] if self.test_dir.name == "val" else
                                 self._folder(self.test_dir, eval_transform(self.image_size)))
        classes = self.datasets["train"].classes
        for name in ("val", "test"):
            if self.datasets[name].classes != classes:
                raise DataError(f"{self.root / name if name == 'val' else self.test_dir}: its "
                                f"class folders differ from those of {self.root / 'train'}")
        if len(self.datasets["train"]) < self.batch_size:
            raise ConfigError("data.batch_size", self.batch_size,
                              f"at most the {len(self.datasets['train'])} training images of "
                              f"{self.root / 'train'} (the last partial batch is dropped)")

    @property
    def classes(self) -> list[str]:
        """The class folder names of ``train/``, in label order (known before setup)."""
        return list(self._classes)

    @property
    def num_classes(self) -> int:
        return len(self._classes)

    def _loader(self, name: str, train: bool) -> DataLoader:
        return DataLoader(self.datasets[name], batch_size=self.batch_size, shuffle=train,
                          drop_last=train, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        # drop_last: a final batch of one image would break the batch norms
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def describe_source(self) -> str:
        return (f"ImageFolder {self.root} ({self.num_classes} classes, "
                f"{self.image_size}x{self.image_size} crops)")

    def summary(self) -> dict:
        """What ``data.json`` records: folder, sizes, class counts, transforms, test source."""
        if not self.datasets:
            raise RuntimeError("call setup() before summary()")
        distinct = {id(d): d for d in self.datasets.values()}.values()
        counts = sum(np.bincount(d.targets, minlength=self.num_classes) for d in distinct)
        return {
            "source": "imagefolder",
            "description": self.describe_source(),
            "root": str(self.root),
            "n_trials": int(counts.sum()),
            "input_shape": [3, self.image_size, self.image_size],
            "classes": list(self.classes),
            "class_counts": {str(c): int(n) for c, n in enumerate(counts)},
            "fold": self.fold,
            "folds": self.folds,
            "split_sizes": {name: len(d) for name, d in self.datasets.items()},
            "test_folder": str(self.test_dir),
            "train_transform": f"RandomResizedCrop({self.image_size}), RandomHorizontalFlip, "
                               "normalise",
            "eval_transform": f"Resize({round(self.image_size * 256 / 224)}), "
                              f"CenterCrop({self.image_size}), normalise",
            "seed": self.seed,
            "cache": "none",
        }

    def write_summary(self, path: Path) -> dict:
        """Write :meth:`summary` as JSON to ``path`` (atomically) and return it."""
        summary = self.summary()
        write_atomic(path, json.dumps(summary, indent=2) + "\n")
        return summary
