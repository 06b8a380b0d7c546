"""benchmarks/roofline.py: its analytic FLOP count and one tiny run end to end."""

from __future__ import annotations

import pytest

from benchmarks import roofline


def test_eeg_flops_are_the_table_i_multiply_accumulates():
    """Per trial at aug 1: temporal conv 40 x 64 x 961 outputs of 30 taps, spatial conv
    40 x 961 outputs of 40 x 64 inputs, FC 2520 -> 80 -> 2; three passes but no input
    gradient for the first layer."""
    def expected(aug):
        k = 40 * aug
        temporal, spatial, fc = k * 64 * 961 * 30, k * 961 * k * 64, 63 * k * 80 + 80 * 2
        return 2 * (3 * (temporal + spatial + fc) - temporal)

    assert expected(1) == 886_868_160
    for binarize in ("none", "classifier", "full"):
        assert roofline.training_flops("eeg", binarize, 1) == expected(1)
    assert roofline.training_flops("eeg", "full", 11) == expected(11)


def test_ecg_flops_grow_with_the_filters():
    one, seven = (roofline.training_flops("ecg", "none", a) for a in (1, 7))
    assert 7 * one < seven < 49 * one  # the first conv grows with aug, the others with aug^2


def test_a_tiny_table_runs_each_row_in_its_own_process(capsys):
    out = roofline.main(["--rows", "ecg:1", "--variants", "full", "--quick",
                         "--gemm-size", "256", "--batch-size", "8"])
    assert out["peak"]["fp32"] > 0 and out["peak"]["bf16"] > 0
    rows = out["rows"]
    assert [(r["task"], r["binarize"], r["path"]) for r in rows] == [("ecg", "full", "plain")]
    for r in rows:
        for precision in roofline.PRECISIONS:
            m = r[precision]
            assert m["samples_s"] == pytest.approx(8 / m["step_s"])
            assert m["gflops"] == pytest.approx(r["flops"] * 8 / m["step_s"] / 1e9)
            assert 50e6 < m["peak_bytes"] < 8e9  # a Python process with torch loaded
    printed = capsys.readouterr().out
    assert "Training roofline" in printed and "bf16 / fp32" in printed


def test_the_path_column_says_where_eeg_recomputes():
    assert roofline.path_of("ecg", 7, None, 32) == "plain"
    assert roofline.path_of("eeg", 1, None, 32) == "plain"
    assert roofline.path_of("eeg", 11, None, 32) == "recompute 1"
    assert roofline.path_of("eeg", 1, 3, 32) == "recompute 3"


@pytest.mark.parametrize("bad", ["mnist:1", "ecg", "ecg:0", "ecg:1:2", "eeg:1:x", "eeg:1:1:1"])
def test_a_bad_row_is_refused(bad, capsys):
    with pytest.raises(SystemExit) as e:
        roofline.main(["--rows", bad])
    assert e.value.code == 2 and "--rows" in capsys.readouterr().err
