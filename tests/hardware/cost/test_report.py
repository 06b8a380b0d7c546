"""The report's output: the chart of the variants and the variant table."""

from __future__ import annotations

from bnn_edge.hardware.cost.params import HardwareParams
from bnn_edge.hardware.cost.report import markdown_variants, si, variant_rows
from tests.helpers.cost import ecg_report, preset


def test_chart_draws_each_energy_from_the_axis_of_its_log_scale():
    """Stacked on a log axis, the classifier's binary-layer energy (178 nJ under 54 uJ) was
    invisible: each part is now a bar of its own from the axis, the area chart is linear."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bnn_edge.hardware.cost.report import ENERGY_BARS, draw_variants

    report = ecg_report(HardwareParams.from_mapping(preset()))
    variants = report["variants"]
    fig, (ax_e, ax_a) = plt.subplots(2, 1)
    draw_variants(ax_e, ax_a, variants, "test")
    assert ax_e.get_yscale() == "log" and ax_a.get_yscale() == "linear"
    bars = ax_e.patches
    assert len(bars) == len(ENERGY_BARS) * len(variants)
    assert all(bar.get_y() == 0 for bar in bars)  # none stands on another
    low, high = ax_e.get_ylim()
    for k, (key, _) in enumerate(ENERGY_BARS):
        heights = [bar.get_height() for bar in bars[k * len(variants):(k + 1) * len(variants)]]
        assert heights == [v[key] for v in variants]
        assert all(low < h < high for h in heights if h > 0)
    classifier = next(v for v in variants if v["binarize"] == "classifier")
    assert 0 < classifier["energy_binary_j"] < classifier["energy_real_j"] / 100
    assert {t.get_text() for t in ax_e.texts} >= {si(classifier["energy_binary_j"], "J"), "0"}
    plt.close(fig)


def test_the_variant_table_is_one_for_markdown_and_the_console():
    """The printed comparison and the Markdown one share their cells (the CLI used to build its
    own): ECG classifier at aug 1, ratios to none fp32 dram, areas in mm2."""
    report = ecg_report(HardwareParams.from_mapping(preset()))
    rows = variant_rows(report["variants"])
    assert [r[:2] for r in rows] == [(b, f"{p} {m}") for b in ("none", "classifier", "full")
                                     for p in ("fp32", "int8") for m in ("sram", "dram")]
    assert rows[1] == ("none", "fp32 dram", "0", "0", "330 uJ", "330 uJ", "1x", "11.7 ms", "0",
                       "0", "0")
    assert rows[4] == ("classifier", "fp32 sram", "486", "178 nJ", "54.4 uJ", "54.5 uJ",
                       "0.165x", "11.3 ms", "1.615", "0.688", "2.303")
    table = markdown_variants(report).splitlines()
    assert table[0] == "ecg aug=1, parameter set rram_2t2r_130nm, per inference:"
    assert table[4:] == ["| " + " | ".join([*r[:8], *(f"{a} mm2" for a in r[8:])]) + " |"
                         for r in rows]
    assert table[12] == ("| full | fp32 sram | 523 | 9.08 uJ | 0 | 9.08 uJ | 0.0275x | 511 us "
                         "| 1.738 mm2 | 0 mm2 | 1.738 mm2 |")
