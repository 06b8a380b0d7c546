"""A fourth task that lives outside bnn_edge (tests/helpers/sleep_task, a toy sleep staging),
installed into a folder of its own and found through the ``bnn_edge.tasks`` entry point:
train, memory, export (native and onnx), cost and report all run on it, with no line of
bnn_edge naming it (docs/adding_a_task.md)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli, stderr_lines

PACKAGE = ROOT / "tests" / "helpers" / "sleep_task"


def install(site, entry_point: str = "sleep_task:TASK") -> dict:
    """What ``pip install tests/helpers/sleep_task`` leaves: the package and a dist-info
    with its entry point, in ``site``; the environment that puts ``site`` on the path."""
    shutil.copytree(PACKAGE / "sleep_task", site / "sleep_task")
    info = site / "sleep_task-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sleep-task\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[bnn_edge.tasks]\nsleep = {entry_point}\n")
    return {"PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def sleep(tmp_path_factory):
    """The installed task and one trained run of it (binarize=classifier, 6 epochs)."""
    root = tmp_path_factory.mktemp("sleep")
    env = install(root / "site") | {"BNN_EDGE_LOG_DIR": str(root / "logs")}
    run = root / "runs" / "sleep_classifier"
    proc = run_cli("bnn_edge.train", "model=sleep", "binarize=classifier", "trainer.max_epochs=6",
                   f"hydra.run.dir={run}", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return env, root, run, proc.stdout


def test_train_learns_the_task_and_reports_its_categories(sleep):
    env, _, run, stdout = sleep
    results = json.loads((run / "results.json").read_text())
    assert results["model"] == "sleep" and results["binarize"] == "classifier"
    assert results["val_acc"] > 0.8  # three stages: chance is 1/3
    assert list(results["test_acc_by_category"]) == ["wake", "N2", "REM"]
    assert sum(v["n"] for v in results["test_acc_by_category"].values()) == 60  # 20 % of 300
    assert "Test accuracy by stage: wake " in stdout
    data = json.loads((run / "data.json").read_text())
    assert data["description"] == "synthetic sleep epochs (300, seed 42)"


def test_memory_counts_the_sleep_network(sleep):
    env = sleep[0]
    proc = run_cli("bnn_edge.memory", "model=sleep", "binarize=full", "format=json", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    # conv 2->8 (k7), conv 8->8 (k5), dense 8*16 -> 16, dense 16 -> 3, with biases; batch
    # norms of the input, both convs and both dense layers
    convs = (2 * 7 * 8 + 8) + (8 * 5 * 8 + 8)
    dense = (8 * 16 * 16 + 16) + (16 * 3 + 3)
    norms = 2 * (2 + 8 + 8 + 16 + 3)
    assert report["total_params"] == convs + dense + norms
    assert report["binary_params"] == convs + dense
    rows = {a["name"]: a["rows"] for a in report["arrays"]["layers"]}
    assert rows == {"features.1": 14, "features.5": 40, "classifier.1": 128, "classifier.4": 16}


def test_export_native_and_onnx_agree_with_pytorch(sleep, tmp_path):
    env, _, run, _ = sleep
    for fmt in ("native", "onnx"):
        out = tmp_path / fmt
        proc = run_cli("bnn_edge.export", f"ckpt_path={run}", f"out={out}", f"format={fmt}",
                       "n_vectors=64", env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "64/64 classes identical to PyTorch" in proc.stdout
        vectors = np.load(out / "vectors.npz")
        if fmt == "onnx":
            assert vectors["input"].shape == (64, 2, 256)
        else:  # +-1 inputs of the first binary layer: the 8 x 16 flattened features
            assert vectors["classifier_input"].shape == (64, 128)
        assert json.loads((out / "manifest.json").read_text())["model"] == "sleep"


def test_cost_counts_every_variant(sleep, tmp_path):
    env = sleep[0]
    proc = run_cli("bnn_edge.cost", "model=sleep", "binarize=full", f"out={tmp_path}",
                   "format=json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["input_shape"] == [2, 256]
    assert [layer["name"] for layer in report["layers"]] == [
        "features.1", "features.5", "classifier.1", "classifier.4"]
    assert {v["binarize"] for v in report["variants"]} == {"none", "classifier", "full"}


def test_report_titles_the_task_and_sets_the_paper_beside_it(sleep, tmp_path):
    env, root, _, _ = sleep
    proc = run_cli("bnn_edge.report", str(root / "runs"), f"out={tmp_path / 'report'}", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (tmp_path / "report" / "table3.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| Sleep staging |"))
    assert "90% (1x)" in row  # the paper figure the task record declares


def test_the_task_is_a_choice_of_every_command_only_when_installed(sleep):
    env = sleep[0]
    bad = run_cli("bnn_edge.memory", "model=cat", env=env)
    assert stderr_lines(bad) == ["error: model='cat' is not allowed: expected one of ecg, eeg, "
                                 "mobilenet, sleep"]
    without = run_cli("bnn_edge.memory", "model=sleep")
    assert stderr_lines(without) == ["error: model='sleep' is not allowed: expected one of "
                                     "ecg, eeg, mobilenet"]


def test_a_broken_entry_point_is_named(tmp_path):
    env = install(tmp_path, entry_point="sleep_task.nowhere:TASK")
    proc = run_cli("bnn_edge.memory", "model=ecg", env=env)
    assert proc.returncode == 2
    assert stderr_lines(proc) == [
        "error: entry point sleep = sleep_task.nowhere:TASK (bnn_edge.tasks): cannot be "
        "imported (No module named 'sleep_task.nowhere')"]


def test_a_second_task_under_a_taken_name_is_refused(tmp_path):
    env = install(tmp_path, entry_point="bnn_edge.tasks.ecg:TASK")  # a record named ecg
    proc = run_cli("bnn_edge.memory", "model=ecg", env=env)
    assert proc.returncode == 2
    assert stderr_lines(proc) == [
        "error: entry point sleep = bnn_edge.tasks.ecg:TASK (bnn_edge.tasks): a task named "
        "'ecg' is already registered"]
