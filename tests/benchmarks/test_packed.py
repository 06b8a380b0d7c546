"""benchmarks/packed.py on tiny shapes: every baseline runs, checked, and the table's arithmetic."""

from __future__ import annotations

import torch

from benchmarks import packed


def test_main_times_every_baseline_on_tiny_shapes(monkeypatch, capsys):
    monkeypatch.setattr(packed, "SHAPES", {"tiny": (70, 9, 3)})
    monkeypatch.setattr(packed, "CONV_AUGS", (1,))
    rows = packed.main(["--rounds", "1", "--threads", "1", "--batches", "1", "3",
                        "--int8-min-rows", "2"])  # main asserts int8 == engine == PyTorch
    assert [(r["what"], r["batch"]) for r in rows] == [
        ("tiny 70->9->3", 1), ("tiny 70->9->3", 3),
        ("ECG aug1 convs 2-5 (32 ch)", 1), ("ECG aug1 convs 2-5 (32 ch)", 3)]
    for r in rows:
        assert all(r[k] > 0 for k in ("torch", "bf16", "int8", "packed"))
    assert rows[1]["macs"] == 3 * (70 * 9 + 9 * 3)
    # conv 2 (11 taps, 369 -> 359, pool 2 -> 179), conv 3-5 (171, 165, 161 positions)
    assert rows[2]["macs"] == 32 * 32 * (359 * 11 + 171 * 9 + 165 * 7 + 161 * 5)
    out = capsys.readouterr().out
    assert "best other / packed" in out
    assert "Limit of the binary kernel: 1.19 TMAC/s = 1 cores x 3.5 GHz x 341" in out


def test_a_row_names_the_best_alternative_and_the_share_of_the_limit():
    row = {"what": "x", "batch": 256, "torch": 4e-3, "bf16": 2e-3, "int8": 3e-3,
           "numpy": None, "packed": 1e-3, "macs": 6e8, "float_bytes": 3200,
           "export_bytes": 100, "engine_bytes": 128}
    cells = dict(zip(packed.COLUMNS, packed.table_row(row, limit=1.2e12), strict=True))
    assert cells["best other / packed"] == "2.0x (bf16)"
    assert cells["torch / packed"] == "4.0x" and cells["numpy / packed"] == "n/a"
    assert cells["packed binary GMAC/s"] == "600" and cells["of limit"] == "50%"
    assert cells["float32 / engine"] == "25.0x"


def test_the_bf16_baseline_is_the_float32_layers_rounded():
    net = packed.float_classifier(64, 32, 4)
    x = torch.randn(5, 64)
    with torch.inference_mode():
        f32 = packed.functional(net, torch.float32)(x)
        bf16 = packed.functional(net, torch.bfloat16)(x)
        assert torch.equal(f32, net(x))
    assert bf16.dtype == torch.bfloat16
    torch.testing.assert_close(bf16.float(), f32, rtol=0, atol=0.1 * f32.abs().max().item())
    assert not torch.equal(bf16.float(), f32)
