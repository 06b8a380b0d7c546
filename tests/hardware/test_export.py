"""Export of binary layers: folding, packed inference, the C reference against PyTorch."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from bnn_edge.errors import BnnEdgeError
from bnn_edge.experiment.export import export_checkpoint
from bnn_edge.experiment.rundir import RunDir, load_module
from bnn_edge.experiment.training import train
from bnn_edge.hardware.export import export_model
from bnn_edge.hardware.packed import kernels
from bnn_edge.hardware.packed.engine import native_agreement
from bnn_edge.hardware.packed.fold import fold_classifier, pack_pm1
from bnn_edge.nn import BinaryLinear, SignActivation, binary_layers
from tests.conftest import run_cli
from tests.helpers.exports import random_classifier
from tests.helpers.packed_reference import packed_dot, packed_forward
from tests.helpers.runs import compose_app


def scrambled_norms(module: nn.Module, seed: int) -> None:
    """Give every batch norm random statistics, some negative and zero scales included."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 10)
            m.running_var.copy_(torch.rand(n, generator=g) * 50 + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.weight.data[::7] = 0.0
            m.bias.data.copy_(torch.randn(n, generator=g))


def test_packed_dot_is_the_pm1_dot_product():
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 63, 64, 65, 200):
        x = rng.choice([-1, 1], size=(5, n))
        w = rng.choice([-1, 1], size=(9, n))
        assert np.array_equal(packed_dot(pack_pm1(x), pack_pm1(w), n), x @ w.T)


def test_threshold_rule_reproduces_pytorch_bits_exactly():
    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Flatten(), SignActivation(), BinaryLinear(97, 41),
                               nn.BatchNorm1d(41), SignActivation(), nn.Dropout(0.2),
                               BinaryLinear(41, 5), nn.BatchNorm1d(5)).eval()
    scrambled_norms(classifier, seed=1)
    x = torch.randn(500, 97)
    hidden = []
    classifier[4].register_forward_hook(lambda m, a, out: hidden.append(out))
    with torch.no_grad():
        logits = classifier(x)
    layers = fold_classifier(classifier)
    assert layers[0].flip.any() and not layers[0].flip.all()  # negative scales are handled
    bits, scores = packed_forward(layers, torch.sign(x).where(x != 0, 1).numpy())
    assert np.array_equal(bits[0], hidden[0].numpy().astype(np.int8))
    np.testing.assert_allclose(scores, logits.numpy(), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, cache_dir):
    """Tiny ECG models (one epoch on 120 trials) in the two variants with binary layers."""
    import os

    os.environ["BNN_EDGE_CACHE"] = str(cache_dir)
    out = {}
    for binarize in ("classifier", "full", "none"):
        run = tmp_path_factory.mktemp(f"run_{binarize}")
        train(compose_app("train", "model=ecg", f"binarize={binarize}", "data.n_trials=120",
                            "trainer.max_epochs=1", "test=false",
                            "callbacks.rich_progress_bar=null", f"paths.output_dir={run}",
                            "trainer.enable_model_summary=false"), echo=lambda *_: None)
        out[binarize] = run / "checkpoints" / "last.ckpt"
    return out


