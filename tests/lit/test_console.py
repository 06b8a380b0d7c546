"""What training shows: the network as Table IV counts it (no "Total FLOPs: 0"), epochs from 1."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hydra.utils import instantiate

from bnn_edge.experiment.training import train
from bnn_edge.hardware.cost import build_from, meta_shapes
from bnn_edge.hardware.memory import memory_report
from bnn_edge.lit.console import summary_rows
from tests.helpers.runs import compose_app


@pytest.mark.parametrize(("network", "binarize", "aug"), [("ecg", "classifier", 1),
                                                          ("eeg", "full", 2)])
def test_summary_counts_memory_as_table_iv_and_every_mac(network, binarize, aug):
    hp = {"network": network, "binarize": binarize, "aug": aug, "num_classes": 2}
    rows, report = summary_rows(hp)
    assert report == memory_report(network, binarize, aug, num_classes=2) | {
        "macs": report["macs"]}
    _, shapes = meta_shapes(build_from(network, {"aug": aug, "num_classes": 2}), binarize)
    assert [r[0] for r in rows] == [s.name for s in shapes]
    macs = [int(r[5].replace(",", "")) for r in rows]
    assert macs == [s.rows * s.cols * s.positions for s in shapes]
    assert report["macs"]["binary"] == sum(m for m, s in zip(macs, shapes, strict=True)
                                           if s.binary) > 0
    assert sum(report["macs"].values()) == sum(macs)
    bits = {r[0]: r[4] for r in rows}
    assert {bits[s.name] for s in shapes if s.binary} == {"1"}
    assert {bits[s.name] for s in shapes if not s.binary} <= {"32"}


def test_training_prints_the_network_summary_not_lightnings(tmp_path, capsys):
    """Lightning's summary said "Total FLOPs: 0" and counted binary weights at 32 bit."""
    cfg = compose_app("train", "data.n_trials=40", "trainer.max_epochs=1",
                      "callbacks.rich_progress_bar=null", f"paths.output_dir={tmp_path}")
    train(cfg, echo=print)
    out = capsys.readouterr().out
    assert "FLOPs" not in out and "Total estimated model params size" not in out
    rows, report = summary_rows({"network": "ecg", "binarize": "classifier", "aug": 1,
                                 "num_classes": 2})
    lines = out.splitlines()
    assert any("Network: ecg binarize=classifier aug=1" in line for line in lines)
    for row in rows:
        assert any(line.split() == list(row) for line in lines), row
    text = " ".join(out.split())
    assert (f"{report['configured_params']:,} parameters, {report['binary_params']:,} of them "
            f"binary; {report['macs']['real']:,} real MACs + {report['macs']['binary']:,} "
            f"binary (XNOR-popcount) per inference") in text
    assert f"{report['saving_vs_fp32_pct']:.1f}% less than the real network at 32 bit" in text


def test_summary_is_off_with_trainer_enable_model_summary_false(tmp_path, capsys):
    cfg = compose_app("train", "data.n_trials=40", "trainer.max_epochs=1",
                      "callbacks.rich_progress_bar=null", "trainer.enable_model_summary=false",
                      f"paths.output_dir={tmp_path}")
    train(cfg, echo=print)
    assert "Network:" not in capsys.readouterr().out


@pytest.mark.parametrize(("epoch", "max_epochs", "text"), [(0, 1, "Epoch 1/1"),
                                                           (9, 10, "Epoch 10/10"),
                                                           (2, -1, "Epoch 3")])
def test_progress_bar_counts_epochs_from_one(epoch, max_epochs, text):
    """The configured bar said "Epoch 0/0" for one epoch."""
    bar = instantiate(compose_app("train").callbacks.rich_progress_bar)
    bar._trainer = SimpleNamespace(max_epochs=max_epochs)
    assert bar._get_train_description(epoch).strip() == text
