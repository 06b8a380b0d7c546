"""The ImageFolder data module on a tiny folder of real photographs (scikit-learn's samples)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bnn_edge.data.imagenet import MEAN, STD, ImageNetDataModule, eval_transform
from bnn_edge.errors import ConfigError, DataError
from tests.helpers.images import CLASSES, make_image_folder

# 2 photographs (china.jpg, flower.jpg, 427 x 640) x 3 vertical thirds = 6 classes


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images"))


def test_folder_layout_and_loaders(image_root):
    dm = ImageNetDataModule(root=str(image_root), image_size=32, batch_size=4, num_workers=0,
                            pin_memory=False, num_classes=6)
    dm.setup("fit")
    assert dm.num_classes == 6 and tuple(dm.classes) == CLASSES
    assert {k: len(d) for k, d in dm.datasets.items()} == {"train": 48, "val": 18, "test": 18}
    assert dm.datasets["test"] is dm.datasets["val"]  # no test/ folder: val is the test split

    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(dm.train_dataloader()) == 12  # 48 / 4, the last partial batch dropped
    loader = dm.val_dataloader()
    assert len(loader) == 5 and loader.batch_size == 4  # 18 images: 4 + 4 + 4 + 4 + 2
    labels = torch.cat([y for _, y in loader])
    assert labels.tolist() == [c for c in range(6) for _ in range(3)]  # unshuffled, sorted


def test_eval_transform_is_the_centre_crop_normalised(image_root):
    path = sorted((image_root / "val" / "flower_middle").iterdir())[0]
    image = Image.open(path).convert("RGB")
    x = eval_transform(56)(image)
    assert x.shape == (3, 56, 56)
    assert torch.equal(x, eval_transform(56)(image))  # deterministic
    # 64 px crop -> resize to 64 (= 56 * 256 / 224) is the identity -> centre 56 x 56
    raw = torch.from_numpy(np.array(image)[4:60, 4:60]).permute(2, 0, 1).float() / 255
    expected = (raw - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    assert torch.allclose(x, expected, atol=1e-5)


def test_loader_options_reach_the_dataloaders(image_root):
    dm = ImageNetDataModule(root=str(image_root), image_size=32, batch_size=8, num_workers=2,
                            pin_memory=True)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.num_workers == 2 and loader.pin_memory and loader.persistent_workers
    assert loader.drop_last and not dm.val_dataloader().drop_last


def test_summary_is_data_json(image_root, tmp_path):
    dm = ImageNetDataModule(root=str(image_root), image_size=48, batch_size=4, num_workers=0)
    dm.setup("fit")
    summary = dm.write_summary(tmp_path / "data.json")
    assert json.loads((tmp_path / "data.json").read_text()) == summary
    assert summary["source"] == "imagefolder" and summary["cache"] == "none"
    assert summary["n_trials"] == 66 and summary["input_shape"] == [3, 48, 48]
    assert summary["class_counts"] == {str(c): 11 for c in range(6)}  # 8 train + 3 val
    assert summary["split_sizes"] == {"train": 48, "val": 18, "test": 18}
    assert summary["fold"] == 0 and summary["folds"] == 1
    assert summary["classes"] == list(CLASSES)
    assert summary["test_folder"] == str(image_root / "val")
    assert summary["description"].startswith(f"ImageFolder {image_root} (6 classes, 48x48")


def test_a_test_folder_is_the_test_split(tmp_path):
    root = make_image_folder(tmp_path / "img", n_train=2, n_val=1,
                             splits=("train", "val", "test"))
    for f in (root / "test" / "china_left").iterdir():  # one test class gets 2 more images
        Image.open(f).save(root / "test" / "china_left" / f"extra_{f.name}")
        Image.open(f).save(root / "test" / "china_left" / f"extra2_{f.name}")
    dm = ImageNetDataModule(root=str(root), image_size=32, batch_size=2, num_workers=0)
    dm.setup("test")
    assert dm.datasets["test"] is not dm.datasets["val"]
    assert len(dm.datasets["test"]) == 8 and len(dm.datasets["val"]) == 6
    summary = dm.summary()
    assert summary["test_folder"] == str(root / "test")
    assert summary["n_trials"] == 12 + 6 + 8
    assert summary["class_counts"]["0"] == 2 + 1 + 3


def test_missing_root_and_folders_are_data_errors(tmp_path, image_root):
    with pytest.raises(DataError, match=r"data\.root is not set"):
        ImageNetDataModule(root=None)
    with pytest.raises(DataError, match=str(tmp_path / "nowhere" / "train")):
        ImageNetDataModule(root=str(tmp_path / "nowhere"))
    only_train = tmp_path / "only_train"
    (only_train / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match=str(only_train / "val")):
        ImageNetDataModule(root=str(only_train))


def test_class_mismatches_are_data_errors(tmp_path, image_root):
    with pytest.raises(ConfigError, match=r"^model\.num_classes=1000 is not allowed: expected 6 "
                                          r"\(the class folders of .*train\), or null$"):
        ImageNetDataModule(root=str(image_root), batch_size=4, num_classes=1000)
    assert ImageNetDataModule(root=str(image_root), batch_size=4).num_classes == 6
    root = make_image_folder(tmp_path / "img", n_train=2, n_val=1)
    (root / "val" / "extra_class").mkdir()
    Image.new("RGB", (40, 40)).save(root / "val" / "extra_class" / "x.png")
    with pytest.raises(DataError, match=f"{root / 'val'}: its class folders differ"):
        ImageNetDataModule(root=str(root), batch_size=2).setup("fit")
    (root / "val" / "extra_class" / "x.png").unlink()  # an empty class folder
    with pytest.raises(DataError, match=str(root / "val")):
        ImageNetDataModule(root=str(root), batch_size=2).setup("fit")


def test_a_corrupt_image_is_a_data_error_naming_it(tmp_path):
    root = make_image_folder(tmp_path / "img", n_train=2, n_val=1)
    bad = root / "val" / "china_left" / "000.jpg"
    bad.write_bytes(b"not a jpeg")
    dm = ImageNetDataModule(root=str(root), image_size=32, batch_size=2, num_workers=0,
                            pin_memory=False)
    dm.setup("fit")
    with pytest.raises(DataError, match=f"{bad}: not a readable image"):
        next(iter(dm.val_dataloader()))


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"image_size": 16}, "data.image_size=16"),
    ({"image_size": 64.0}, "data.image_size=64.0"),
    ({"batch_size": 1}, "data.batch_size=1"),
    ({"num_workers": -1}, "data.num_workers=-1"),
    ({"pin_memory": "yes"}, "data.pin_memory='yes'"),
    ({"num_classes": 1}, "data.num_classes=1"),
    ({"fold": 2}, "data.fold=2"),
    ({"folds": 5}, "data.folds=5"),
])
def test_bad_options_are_config_errors(kwargs, option, image_root):
    with pytest.raises(ConfigError, match=rf"^{option} is not allowed"):
        ImageNetDataModule(root=str(image_root), **kwargs)


def test_batch_larger_than_the_training_set_is_refused(image_root):
    dm = ImageNetDataModule(root=str(image_root), batch_size=64)
    with pytest.raises(ConfigError, match=r"data.batch_size=64 is not allowed: expected at most "
                                          r"the 48 training images"):
        dm.setup("fit")
