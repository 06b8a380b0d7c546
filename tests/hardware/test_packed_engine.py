"""The packed engine against PyTorch: kernels, every network's binary part, exports, sweeps."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bnn_edge.errors import BnnEdgeError, ConfigError, DataError
from bnn_edge.experiment.robustness import evaluate
from bnn_edge.experiment.rundir import load_module
from bnn_edge.experiment.training import train
from bnn_edge.hardware.export import export_model, weights_header
from bnn_edge.hardware.faults import WeightFaults, ber_sweep, fault_rng, flip_positions
from bnn_edge.hardware.packed import kernels
from bnn_edge.hardware.packed.engine import PackedClassifier, PackedNet
from bnn_edge.hardware.packed.fold import fold_classifier
from bnn_edge.hardware.packed.product import Layer
from bnn_edge.hardware.packed.sweep import packed_ber_sweep
from bnn_edge.lit.module import BNNClassifier
from bnn_edge.nn import (
    BinaryConv1d,
    BinaryConv2d,
    BinaryLinear,
    SignActivation,
    binary_layers,
    binary_sign,
)
from bnn_edge.tasks import build_network
from tests.conftest import ROOT, run_cli, stderr_lines
from tests.helpers.export_reader import read_classifier, run_classifier
from tests.helpers.exports import classifier_export, random_classifier, rewrite_thresholds
from tests.helpers.packed_reference import packed_forward
from tests.helpers.runs import compose_app

# every instruction set this machine can run, and the numpy twin
LEVELS = ["numpy"] + [lvl for lvl, name in zip(kernels.LEVELS, kernels.ISA_NAMES, strict=True)
                      if kernels.compiled() and kernels.ISA_NAMES.index(name)
                      <= kernels.ISA_NAMES.index(kernels.best_isa())]


def scramble(net: nn.Module, seed: int, zero_scales: bool = True) -> nn.Module:
    """Random batch-norm statistics (negative and zero scales) and latent weights."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 3)
            m.running_var.copy_(torch.rand(n, generator=g) * 20 + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            if zero_scales:
                m.weight.data[::7] = 0.0
            m.bias.data.copy_(torch.randn(n, generator=g))
    for name, p in net.named_parameters():
        if name.endswith("weight") and p.dim() > 1:
            p.data.copy_(torch.randn(p.shape, generator=g) * 0.1)
            p.data.view(-1)[::97] = 0.0  # latent zeros are +1
    return net.eval()


def sign_outputs(net: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """PyTorch's logits and the output of every sign module (qualified name -> +-1 int8)."""
    found, handles = {}, []
    for name, m in net.named_modules():
        if isinstance(m, SignActivation):
            handles.append(m.register_forward_hook(
                lambda mod, args, out, name=name: found.__setitem__(name, out)))
    try:
        with torch.no_grad():
            logits = net(x).numpy()
    finally:
        for h in handles:
            h.remove()
    return logits, {k: v.numpy().astype(np.int8) for k, v in found.items()}


def assert_matches_pytorch(engine, net, x, expect_hidden: int):
    logits, signs = sign_outputs(net, x)
    scores, hidden = engine.run(x, hidden=True)
    assert len(hidden) == expect_hidden
    for name, bits in hidden.items():
        assert np.array_equal(bits, signs[name]), name
    assert np.array_equal(scores.argmax(1), logits.argmax(1))
    np.testing.assert_allclose(scores, logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())
    assert np.array_equal(engine(x), scores)  # the fused path gives the same scores


# ------------------------------------------------------------------ kernels


def random_pm1(rng, rows: int, n: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0], np.float32), size=(rows, n))


@pytest.mark.parametrize("level", LEVELS)
def test_products_are_the_pm1_dot_product_for_odd_shapes(level):
    rng = np.random.default_rng(0)
    with kernels.use_isa(level):
        for rows, n, m in [(1, 1, 1), (3, 7, 5), (5, 63, 8), (6, 64, 9), (9, 65, 33),
                           (2, 200, 75), (1, 2520, 80), (7, 1000, 17)]:
            x, w = random_pm1(rng, rows, n), random_pm1(rng, m, n)
            xw, ww = kernels.pack(x), kernels.pack(w)
            d = (x @ w.T).astype(np.int64)
            assert np.array_equal(kernels.run(Layer.dot(ww, n), xw, rows), d)
            thr = rng.integers(-n - 1, n + 2, size=m)
            flip = rng.random(m) < 0.4
            bits = kernels.run(Layer.hidden(ww, n, thr, flip), xw, rows)
            on = np.where(flip, d <= thr, d >= thr)
            assert np.array_equal(bits, kernels.pack(np.where(on, 1.0, -1.0)))
            pre, mul, add = (rng.standard_normal(m).astype(np.float32) for _ in range(3))
            scores = kernels.run(Layer.scores(ww, n, mul, add, pre), xw, rows)
            expected = (d.astype(np.float32) + pre) * mul + add
            assert scores.dtype == np.float32 and np.array_equal(scores, expected)


