"""Tiny ImageFolder trees of real photographs (scikit-learn's sample images), for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

PHOTOS = ("china", "flower")
THIRDS = ("left", "middle", "right")
CLASSES = tuple(f"{p}_{t}" for p in PHOTOS for t in THIRDS)


def make_image_folder(root: Path, n_train: int = 8, n_val: int = 3, crop: int = 64,
                      seed: int = 0, splits: tuple[str, ...] = ("train", "val"),
                      by: str = "third") -> Path:
    """An ImageFolder tree of random ``crop`` x ``crop`` JPEG crops of the sample photos.

    ``by="third"``: 6 classes, one per vertical third of each photo; ``by="photo"``: 2
    classes, china and flower. Each split takes its crops from its own band of rows (train
    the top two thirds, val/test the bottom third), so no evaluation pixel is a training one.
    """
    rng = np.random.default_rng(seed)
    images = load_sample_images().images
    counts = {"train": n_train, "val": n_val, "test": n_val}
    regions = (THIRDS if by == "third" else ("",))
    for photo, image in zip(PHOTOS, images, strict=True):
        height, width = image.shape[:2]
        part = width // len(regions)
        for t, name in enumerate(regions):
            for split in splits:
                rows = (0, height * 2 // 3) if split == "train" else (height * 2 // 3, height)
                folder = root / split / (f"{photo}_{name}" if name else photo)
                folder.mkdir(parents=True, exist_ok=True)
                for k in range(counts[split]):
                    r = rng.integers(rows[0], rows[1] - crop)
                    c = rng.integers(t * part, (t + 1) * part - crop)
                    patch = image[r:r + crop, c:c + crop]
                    Image.fromarray(patch).save(folder / f"{k:03d}.jpg", quality=90)
    return root