@pytest.mark.parametrize("binarize", ["classifier", "full"])
def test_export_contract_and_c_reference(binarize, checkpoints, tmp_path):
    out = tmp_path / "export"
    manifest = export_checkpoint(str(checkpoints[binarize]), str(out), n_vectors=64)
    for name in ("model.npz", "manifest.json", "vectors.npz", "bnn.h", "bnn.c",
                 "bnn_weights.h", "bnn_check.c", "classifier_input.i8"):
        assert (out / name).is_file(), name
    assert json.loads((out / "manifest.json").read_text()) == manifest

    from bnn_edge.experiment.rundir import load_module

    net = load_module(checkpoints[binarize]).net.eval()
    expected = binary_layers(net)
    assert [layer["name"] for layer in manifest["binary_layers"]] == [n for n, _ in expected]
    assert len(expected) == (2 if binarize == "classifier" else 7)
    model = np.load(out / "model.npz")
    for name, layer in expected:
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1).numpy()
        bits = np.packbits(w >= 0, axis=1, bitorder="little")
        assert np.array_equal(model[f"{name}.weight_bits"], bits)
        assert model[f"{name}.weight_bits"].shape == (w.shape[0], -(-w.shape[1] // 8))
        assert int(model[f"{name}.in_features"]) == w.shape[1]
    hidden_name, last_name = manifest["classifier_layers"]
    assert model[f"{hidden_name}.threshold"].dtype == np.float64
    assert model[f"{hidden_name}.flip"].dtype == bool
    assert model[f"{last_name}.scale"].dtype == np.float32

    vectors = np.load(out / "vectors.npz")
    x, logits = vectors["classifier_input"], vectors["logits"]
    assert x.dtype == np.int8 and set(np.unique(x)) <= {-1, 1}
    assert x.shape == (64, 5152) and logits.shape == (64, 2) and logits.dtype == np.float32

    # the Python packed path reproduces PyTorch's hidden bits and logits
    children = list(net.classifier)
    first = next(i for i, m in enumerate(children) if isinstance(m, BinaryLinear))
    hidden_act = next(m for m in children[first:] if isinstance(m, SignActivation))
    hidden_sign = []
    hidden_act.register_forward_hook(lambda mod, a, o: hidden_sign.append(o))
    with torch.no_grad():
        torch_logits = net.classifier[first:](torch.from_numpy(x).float())
    np.testing.assert_allclose(torch_logits.numpy(), logits, rtol=1e-6)
    torch_hidden = hidden_sign[-1].numpy().astype(np.int8)
    layers = fold_classifier(net.classifier)
    bits, scores = packed_forward(layers, x)
    assert np.array_equal(bits[0], torch_hidden)
    np.testing.assert_allclose(scores, logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())

    # the C reference, compiled with the system's cc, agrees bit for bit
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler (cc) is needed for the export test"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                    "bnn.c", "bnn_check.c", "-o", "bnn_check"], cwd=out, check=True)
    proc = subprocess.run(["./bnn_check", "classifier_input.i8", "64", "scores.f32",
                           "hidden.i8"], cwd=out, check=True, capture_output=True, text=True)
    c_pred = np.array([int(v) for v in proc.stdout.split()])
    c_scores = np.fromfile(out / "scores.f32", dtype=np.float32).reshape(64, 2)
    c_hidden = np.fromfile(out / "hidden.i8", dtype=np.int8).reshape(64, 75)
    assert np.array_equal(c_hidden, torch_hidden)
    assert np.array_equal(c_pred, logits.argmax(1))
    np.testing.assert_allclose(c_scores, logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())


def test_export_refuses_a_model_without_binary_layers(checkpoints, tmp_path):
    with pytest.raises(BnnEdgeError, match="no binary fully connected layers"):
        export_checkpoint(str(checkpoints["none"]), str(tmp_path / "x"))


def test_export_refuses_non_finite_constants_and_logits(tmp_path):
    """No offset=-inf in model.npz or bnn_weights.h, no inf logits in vectors.npz."""
    net = random_classifier((37, 29, 5), seed=8)
    x = torch.randn(64, 37)
    with torch.no_grad():
        net.classifier[5].running_mean[2] = float("inf")
    with pytest.raises(BnnEdgeError, match=r"cannot fold the classifier for export: "
                                           r"classifier\.4\.offset: not finite \(-?inf at "
                                           r"output 2\)"):
        export_model(net, tmp_path / "a", x, {"model": "test"})
    with torch.no_grad():
        norm = net.classifier[5]
        norm.running_mean[2] = 0.0
        norm.running_mean[1], norm.running_var[1] = net.classifier[4].bias[1], 1.0
        norm.weight[1] = 3e38  # a finite scale whose scores overflow float32
    with pytest.raises(BnnEdgeError, match=r"the model's logits are not finite \(test vector "
                                           r"\d+: \[.*inf"):
        export_model(net, tmp_path / "b", x, {"model": "test"})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_export_cli(checkpoints, tmp_path):
    proc = run_cli("bnn_edge.export", f"ckpt_path={checkpoints['classifier']}",
                   f"out={tmp_path / 'cli'}", "n_vectors=64")
    assert proc.returncode == 0, proc.stderr
    assert "Exported 2 binary layers" in proc.stdout
    bad = run_cli("bnn_edge.export", f"ckpt_path={tmp_path / 'missing.ckpt'}",
                  f"out={tmp_path / 'cli2'}")
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: ckpt_path=")


def test_native_export_prints_its_agreement_and_honours_the_vector_count(checkpoints,
                                                                         tmp_path):
    """The native export checked nothing while onnx and qonnx printed their agreement; and
    n_vectors above the training split's size was cut to it silently (256 -> 128)."""
    run = checkpoints["classifier"].parent.parent
    sizes = json.loads((run / "data.json").read_text())["split_sizes"]
    wanted = sizes["train"] + sizes["val"] + 3
    out = tmp_path / "more"
    proc = run_cli("bnn_edge.export", f"ckpt_path={checkpoints['classifier']}", f"out={out}",
                   f"n_vectors={wanted}")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["vectors"]["n"] == wanted
    assert manifest["vectors_from"] == {"train": sizes["train"], "val": sizes["val"], "test": 3}
    assert (f"packed engine ({kernels.isa()}) reading {out} on {wanted} vectors: "
            f"{wanted}/{wanted} classes identical to PyTorch, max |logit difference| ") in \
        proc.stdout
    assert "n_vectors=" not in proc.stdout  # all of them exported: no notice
    datamodule = RunDir.of_checkpoint(checkpoints["classifier"]).datamodule()
    datamodule.setup("fit")
    first = datamodule.val_dataloader().dataset[0][0]
    module = load_module(checkpoints["classifier"]).net.eval()
    with torch.no_grad():
        logits = module(first[None])[0].numpy()
    np.testing.assert_allclose(np.load(out / "vectors.npz")["logits"][sizes["train"]], logits,
                               rtol=1e-5, atol=1e-6)  # the validation split follows

    everything = sum(sizes.values())
    proc = run_cli("bnn_edge.export", f"ckpt_path={checkpoints['classifier']}",
                   f"out={tmp_path / 'all'}", f"n_vectors={everything + 100}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == (
        f"n_vectors={everything + 100}: the run's data holds {everything} trials (training, "
        f"validation and test splits together); exported {everything}")


def test_native_agreement_compares_with_the_stored_pytorch_logits(checkpoints, tmp_path):
    out = tmp_path / "export"
    export_checkpoint(str(checkpoints["classifier"]), str(out), n_vectors=64)
    assert "64/64 classes identical" in native_agreement(out)
    vectors = dict(np.load(out / "vectors.npz"))
    other = 1 - vectors["logits"][:5].argmax(1)  # 5 stored classes made the other one
    vectors["logits"][:5] = np.eye(2, dtype=np.float32)[other]
    np.savez(out / "vectors.npz", **vectors)
    assert "59/64 classes identical" in native_agreement(out)


def test_export_takes_a_run_folder_as_evaluate_does(checkpoints, tmp_path):
    """``ckpt_path=<run dir>`` exports the checkpoint evaluate would read: the best one."""
    from bnn_edge.experiment.robustness import checkpoint_paths

    run = checkpoints["classifier"].parent.parent
    (best,) = checkpoint_paths(str(run))
    assert best.name.startswith("best-epoch000-")
    proc = run_cli("bnn_edge.export", f"ckpt_path={run}", f"out={tmp_path / 'dir'}",
                   "n_vectors=64")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "dir" / "manifest.json").read_text())
    assert manifest["checkpoint"] == str(best.resolve())
    export_checkpoint(str(best), str(tmp_path / "file"), n_vectors=64)
    for name in ("model.npz", "vectors.npz", "bnn_weights.h"):
        assert (tmp_path / "dir" / name).read_bytes() == (tmp_path / "file" / name).read_bytes()