def test_every_instruction_set_gives_identical_results():
    rng = np.random.default_rng(1)
    n, m = 11 * 64, 37
    x = rng.integers(0, 2 ** 63, size=(3, 400), dtype=np.uint64)
    w = rng.integers(0, 2 ** 63, size=(m, 11), dtype=np.uint64)
    layer = Layer.hidden(w, n, rng.integers(-50, 50, size=m), rng.random(m) < 0.5)
    reals = rng.standard_normal((5, 300)).astype(np.float32)
    reals[0, :5] = [0.0, -0.0, np.nan, np.inf, -np.inf]
    out = {}
    for level in LEVELS:  # overlapping conv windows: 2 samples x 150 positions, stride 2
        with kernels.use_isa(level):
            out[level] = kernels.run(layer, x, 300, 150, 400, 2)
            out[level + " pack"] = kernels.pack(reals)
    assert len(out) == 2 * len(LEVELS) and len(LEVELS) >= 2
    for level in LEVELS[1:]:
        assert np.array_equal(out[level], out["numpy"]), level
        assert np.array_equal(out[level + " pack"], out["numpy pack"]), level
    # sign(0) = sign(-0) = +1, NaN packs as -1 like binary_sign, +inf +1, -inf -1
    assert int(out["numpy pack"][0, 0]) & 0b11111 == 0b01011


def test_xor_words_applies_repeated_indices_in_turn():
    for level in LEVELS:
        with kernels.use_isa(level):
            w = np.zeros(4, np.uint64)
            kernels.xor_words(w, np.array([1, 1, 2, 1]), np.array([1, 2, 4, 1], np.uint64))
            assert w.tolist() == [0, 2, 4, 0]
            with pytest.raises(IndexError):
                kernels.xor_words(w, np.array([4]), np.array([1], np.uint64))


def test_the_environment_variable_caps_the_instruction_set():
    code = ("from bnn_edge.hardware.packed import kernels; import numpy as np;"
            "from bnn_edge.hardware.packed.product import Layer;"
            "x = np.where(np.arange(300).reshape(3, 100) % 3 == 0, 1.0, -1.0);"
            "w = kernels.pack(x[:, ::-1].copy());"
            "print(kernels.isa(), kernels.run(Layer.dot(w, 100), kernels.pack(x), 3)"
            ".ravel().tolist())")
    expected = (np.where(np.arange(300).reshape(3, 100) % 3 == 0, 1, -1)
                @ np.where(np.arange(300).reshape(3, 100) % 3 == 0, 1, -1)[:, ::-1].T)
    for level in LEVELS:
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, env={**_env(), kernels.ENV: level}, check=True)
        name, values = proc.stdout.split(" ", 1)
        assert name == ("numpy" if level == "numpy" else
                        kernels.ISA_NAMES[kernels.LEVELS.index(level)])
        assert json.loads(values) == expected.ravel().tolist()
    bad = subprocess.run([sys.executable, "-c", "import bnn_edge.hardware.packed.kernels"],
                         cwd=ROOT, capture_output=True, text=True,
                         env={**_env(), kernels.ENV: "sse9"})
    assert bad.returncode != 0
    assert "BNN_EDGE_PACKED_ISA='sse9' is not allowed" in bad.stderr


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != kernels.ENV}


def test_without_the_compiled_kernel_the_numpy_path_runs_after_one_warning():
    """The import of the extension is blocked, as on a machine without a C compiler."""
    code = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "bnn_edge.hardware.packed._xnor":
            raise ImportError("no compiled module (blocked by the test)")
sys.meta_path.insert(0, Block())
import torch
from torch import nn
from bnn_edge.nn import BinaryLinear, SignActivation
from bnn_edge.hardware.packed import kernels
from bnn_edge.hardware.packed.engine import PackedNet
torch.manual_seed(0)
net = nn.Sequential(SignActivation(), BinaryLinear(70, 9), nn.BatchNorm1d(9), SignActivation(),
                    BinaryLinear(9, 3)).eval()
x = torch.randn(6, 70)
engine = PackedNet(net, (70,))
with torch.no_grad():
    same = bool((torch.from_numpy(engine(x)) - net(x)).abs().max() < 1e-5)
print(kernels.isa(), kernels.compiled(), same)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env=_env(), check=True)
    assert proc.stdout.split() == ["numpy", "False", "True"]
    lines = stderr_lines(proc)
    assert len(lines) == 1 and "PackedEngineWarning" in lines[0]
    assert "numpy path" in lines[0]


# ------------------------------------------------------------------ networks


