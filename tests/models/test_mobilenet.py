"""MobileNet V1: published parameter counts, the binarized variants, training end to end."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from bnn_edge.errors import ConfigError, DataError
from bnn_edge.experiment.training import train
from bnn_edge.lit.module import BNNClassifier, cosine_factor, module_options
from bnn_edge.models.mobilenet import BLOCKS, PUBLISHED_PARAMETERS
from bnn_edge.nn import BinaryConv2d, BinaryLinear, binary_layers
from bnn_edge.tasks import build_network
from tests.conftest import run_cli
from tests.helpers.images import make_image_folder
from tests.helpers.params import layer_parameters, trainable_parameters
from tests.helpers.runs import compose_app, read_metrics

CONV_WEIGHTS = 3_185_088  # "3.2M parameters in convolutions" (paper, section IV)
BN_FEATURES = 21_888  # batch-norm scales and shifts of the conv part
FIRST_CONV = 3 * 3 * 3 * 32
BINARY_CLASSIFIER = 1024 * 2816 + 2816 * 1000


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convolutions on shared cores run several times faster on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def binary_weights(net: nn.Module) -> int:
    return sum(m.weight.numel() for _, m in binary_layers(net))


def test_published_parameter_count():
    net = build_network("mobilenet", "none", 1, num_classes=1000)
    assert trainable_parameters(net) == PUBLISHED_PARAMETERS == 4_231_976
    assert layer_parameters(net.features, (nn.Conv2d,))["total"] == CONV_WEIGHTS
    assert trainable_parameters(net.features) == CONV_WEIGHTS + BN_FEATURES
    assert trainable_parameters(net.classifier) == 1024 * 1000 + 1000 == 1_025_000
    assert binary_layers(net) == []
    assert sum(isinstance(m, nn.Conv2d) for m in net.features) == 27  # 1 + 13 x (dw + pw)


def test_binarized_classifier_holds_the_papers_binary_weights():
    net = build_network("mobilenet", "classifier", 1, num_classes=1000)
    layers = binary_layers(net)
    assert [name for name, _ in layers] == ["classifier.3", "classifier.6"]
    assert [tuple(m.weight.shape) for _, m in layers] == [(2816, 1024), (1000, 2816)]
    assert all(m.bias is None for _, m in layers)  # the batch norm after each holds the shift
    assert binary_weights(net) == BINARY_CLASSIFIER == 5_699_584
    # the conv part is the real network's, unchanged
    assert trainable_parameters(net.features) == CONV_WEIGHTS + BN_FEATURES
    assert trainable_parameters(net.classifier) == 5_699_584 + 2 * 2816 + 2 * 1000
    assert trainable_parameters(net) == 8_914_192
    assert isinstance(net.features[-1], nn.BatchNorm2d)  # no ReLU before pool -> sign


def test_full_binarization_keeps_only_the_first_conv_real():
    net = build_network("mobilenet", "full", 1, num_classes=1000)
    layers = binary_layers(net)
    assert len(layers) == 26 + 2
    assert type(net.features[0]) is nn.Conv2d
    assert sum(isinstance(m, BinaryConv2d) for m in net.features) == 26
    assert binary_weights(net) == (CONV_WEIGHTS - FIRST_CONV) + BINARY_CLASSIFIER == 8_883_808
    assert trainable_parameters(net) == 8_914_192


def reference_count(aug: int, num_classes: int, hidden: int | None) -> int:
    """Trainable parameters from the MobileNet table: convs, batch norms, classifier."""
    c = 32 * aug
    total = 27 * c + 2 * c
    for filters, _ in BLOCKS:
        f = filters * aug
        total += 9 * c + 2 * c + c * f + 2 * f
        c = f
    if hidden is None:
        return total + c * num_classes + num_classes
    return total + c * hidden + 2 * hidden + hidden * num_classes + 2 * num_classes


@pytest.mark.parametrize(("binarize", "aug", "num_classes", "hidden"), [
    ("none", 4, 1000, None), ("full", 4, 1000, 2816), ("classifier", 2, 10, 100),
])
def test_aug_num_classes_and_hidden_set_the_widths(binarize, aug, num_classes, hidden):
    kwargs = {} if hidden is None else {"hidden": hidden}
    with torch.device("meta"):  # shapes only: aug=4 full has 5e7 weights
        net = build_network("mobilenet", binarize, aug, num_classes=num_classes, **kwargs)
    assert trainable_parameters(net) == reference_count(aug, num_classes, hidden)
    assert net.feature_channels == 1024 * aug
    assert net.features[0].out_channels == 32 * aug
    if hidden is not None:
        first, last = (m for _, m in binary_layers(net)[-2:])
        assert tuple(first.weight.shape) == (hidden, 1024 * aug)
        assert tuple(last.weight.shape) == (num_classes, hidden)


def test_any_input_size_from_32_and_binary_layers_see_binary_inputs():
    torch.manual_seed(0)
    seen: dict[str, torch.Tensor] = {}
    net = build_network("mobilenet", "full", 1, num_classes=1000).eval()
    for name, module in binary_layers(net):
        module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, i[0]))
    with torch.no_grad():
        assert net.features(torch.randn(1, 3, 224, 224)).shape == (1, 1024, 7, 7)
        assert net(torch.randn(2, 3, 224, 224)).shape == (2, 1000)
        assert net.features(torch.randn(1, 3, 32, 32)).shape == (1, 1024, 1, 1)
    assert len(seen) == 28
    for name, x in seen.items():
        assert set(x.unique().tolist()) == {-1.0, 1.0}, name


def module_opts(**values):
    return module_options(OmegaConf.create({"name": "mobilenet", **values}))


def test_optimizer_options_default_to_adam():
    assert module_opts() == {"optimizer": "adam", "momentum": 0.9, "nesterov": False,
                             "lr_schedule": "none", "warmup_epochs": 0, "net_options": None,
                             "threshold_init": None, "threshold_lr": None}
    assert isinstance(BNNClassifier("ecg").configure_optimizers(), torch.optim.Adam)
    assert module_opts(hidden=64)["net_options"] == {"hidden": 64}


@pytest.mark.parametrize(("values", "message"), [
    ({"optimizer": "rmsprop"}, "model.optimizer='rmsprop' is not allowed: expected one of adam"),
    ({"momentum": 1.0}, "model.momentum=1.0 is not allowed"),
    ({"nesterov": "yes"}, "model.nesterov='yes' is not allowed"),
    ({"lr_schedule": "step"}, "model.lr_schedule='step' is not allowed: expected one of none"),
    ({"warmup_epochs": -1}, "model.warmup_epochs=-1 is not allowed"),
    ({"hidden": 0}, "model.hidden=0 is not allowed: expected an integer >= 1"),
])
def test_bad_optimizer_options_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        module_opts(**values)


def test_cosine_schedule_with_warmup():
    assert [cosine_factor(s, 10, 2) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert cosine_factor(6, 10, 2) == pytest.approx(0.5)
    assert cosine_factor(10, 10, 2) == 0.0 and cosine_factor(12, 10, 2) == 0.0
    assert cosine_factor(3, 4, 0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 4)))


@pytest.fixture(scope="module")
def six_classes(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("six"), n_train=4, n_val=2)




def tiny_overrides(root: Path, out: Path, num_classes: int | None = 6) -> list[str]:
    classes = [] if num_classes is None else [f"model.num_classes={num_classes}"]
    return ["model=mobilenet", f"data.root={root}", "data.image_size=32", "data.batch_size=8",
            "data.num_workers=0", "data.pin_memory=false", *classes,
            "callbacks.rich_progress_bar=null", "trainer.enable_model_summary=false",
            "trainer.accelerator=cpu", f"paths.output_dir={out}"]




EXPECTED_BINARY = {"none": 0, "classifier": 2, "full": 28}


@pytest.mark.parametrize("binarize", ["none", "classifier", "full"])
def test_variants_train_on_the_tiny_folder(binarize, six_classes, tmp_path):
    """One SGD epoch (3 steps of 8 images at 32 x 32) per variant; classifier via the CLI."""
    run_dir = tmp_path / "run"
    opts = ["model.lr=0.01", "model.warmup_epochs=0.5", "trainer.max_epochs=1"]
    if binarize == "classifier":  # as a user runs it: the class count comes from the data
        proc = run_cli("bnn_edge.train", f"binarize={binarize}", *tiny_overrides(
            six_classes, run_dir, num_classes=None)[:-1], *opts, f"hydra.run.dir={run_dir}",
                       env={"OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip().splitlines()[-1].startswith(
            "Done: mobilenet binarize=classifier aug=1 fold=0")
        results = json.loads((run_dir / "results.json").read_text())
    else:
        results = train(compose_app("train", f"binarize={binarize}",
                                      *tiny_overrides(six_classes, run_dir), *opts),
                        echo=lambda *_: None)
    assert results["model"] == "mobilenet" and results["epochs"] == 1
    assert results["data_source"] == "imagefolder" and results["folds"] == 1
    assert 0 <= results["test_acc"] <= results["test_acc_top5"] <= 1
    assert 0 <= results["val_acc"] <= results["val_acc_top5"] <= 1

    data = json.loads((run_dir / "data.json").read_text())
    assert data["split_sizes"] == {"train": 24, "val": 12, "test": 12}
    assert data["input_shape"] == [3, 32, 32] and data["class_counts"] == {
        str(c): 6 for c in range(6)}
    rows = read_metrics(run_dir)
    assert {"val/acc_top5", "test/acc_top5"} <= set(rows[0])

    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 3  # 24 images, batch 8
    group = ckpt["optimizer_states"][0]["param_groups"][0]
    assert group["momentum"] == 0.9 and group["nesterov"] and group["weight_decay"] == 4e-5
    assert group["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine reaches 0 at the last step
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 3
    module = BNNClassifier.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt",
                                                weights_only=True)
    assert isinstance(module.net.classifier[-1 if binarize == "none" else -2],
                      nn.Linear if binarize == "none" else BinaryLinear)
    layers = binary_layers(module.net)
    assert len(layers) == EXPECTED_BINARY[binarize]
    for _, layer in layers:
        assert layer.weight.abs().max() <= 1.0  # clipped after every step


def test_binarized_classifier_fits_real_photographs(tmp_path):
    """China vs flower crops, val = the training crops (centre-cropped): the fit is learned.

    48 evaluation images; 75% correct has probability < 1e-3 under chance (p = 0.5).
    """
    root = make_image_folder(tmp_path / "img", n_train=24, splits=("train",), by="photo")
    shutil.copytree(root / "train", root / "val")
    cfg = compose_app("train", "binarize=classifier", *tiny_overrides(root, tmp_path / "run", 2),
                        "model.optimizer=adam", "model.lr=1e-3", "model.lr_schedule=none",
                        "trainer.max_epochs=8", "test=false")
    results = train(cfg, echo=lambda *_: None)
    assert results["val_acc_best"] >= 0.75
    assert results["val_acc_top5"] is None  # two classes: no top-5


def test_paper_preset_carries_the_recipe():
    cfg = compose_app("train", "experiment=paper_mobilenet", "binarize=classifier", "data.root=/x")
    assert cfg.model.name == "mobilenet" and cfg.model.num_classes == 1000
    assert cfg.data._target_ == "bnn_edge.data.imagenet.ImageNetDataModule"
    assert cfg.trainer.max_epochs == 255 and cfg.trainer.strategy == "ddp"
    assert (cfg.trainer.accelerator, cfg.trainer.devices) == ("gpu", -1)
    assert module_options(cfg.model) == {
        "optimizer": "sgd", "momentum": 0.9, "nesterov": True, "lr_schedule": "cosine",
        "warmup_epochs": 5, "net_options": {"hidden": 2816},
        "threshold_init": 0.0, "threshold_lr": 0.4}  # the thresholds follow model.lr
    assert (cfg.model.lr, cfg.model.weight_decay, cfg.data.batch_size) == (0.4, 4e-5, 128)
    assert cfg.data.image_size == 224 and cfg.data.num_classes == 1000


def test_missing_root_fails_before_the_run_directory(tmp_path):
    cfg = compose_app("train", "model=mobilenet", f"paths.output_dir={tmp_path / 'run'}")
    with pytest.raises(DataError, match=r"^data\.root is not set: pass data\.root=PATH"):
        train(cfg, echo=lambda *_: None)
    cfg = compose_app("train", "model=mobilenet", "model.optimizer=lbfgs", "data.root=/nowhere",
                        f"paths.output_dir={tmp_path / 'run'}")
    with pytest.raises(ConfigError, match=r"^model\.optimizer='lbfgs' is not allowed"):
        train(cfg, echo=lambda *_: None)  # model options are checked before the data
    assert not (tmp_path / "run").exists()


def test_a_class_count_that_disagrees_with_the_folders_is_refused(six_classes, tmp_path):
    cfg = compose_app("train", *tiny_overrides(six_classes, tmp_path / "run", num_classes=4))
    with pytest.raises(ConfigError, match=r"^model\.num_classes=4 is not allowed: expected 6 "
                                          r"\(the class folders of .*\), or null$"):
        train(cfg, echo=lambda *_: None)
    assert not (tmp_path / "run").exists()
