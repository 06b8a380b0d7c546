"""Memory accounting (Table IV) and array mapping."""

from __future__ import annotations

import json
import math

import pytest

from bnn_edge.hardware.memory import array_mapping, equal_memory_aug, memory_report
from bnn_edge.tasks import build_network
from tests.conftest import run_cli

ECG_CONV = 37_760 + 160  # conv weights + biases
ECG_FC = 386_627  # FC weights + biases (Table II)
ECG_NORM_FEATURES = 12 * 2 + 5 * 32 * 2  # input and conv batch norms
ECG_NORM_CLASSIFIER = 75 * 2 + 2 * 2


def test_ecg_classifier_row():
    r = memory_report("ecg", "classifier", 1)
    assert r["total_params"] == ECG_CONV + ECG_FC + ECG_NORM_FEATURES + ECG_NORM_CLASSIFIER
    assert r["classifier_params"] == ECG_FC + ECG_NORM_CLASSIFIER
    assert r["binary_params"] == ECG_FC
    assert r["folded_norm_params"] == ECG_NORM_CLASSIFIER
    assert r["bytes_fp32"] == 4 * r["total_params"] and r["bytes_int8"] == r["total_params"]
    real = ECG_CONV + ECG_NORM_FEATURES
    assert r["bytes_mixed_fp32"] == math.ceil(4 * real + ECG_FC / 8)
    assert r["bytes_mixed_int8"] == math.ceil(real + ECG_FC / 8)
    assert r["saving_vs_fp32_pct"] == round(100 * (1 - r["bytes_mixed_fp32"] / r["bytes_fp32"]), 2)
    assert (r["saving_vs_fp32_pct"], r["saving_vs_int8_pct"]) == (88.16, 79.63)
    assert r["threshold_bytes"] == (75 + 2 * 2) * 4


def test_ecg_variants_and_aug():
    none = memory_report("ecg", "none", 1)
    assert none["binary_params"] == 0 and none["saving_vs_fp32_pct"] == 0.0
    full = memory_report("ecg", "full", 1)
    assert full["binary_params"] == ECG_CONV + ECG_FC
    # only the input batch norm stays real: every other batch norm follows a binary layer
    assert full["bytes_mixed_fp32"] == math.ceil(4 * 24 + (ECG_CONV + ECG_FC) / 8)
    aug2 = memory_report("ecg", "classifier", 2)
    assert aug2["classifier_params"] == 161 * 64 * 75 + 75 + 75 * 2 + 2 + ECG_NORM_CLASSIFIER
    assert aug2["total_params"] == memory_report("ecg", "none", 2)["total_params"]


def test_layer_rows_add_up():
    r = memory_report("ecg", "classifier", 1)
    assert sum(row["params"] for row in r["layers"]) == r["configured_params"]
    binary_rows = [row for row in r["layers"] if row["binary"]]
    assert [row["name"] for row in binary_rows] == ["classifier.3", "classifier.7"]
    assert all(row["bits_mixed_fp32"] == 1 for row in binary_rows)


@pytest.mark.parametrize("size", [32, 64, 16])
def test_array_mapping(size):
    net = build_network("ecg", "full", 1)
    mapping = {m.name: m for m in array_mapping(net, size)}
    fc = mapping["classifier.2"]  # full: flatten, dropout, binary linear
    assert (fc.rows, fc.cols) == (5152, 75)
    assert fc.arrays == math.ceil(5152 / size) * math.ceil(75 / size)
    assert fc.devices == 2 * 5152 * 75 and fc.sense_amplifiers == fc.arrays * size
    conv2 = mapping["features.6"]  # 32 channels x 11 taps of fan-in, 32 outputs
    assert (conv2.rows, conv2.cols) == (32 * 11, 32)
    assert conv2.arrays == math.ceil(352 / size) * math.ceil(32 / size)
    assert 0 < fc.utilization <= 1


def test_ecg_classifier_needs_486_arrays():
    r = memory_report("ecg", "classifier", 1)
    assert r["arrays"]["total_arrays"] == 161 * 3 + 3 * 1
    assert r["arrays"]["total_devices"] == 2 * (5152 * 75 + 75 * 2)


def test_cli_json_and_table():
    proc = run_cli("bnn_edge.memory", "model=ecg", "binarize=classifier", "format=json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key in ("total_params", "classifier_params", "binary_params", "bytes_fp32",
                "bytes_int8", "bytes_mixed_fp32", "bytes_mixed_int8", "saving_vs_fp32_pct",
                "saving_vs_int8_pct", "layers", "arrays"):
        assert key in report
    assert report["saving_vs_fp32_pct"] == 88.16
    table = run_cli("bnn_edge.memory", "model=ecg", "binarize=classifier")
    assert table.returncode == 0
    assert "saving vs 32 bit / vs 8 bit" in table.stdout and "88.2% / 79.6%" in table.stdout


def test_cli_rejects_bad_options():
    proc = run_cli("bnn_edge.memory", "model=ecg", "format=xml")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: format='xml' is not allowed: "
                                   "expected one of table, json")


def test_eeg_and_mobilenet_rows_match_the_paper():
    eeg = memory_report("eeg", "classifier", 1)
    assert eeg["binary_params"] == 201_842  # Table I's classifier, weights and biases
    assert (eeg["saving_vs_fp32_pct"], eeg["saving_vs_int8_pct"]) == (63.99, 57.8)
    assert eeg["arrays"]["total_arrays"] == 79 * 3 + 3
    mobilenet = memory_report("mobilenet", "classifier", 1)
    assert mobilenet["total_params"] == 4_231_976
    assert mobilenet["classifier_params"] == 1_025_000
    assert mobilenet["binary_params"] == 5_699_584
    assert mobilenet["bytes_mixed_fp32"] == 4 * 3_206_976 + 5_699_584 // 8
    assert (mobilenet["saving_vs_fp32_pct"], mobilenet["saving_vs_int8_pct"]) == (20.01, 7.39)
    assert mobilenet["arrays"]["total_arrays"] == 32 * 88 + 88 * 32


@pytest.mark.parametrize(("model", "bits", "expected"), [
    ("ecg", 32, 3.23), ("ecg", 8, 1.55), ("eeg", 32, 4.96), ("eeg", 8, 2.30)])
def test_equal_memory_aug_is_where_the_full_network_reaches_the_classifier(model, bits,
                                                                           expected):
    """The paper's "BNN of equivalent number of bits": the full network's bytes cross the
    binarized classifier's between the two integer augs around the returned one."""
    key = {32: "bytes_mixed_fp32", 8: "bytes_mixed_int8"}[bits]
    aug = equal_memory_aug(model, bits)
    target = memory_report(model, "classifier", 1)[key]
    below = memory_report(model, "full", math.floor(aug))[key]
    above = memory_report(model, "full", math.ceil(aug))[key]
    assert below <= target <= above and round(aug, 2) == expected
    assert aug == pytest.approx(math.floor(aug) + (target - below) / (above - below))