def small_classifier(n_in: int, hidden: int, out: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), SignActivation(), BinaryLinear(n_in, hidden),
                        nn.BatchNorm1d(hidden), SignActivation(), nn.Dropout(0.3),
                        BinaryLinear(hidden, out), nn.BatchNorm1d(out))
    return scramble(net, seed)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("n_in", "hidden", "out", "batch"),
                         [(97, 41, 5, 1), (2520, 80, 2, 7), (130, 64, 3, 33), (1, 1, 1, 2)])
def test_binary_classifiers_match_pytorch(level, n_in, hidden, out, batch):
    net = small_classifier(n_in, hidden, out, seed=n_in)
    x = torch.randn(batch, n_in)
    with kernels.use_isa(level):
        engine = PackedNet(net, (n_in,))
        assert_matches_pytorch(engine, net, x, expect_hidden=1)
        # the export path: the same folded layers run by PackedClassifier
        clf = PackedClassifier.from_module(net)
        pm1 = binary_sign(x).numpy().astype(np.int8)
        scores, hidden = clf.run(pm1, hidden=True)
        assert np.array_equal(scores, engine(x))
        _, old_scores = packed_forward(fold_classifier(net), pm1)
        np.testing.assert_allclose(scores, old_scores, rtol=1e-6, atol=1e-6)


NETWORKS = [  # (network, binarize, options, input shape, batch, packed sign outputs)
    ("ecg", "classifier", {}, (12, 750), 5, 1),
    ("ecg", "full", {}, (12, 750), 5, 5),
    ("ecg", "full", {"aug": 3}, (12, 750), 1, 5),  # 96 channels: two words per position
    ("eeg", "classifier", {}, (64, 960), 2, 1),
    ("eeg", "full", {}, (64, 960), 2, 1),
    ("mobilenet", "classifier", {"num_classes": 10, "hidden": 70}, (3, 64, 64), 2, 1),
    ("mobilenet", "full", {"num_classes": 10, "hidden": 70}, (3, 64, 64), 2, 13),
]


@pytest.mark.parametrize(("name", "binarize", "options", "shape", "batch", "hidden"), NETWORKS)
def test_networks_match_pytorch(name, binarize, options, shape, batch, hidden):
    net = scramble(build_network(name, binarize=binarize, **options), seed=3)
    x = torch.randn(batch, *shape)
    engine = PackedNet.from_module(net, None if name != "mobilenet" else shape)
    assert_matches_pytorch(engine, net, x, hidden)
    # what runs packed: every binary layer that sees binary inputs, with the right outputs
    lines = engine.describe()
    if binarize == "full" and name == "ecg":
        assert lines[0].startswith("torch: ") and "BinaryConv1d" in lines[0]  # real input
        assert sum(line.startswith("packed conv: ") and "(bits" in line for line in lines) == 4
        assert "max pool" in lines[1]
    if binarize == "full" and name == "eeg":
        assert "cols" in lines[1] and "int32 sums" in lines[1]  # spatial conv, then avg pool
    assert lines[-1].startswith("packed classifier: ")
    assert engine.weight_bytes() > 0


def test_conv_strides_pools_and_padding():
    """Stride 2, a 3-wide max pool with stride 2, 70 channels (two words per position), a
    padded binary conv (run by PyTorch) and a conv without bias or batch norm."""
    torch.manual_seed(4)
    net = scramble(nn.Sequential(
        nn.BatchNorm1d(5), BinaryConv1d(5, 70, 7, stride=2), nn.MaxPool1d(3, stride=2),
        nn.BatchNorm1d(70), SignActivation(),
        BinaryConv1d(70, 33, 5, stride=3, bias=False), SignActivation(),
        BinaryConv1d(33, 9, 3, padding=1), nn.BatchNorm1d(9), SignActivation(),
        BinaryConv1d(9, 12, 4), nn.MaxPool1d(2), nn.BatchNorm1d(12), SignActivation(),
        nn.Flatten(), BinaryLinear(12 * 2, 7), nn.BatchNorm1d(7), SignActivation(),
        BinaryLinear(7, 4)), seed=4)
    x = torch.randn(3, 5, 121)
    for level in LEVELS:
        with kernels.use_isa(level):
            engine = PackedNet(net, (5, 121))
            assert_matches_pytorch(engine, net, x, expect_hidden=3)
    lines = engine.describe()
    assert [line.split(":")[0] for line in lines] == ["torch", "packed conv", "torch",
                                                      "packed conv", "packed classifier"]


def test_two_dimensional_convs_over_the_height_and_one_by_one():
    torch.manual_seed(5)
    net = scramble(nn.Sequential(
        nn.Conv2d(1, 6, (1, 5)), nn.BatchNorm2d(6), SignActivation(),
        BinaryConv2d(6, 11, (1, 1)), nn.BatchNorm2d(11), SignActivation(),
        BinaryConv2d(11, 8, (9, 3), stride=(1, 2)), nn.BatchNorm2d(8), SignActivation(),
        nn.Flatten(), BinaryLinear(8 * 15, 3)), seed=5)
    x = torch.randn(4, 1, 9, 35)
    engine = PackedNet(net, (1, 9, 35))
    assert_matches_pytorch(engine, net, x, expect_hidden=2)
    lines = engine.describe()
    assert "pixels" in lines[1] and "cols" in lines[2] and len(lines) == 4