def test_export_refuses_a_folder_with_files_unless_overwrite(checkpoints, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = [f"ckpt_path={checkpoints['classifier']}", f"out={out}", "n_vectors=64"]
    proc = run_cli("bnn_edge.export", *args)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: out='{out}' is not allowed: expected an empty or "
                                   f"new folder (it holds files; overwrite=true replaces the "
                                   f"export's files in it)")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    proc = run_cli("bnn_edge.export", *args, "overwrite=true")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    written = sorted(p.name for p in out.iterdir() if p.name != "notes.txt")
    assert manifest["files"] == written and "notes.txt" not in manifest["files"]
    assert (out / "notes.txt").read_text() == "mine"


def test_printed_c_command_is_shell_quoted_and_runs(checkpoints, tmp_path):
    out = tmp_path / "with space"
    proc = run_cli("bnn_edge.export", f"ckpt_path={checkpoints['classifier']}", f"out={out}",
                   "n_vectors=64")
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("C reference: ")]
    command = line.removeprefix("C reference: ")
    assert command.startswith(f"cd {shlex.quote(str(out))} && ")
    run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.split()) == 64


@pytest.mark.parametrize("args", [[], ["classifier_input.i8", "abc", "s.f32"],
                                  ["classifier_input.i8", "0", "s.f32"],
                                  ["classifier_input.i8", "-3", "s.f32"],
                                  ["classifier_input.i8", "5x", "s.f32"],
                                  ["a", "1", "b", "c", "d"]])
def test_bnn_check_refuses_bad_arguments_with_its_usage(args, built_c):
    proc = subprocess.run([str(built_c), *args], cwd=built_c.parent, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "usage: " in proc.stderr
    assert not (built_c.parent / "s.f32").exists()


def test_bnn_check_refuses_a_short_input_without_writing(built_c):
    short = built_c.parent / "short.i8"
    short.write_bytes((built_c.parent / "classifier_input.i8").read_bytes()[:100])
    proc = subprocess.run([str(built_c), "short.i8", "64", "s.f32"], cwd=built_c.parent,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "expected 64 vectors" in proc.stderr
    assert not (built_c.parent / "s.f32").exists()


@pytest.fixture(scope="module")
def built_c(checkpoints, tmp_path_factory):
    """bnn_check compiled from a fresh export of the classifier checkpoint."""
    out = tmp_path_factory.mktemp("c_export")
    export_checkpoint(str(checkpoints["classifier"]), str(out / "e"), 64)
    exe = out / "e" / "bnn_check"
    subprocess.run(["cc", "-std=c99", "-O2", "bnn.c", "bnn_check.c", "-o", str(exe)],
                   cwd=out / "e", check=True, timeout=120)
    return exe