def test_the_network_given_is_left_alone_and_other_shapes_are_refused():
    net = scramble(build_network("ecg", binarize="full"), seed=6)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    engine = PackedNet.from_module(net)
    engine.flip(0, np.arange(50))
    engine(torch.randn(2, 12, 750))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="built for"):
        engine(torch.randn(2, 12, 700))


def test_flips_are_the_torch_engine_faults_and_undo_exactly():
    net = scramble(build_network("ecg", binarize="full"), seed=7)
    x = torch.randn(6, 12, 750)
    engine = PackedNet.from_module(net)
    clean = engine(x)
    rng = fault_rng(0, 0.02, 3)
    names = [name for name, _ in binary_layers(net)]
    assert [w.name for w in engine.binary] == names
    flips = [flip_positions(w.numel, 0.02, rng) for w in engine.binary]
    assert all(len(p) for p in flips)
    with WeightFaults(net) as faults:
        count = faults.inject(0.02, fault_rng(0, 0.02, 3))
        assert count.binary_flipped == sum(len(p) for p in flips)
        faulty_net = {k: v.clone() for k, v in net.state_dict().items()}
    torch_net = build_network("ecg", binarize="full")
    torch_net.load_state_dict(faulty_net)
    for i, p in enumerate(flips):
        engine.flip(i, p)
    assert_matches_pytorch(engine, torch_net.eval(), x, expect_hidden=5)
    for i, p in enumerate(flips):
        engine.flip(i, p)
    assert np.array_equal(engine(x), clean)


# ------------------------------------------------------------------ exports and checkpoints


def test_an_exported_folder_runs_bit_exact(tmp_path):
    net = scramble(build_network("ecg", binarize="full"), seed=8, zero_scales=False)
    samples = torch.randn(64, 12, 750)
    export_model(net, tmp_path, samples, {"model": "ecg", "binarize": "full", "aug": 1})
    vectors = np.load(tmp_path / "vectors.npz")
    x, logits = vectors["classifier_input"], vectors["logits"]
    _, signs = sign_outputs(net, samples)
    for level in LEVELS:
        with kernels.use_isa(level):
            clf = PackedClassifier.from_export(tmp_path)
            scores, hidden = clf.run(x, hidden=True)
            assert np.array_equal(hidden["classifier.2"], signs["classifier.4"])
            assert np.array_equal(clf.predict(x), logits.argmax(1))
            np.testing.assert_allclose(scores, logits, rtol=1e-5,
                                       atol=1e-5 * np.abs(logits).max())
    # and the whole network from the module agrees with the export
    assert np.array_equal(PackedNet.from_module(net).predict(samples), logits.argmax(1))


def test_broken_export_folders_name_the_file(tmp_path):
    with pytest.raises(DataError, match="manifest.json: missing"):
        PackedClassifier.from_export(tmp_path)
    net = scramble(build_network("ecg", binarize="classifier"), seed=9)
    export_model(net, tmp_path, torch.randn(64, 12, 750), {"model": "ecg"})
    model = dict(np.load(tmp_path / "model.npz"))
    model["classifier.3.weight_bits"] = model["classifier.3.weight_bits"][:, :-1]
    np.savez(tmp_path / "model.npz", **model)
    with pytest.raises(DataError, match=r"model.npz: cannot read .*classifier.3.weight_bits"):
        PackedClassifier.from_export(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="manifest.json: not an export manifest"):
        PackedClassifier.from_export(tmp_path)


def compiled_c_reference(folder) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compile the export's C reference (strict C99) and run it on its classifier_input.i8:
    the predicted classes, the scores and the hidden +-1 outputs (rows of all layers)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler (cc) is needed to check the C reference"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                    "bnn.c", "bnn_check.c", "-o", "bnn_check"], cwd=folder, check=True,
                   timeout=120)
    n = json.loads((folder / "manifest.json").read_text())["vectors"]["n"]
    proc = subprocess.run(["./bnn_check", "classifier_input.i8", str(n), "scores.f32",
                           "hidden.i8"], cwd=folder, check=True, capture_output=True,
                          text=True, timeout=120)
    classes = np.array([int(v) for v in proc.stdout.split()])
    scores = np.fromfile(folder / "scores.f32", dtype=np.float32).reshape(n, -1)
    hidden = np.fromfile(folder / "hidden.i8", dtype=np.int8).reshape(n, -1)
    return classes, scores, hidden


def test_every_reader_agrees_with_a_float64_reading_of_the_contract(tmp_path):
    """Real and huge thresholds (3e9, 1e12, -1e12, -3e9): the engine under every instruction
    set and the numpy twin, the Python packed path and the C reference all give exactly
    the hidden bits and classes of an independent float64 reading of model.npz."""
    _, x = classifier_export(tmp_path, (37, 29, 13, 5), seed=1)
    rewrite_thresholds(tmp_path, seed=2)
    layers = read_classifier(tmp_path)
    hidden, scores = run_classifier(layers, x)
    names = [layer["name"] for layer in layers[:-1]]
    # the rewrite matters: thresholds truncated to integers give other bits, and the huge
    # ones make units that never (3e9, -3e9 flipped) or always (1e12 flipped, -1e12) fire
    truncated = [{**lay, "threshold": np.trunc(lay["threshold"])} if "flip" in lay else lay
                 for lay in layers]
    assert any(not np.array_equal(a, b)
               for a, b in zip(run_classifier(truncated, x)[0], hidden, strict=True))
    for bits in hidden:
        assert np.array_equal(bits[:, :4], np.tile([-1, 1, 1, -1], (len(x), 1)))
    classes = scores.argmax(1)
    tolerance = {"rtol": 1e-5, "atol": 1e-5 * np.abs(scores).max()}
    for level in LEVELS:
        with kernels.use_isa(level):
            clf = PackedClassifier.from_export(tmp_path)
            got, got_hidden = clf.run(x, hidden=True)
            assert list(got_hidden) == names
            for name, bits in zip(names, hidden, strict=True):
                assert np.array_equal(got_hidden[name], bits), (level, name)
            assert np.array_equal(clf.predict(x), classes), level
            np.testing.assert_allclose(got, scores, **tolerance)
    py_hidden, py_scores = packed_forward(clf.folded, x)
    assert all(np.array_equal(a, b) for a, b in zip(py_hidden, hidden, strict=True))
    np.testing.assert_allclose(py_scores, scores, **tolerance)
    (tmp_path / "bnn_weights.h").write_text(weights_header(clf.folded))
    c_classes, c_scores, c_hidden = compiled_c_reference(tmp_path)
    assert np.array_equal(c_hidden, np.concatenate(hidden, axis=1))
    assert np.array_equal(c_classes, classes)
    np.testing.assert_allclose(c_scores, scores, **tolerance)


def test_padding_bits_are_refused_by_every_reader(tmp_path):
    """Bits beyond in_features must be 0: the engine, the float64 reading and the writer of
    the C reference's weights refuse a layer that sets one, naming the file and key."""
    classifier_export(tmp_path, (37, 29, 5), seed=3)
    path = tmp_path / "model.npz"
    model = dict(np.load(path))
    first = json.loads((tmp_path / "manifest.json").read_text())["classifier_layers"][0]
    model[f"{first}.weight_bits"][3, -1] |= 1 << 6  # input 38 of 37: padding
    np.savez(path, **model)
    with pytest.raises(DataError, match=rf"model\.npz: .*{first}\.weight_bits: bits beyond "
                                        rf"in_features=37 are set in 1 rows \(the first: row 3\)"):
        PackedClassifier.from_export(tmp_path)
    with pytest.raises(ValueError, match="padding"):
        read_classifier(tmp_path)
    layers = fold_classifier(random_classifier((37, 29, 5), seed=3).classifier)
    layers[1].weight_bits[0, -1] |= 1 << 7  # input 32 of 29
    with pytest.raises(BnnEdgeError, match=r"bnn_weights\.h: classifier\.4\.weight_bits: "
                                           r"bits beyond in_features=29"):
        weights_header(layers)


@pytest.mark.parametrize(("layer", "key", "value", "message"), [
    (-1, "offset", lambda v: np.where(np.arange(len(v)) == 1, -np.inf, v).astype(np.float32),
     r"not finite \(-inf at output 1\)"),
    (-1, "scale", lambda v: np.full_like(v, np.nan), r"not finite \(nan at output 0\)"),
    (-1, "scale", lambda v: np.full(len(v), 1e39), r"not finite \(inf at output 0\)"),
    (-1, "scale", lambda v: v.astype(np.complex64), "complex64; real numbers expected"),
    (0, "threshold", lambda v: v.astype(str), "<U32; real numbers expected"),
    (0, "threshold", lambda v: np.where(np.arange(len(v)) == 2, np.inf, v), "not finite"),
    (0, "flip", lambda v: v.astype(np.int64) * 2, "int64; booleans"),
    (0, "in_features", lambda v: np.float64(37.7), "float64 37.7; a positive integer"),
    (0, "in_features", lambda v: np.str_("37"), "<U2 '37'; a positive integer"),
    (0, "in_features", lambda v: np.array([37, 37]), r"of shape \(2,\); a positive integer"),
    (0, "in_features", lambda v: np.int64(-1), "int64 -1; a positive integer"),
    (0, "in_features", lambda v: np.int64(0), "int64 0; a positive integer"),
    (0, "weight_bits", lambda v: v[:0], r"uint8 \(outputs >= 1, ceil\(37 / 8\)\) expected, "
                                        r"got uint8 \(0, 5\)"),
])
def test_entries_of_the_wrong_type_or_value_are_refused(tmp_path, layer, key, value, message):
    classifier_export(tmp_path, (37, 29, 5), seed=4)
    name = json.loads((tmp_path / "manifest.json").read_text())["classifier_layers"][layer]
    model = dict(np.load(tmp_path / "model.npz"))
    model[f"{name}.{key}"] = value(model[f"{name}.{key}"])
    np.savez(tmp_path / "model.npz", **model)
    with pytest.raises(DataError, match=rf"model\.npz: cannot read the classifier layers "
                                        rf"\({re.escape(name)}\.{key}: .*{message}"):
        PackedClassifier.from_export(tmp_path)


def test_unreadable_export_files_are_data_errors(tmp_path):
    classifier_export(tmp_path, (37, 29, 5), seed=5)
    model, manifest = tmp_path / "model.npz", tmp_path / "manifest.json"
    data, text = model.read_bytes(), manifest.read_text()
    model.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match=r"model\.npz: cannot read the classifier layers"):
        PackedClassifier.from_export(tmp_path)
    model.write_bytes(data)
    for broken in ("[1, 2]", json.dumps({**json.loads(text), "classifier_layers": "abc"})):
        manifest.write_text(broken)
        with pytest.raises(DataError, match=r"manifest\.json: "):
            PackedClassifier.from_export(tmp_path)
    manifest.write_text(text)
    with manifest.open("r+b") as f:  # sparse: 30 GB that take no disk
        f.truncate(30 * 10**9)
    with pytest.raises(DataError, match=r"manifest\.json: 30,000,000,000 bytes, more than an "
                                        r"export writes \(1,048,576 at most\)"):
        PackedClassifier.from_export(tmp_path)


def test_a_classifier_of_seventeen_hidden_layers_runs_packed(tmp_path):
    widths = (40, *[24] * 17, 3)
    net, x = classifier_export(tmp_path, widths, seed=6)
    hidden, scores = run_classifier(read_classifier(tmp_path), x)
    real = torch.from_numpy(x).float()
    for level in LEVELS:
        with kernels.use_isa(level):
            engine = PackedNet(net, (40,))
            (line,) = engine.describe()  # one packed chain of 18 layers
            assert line.startswith("packed classifier: ") and line.count(" -> ") == 17
            assert_matches_pytorch(engine, net, real, expect_hidden=17)
            got, got_hidden = PackedClassifier.from_export(tmp_path).run(x, hidden=True)
            assert all(np.array_equal(a, b)
                       for a, b in zip(got_hidden.values(), hidden, strict=True))
            np.testing.assert_allclose(got, scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("name", "binarize", "options", "shape", "batch", "hidden"), NETWORKS)
def test_an_empty_batch_gives_empty_scores(name, binarize, options, shape, batch, hidden):
    net = build_network(name, binarize=binarize, **options).eval()
    x = torch.zeros(0, *shape)
    with torch.no_grad():
        expected = tuple(net(x).shape)
    engine = PackedNet.from_module(net, None if name != "mobilenet" else shape)
    for level in ("numpy", kernels.best_isa().split("-")[0]):
        with kernels.use_isa(level):
            scores, found = engine.run(x, hidden=True)
            assert scores.shape == expected and scores.dtype == np.float32
            assert len(found) == hidden and all(len(v) == 0 for v in found.values())
            assert engine(x.numpy()).shape == expected and engine.predict(x).shape == (0,)
            if binarize == "classifier" and name == "ecg":
                clf = PackedClassifier.from_module(net.classifier)
                assert clf(np.zeros((0, clf.in_features), np.int8)).shape == expected


def test_inputs_of_any_strides_and_tensors_needing_grad_are_accepted():
    net = small_classifier(97, 41, 5, seed=7)
    x = torch.randn(6, 97)
    backwards, grad = x.numpy()[::-1], x.flip(0).clone().requires_grad_()
    clf, engine = PackedClassifier.from_module(net), PackedNet(net, (97,))
    expected = engine(x.flip(0).numpy().copy())
    for run in (engine, engine.run, engine.predict, clf, clf.run, clf.predict):
        for batch in (backwards, grad):
            want = expected.argmax(1) if run in (engine.predict, clf.predict) else expected
            assert np.array_equal(run(batch), want)
    assert np.array_equal(engine.run(grad, hidden=True)[0], expected)
    ecg = scramble(build_network("ecg", binarize="full"), seed=7)
    signal = torch.randn(2, 12, 750)
    engine = PackedNet.from_module(ecg)
    expected = engine(signal.flip(2).numpy().copy())
    assert np.array_equal(engine(signal.numpy()[:, :, ::-1]), expected)
    assert np.array_equal(engine(signal.flip(2).requires_grad_()), expected)


def test_a_checkpoint_runs_like_its_module(tmp_path):
    module = BNNClassifier("ecg", binarize="classifier")
    scramble(module.net, seed=10)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": L.__version__}, path)
    x = torch.randn(9, 12, 750)
    engine = PackedNet.from_module(load_module(path))
    with torch.no_grad():
        expected = module.eval()(x).argmax(1).numpy()
    assert np.array_equal(engine.predict(x), expected)


# ------------------------------------------------------------------ sweeps


@pytest.mark.parametrize(("name", "binarize", "options", "shape", "draws"), [
    ("ecg", "classifier", {}, (12, 750), 6), ("ecg", "full", {}, (12, 750), 6),
    ("mobilenet", "full", {"num_classes": 2, "hidden": 40}, (3, 32, 32), 2)])
def test_both_engines_give_identical_sweeps(name, binarize, options, shape, draws):
    net = scramble(build_network(name, binarize=binarize, **options), seed=11,
                   zero_scales=False)
    x = torch.randn(40, *shape)
    with torch.no_grad():
        y = net(x).argmax(1)
    y[::3] = 1 - y[::3]
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    rates = [0, 1e-4, 1e-2, 0.2]
    torch_points = ber_sweep(net, loader, rates, draws, seed=5)
    packed_points = packed_ber_sweep(net, loader, rates, draws, seed=5)
    for p, q in zip(torch_points, packed_points, strict=True):
        assert (p.ber, p.accuracies, p.flipped, p.bits) == (q.ber, q.accuracies, q.flipped,
                                                            q.bits)
    if name == "ecg":
        assert len(set(torch_points[-1].accuracies)) > 1  # the faults change the accuracy


@pytest.mark.parametrize("binarize", ["classifier", "full"])
@pytest.mark.parametrize(("spec", "parameter", "values"), [
    ({"name": "stuck", "cell": "2T2R"}, None, [0, 0.01, 0.2]),
    ({"name": "stuck", "cell": "1T1R", "lrs_share": 0.8}, None, [0.05]),
    ({"name": "array", "rows": 1.0}, None, [0, 1, 4]),
    ({"name": "array", "columns": 4.0}, "spares", [0, 3]),
    ({"name": "asymmetric", "ratio": 5.0}, None, [0.01, 0.2]),
    ({"name": "retention", "cell": "1T1R"}, None, [0, 87600]),
    ({"name": "sec", "data_bits": 3}, None, [0, 0.05]),
])
def test_every_fault_model_gives_identical_sweeps_on_both_engines(binarize, spec, parameter,
                                                                  values):
    from bnn_edge.hardware.faults.models import parse_fault_model

    net = scramble(build_network("ecg", binarize=binarize), seed=12, zero_scales=False)
    x = torch.randn(24, 12, 750)
    with torch.no_grad():
        y = net(x).argmax(1)
    y[::3] = 1 - y[::3]
    loader = DataLoader(TensorDataset(x, y), batch_size=10)
    model, _, _ = parse_fault_model(spec)
    torch_points = ber_sweep(net, loader, values, 3, seed=2, fault_model=model,
                             parameter=parameter)
    packed_points = packed_ber_sweep(net, loader, values, 3, seed=2, fault_model=model,
                                     parameter=parameter)
    for p, q in zip(torch_points, packed_points, strict=True):
        assert (p.ber, p.accuracies, p.flipped, p.bits) == (q.ber, q.accuracies, q.flipped,
                                                            q.bits)
    assert torch_points[-1].flipped > 0




@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir):
    """Tiny ECG runs (one epoch on 60 trials) in each variant."""
    out = {}
    for binarize in ("classifier", "full", "none"):
        run_dir = tmp_path_factory.mktemp(f"run_{binarize}")
        cfg = compose_app("train", "model=ecg", "data.n_trials=60", "trainer.max_epochs=1",
                             f"data.cache_dir={cache_dir}", "callbacks.rich_progress_bar=null",
                             "trainer.enable_model_summary=false", f"binarize={binarize}",
                             f"paths.output_dir={run_dir}")
        train(cfg, echo=lambda *_: None)
        out[binarize] = run_dir
    return out


def test_evaluate_prints_the_same_table_with_either_engine(runs, tmp_path):
    tables = {}
    for engine in ("torch", "packed"):
        lines = []
        cfg = compose_app("evaluate", f"ckpt_path=[{runs['classifier']},{runs['full']}]",
                             "bit_errors.ber=[0,1e-3,3e-2,0.3]", "bit_errors.draws=4",
                             f"engine={engine}", f"paths.output_dir={tmp_path / engine}")
        curves = evaluate(cfg, echo=lines.append)
        assert len(curves) == 2 and [p.draws for p in curves[0].points] == [1, 4, 4, 4]
        tables[engine] = next(line for line in lines if line.startswith("variant"))
        evaluating = [line for line in lines if line.startswith("Evaluating")]
        assert len(evaluating) == 2
        assert all(("packed engine" in line) == (engine == "packed") for line in evaluating)
    assert tables["torch"] == tables["packed"]
    assert (tmp_path / "packed" / "ber_curve.csv").read_text() == (
        tmp_path / "torch" / "ber_curve.csv").read_text()


@pytest.mark.parametrize(("overrides", "parameter"), [
    (["fault_model=stuck", "bit_errors.fault_model.fraction=[0,0.02,0.2]"], "fraction"),
    (["fault_model=array", "bit_errors.fault_model.columns=4",
      "bit_errors.fault_model.spares=[0,4]"], "spares"),
])
def test_evaluate_passes_the_fault_model_to_either_engine(runs, tmp_path, overrides, parameter):
    """The packed engine draws the configured model, not bitflip: the same table, CSV and
    reference accuracies at the 1T1R and 2T2R operating points as the torch engine."""
    outputs = {}
    for engine in ("torch", "packed"):
        lines = []
        cfg = compose_app("evaluate", f"ckpt_path={runs['full']}", *overrides,
                          "bit_errors.draws=3", f"engine={engine}",
                          f"paths.output_dir={tmp_path / engine}")
        (curve,) = evaluate(cfg, echo=lines.append)
        table = next(line for line in lines if line.startswith("variant")).splitlines()
        outputs[engine] = table, (tmp_path / engine / "ber_curve.csv").read_text()
        assert table[0].split()[:2] == ["variant", parameter]
        assert table[-3].startswith("fault model: ")
        assert [(cell, p.ber) for cell, _, p in curve.operating] == [
            ("1T1R", pytest.approx(1.0e-3, rel=1e-3)), ("2T2R", pytest.approx(6.21e-6, rel=1e-3))]
        assert "read errors alone at the 2T2R operating point" in table[-1]
        assert (tmp_path / engine / "ber_curve.png").is_file()
    assert outputs["torch"] == outputs["packed"]
    rows = list(csv.DictReader(io.StringIO(outputs["torch"][1])))
    assert {(r["fault_model"], r["parameter"], r["ber"]) for r in rows} == {
        (overrides[0].split("=")[1], parameter, "")}
    low, high = (float(rows[i]["flipped_fraction"]) for i in (0, -1))
    # more stuck devices, more wrong weights; more spares, fewer
    assert (low < high) if parameter == "fraction" else (low > high)


@pytest.mark.parametrize(("overrides", "message"), [
    (["engine=gpu"], "engine='gpu' is not allowed: expected one of auto, torch, packed"),
    (["engine=packed", "device=cuda"], "device='cuda' is not allowed"),
    (["engine=packed", "bit_errors.real_format=int8"],
     "engine='packed' is not allowed: expected torch with bit_errors.real_format=int8"),
    (["engine=packed", "bit_errors.real_format=[none,fp32]"],
     "engine='packed' is not allowed: expected torch with bit_errors.real_format=fp32"),
    (["NONE", "engine=packed", "bit_errors.real_format=int8"],
     "engine='packed' is not allowed: expected torch for"),
])
def test_bad_engine_options(runs, tmp_path, overrides, message):
    ckpt = runs["none"] if overrides[0] == "NONE" else runs["classifier"]
    overrides = [o for o in overrides if o != "NONE"]
    cfg = compose_app("evaluate", f"ckpt_path={ckpt}", *overrides,
                         f"paths.output_dir={tmp_path / 'out'}")
    with pytest.raises(ConfigError) as info:
        evaluate(cfg, echo=lambda *_: None)
    assert str(info.value).startswith(message)
    assert not (tmp_path / "out").exists()


def test_cli_runs_the_packed_engine_and_refuses_bad_settings_in_one_line(runs, tmp_path):
    ok = run_cli("bnn_edge.evaluate", f"ckpt_path={runs['full']}", "engine=packed",
                 "bit_errors.ber=[0,0.01]", "bit_errors.draws=2", f"hydra.run.dir={tmp_path / 'a'}")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert f"with the packed engine ({kernels.isa()})" in ok.stdout
    assert (tmp_path / "a" / "ber_curve.csv").is_file()
    for overrides, env, message in [
        (["engine=packed", "bit_errors.real_format=int8"], {},
         "error: engine='packed' is not allowed: expected torch with "
         "bit_errors.real_format=int8: the packed engine keeps real weights exact "
         "(bit_errors.real_format=none)"),
        (["engine=packed"], {kernels.ENV: "sse9"},
         "error: BNN_EDGE_PACKED_ISA='sse9' is not allowed: expected one of scalar, avx2, "
         "avx512 or numpy (unset: the best)"),
    ]:
        out = tmp_path / "b"
        proc = run_cli("bnn_edge.evaluate", f"ckpt_path={runs['full']}", *overrides,
                       f"hydra.run.dir={out}", env=env)
        assert proc.returncode == 2
        assert stderr_lines(proc) == [message]
        assert not out.exists()
