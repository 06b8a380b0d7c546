"""The cost report's output: CSV and Markdown text, the chart of the variants, the
parameters' provenance and the files written (nothing is written before every result is
checked, :func:`bnn_edge.hardware.cost.model.check_results`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from bnn_edge.hardware.cost.model import baseline
from bnn_edge.hardware.cost.params import HardwareParams


def si(value: float, unit: str) -> str:
    """``value`` with an SI prefix: si(4.2e-6, "J") == "4.2 uJ"."""
    if value == 0:
        return "0"
    prefixes = [(1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1, "")]
    for scale, p in reversed(prefixes):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {p}{unit}"
    return f"{value:.3g} {unit}"


def csv_text(rows: list[dict]) -> str:
    """``rows`` as CSV (header from the first row)."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def provenance(hw: HardwareParams, sources: dict, preset: dict) -> list[dict]:
    """Every parameter with its value and where it comes from (preset, command line)."""
    rows = []
    for key in HardwareParams.names()[1:]:
        value = getattr(hw, key)
        if value is None:
            continue  # derived: listed with the derived quantities
        source = str(sources.get(key, ""))
        if key in preset and preset[key] != value:
            source = f"command line (the preset has {preset[key]!r}; {source})"
        rows.append({"parameter": key, "value": value, "source": source})
    return rows


def kind_of(source: str) -> str:
    """literature | simulator default | assumption | derived | command line."""
    s = source.lower()
    for kind in ("command line", "assumption", "derived", "simulator default", "literature"):
        if s.startswith(kind) or (kind == "assumption" and "assumption" in s):
            return kind
    return "unstated"


def variant_rows(variants: list[dict]) -> list[tuple[str, ...]]:
    """The variant comparison's cells, one row per variant: binarize, real layers, arrays,
    energies (binary, real, total), ratio to the :func:`baseline`, latency, areas in mm2
    (arrays, SRAM, total; the number without its unit)."""
    base = baseline(variants)["energy_j"]
    return [(v["binarize"], f"{v['real_precision']} {v['real_memory']}", f"{v['arrays']:,}",
             si(v["energy_binary_j"], "J"), si(v["energy_real_j"], "J"), si(v["energy_j"], "J"),
             f"{v['energy_j'] / base:.3g}x", si(v["latency_s"], "s"),
             f"{v['area_arrays_m2'] * 1e6:.4g}", f"{v['area_sram_m2'] * 1e6:.4g}",
             f"{v['area_m2'] * 1e6:.4g}") for v in variants]


def markdown_variants(report: dict) -> str:
    """The variant comparison as a Markdown table (docs/cost.md is made of these)."""
    lines = [f"{report['model']} aug={report['aug']}, parameter set "
             f"{report['hardware']['name']}, per inference:", "",
             "| binarize | real layers | arrays | energy: binary | energy: real | energy total "
             "| vs none fp32 dram | latency | area: arrays | area: SRAM | area total |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cells in variant_rows(report["variants"]):
        lines.append("| " + " | ".join([*cells[:8], *(f"{a} mm2" for a in cells[8:])]) + " |")
    return "\n".join(lines)


def variants_chart(variants: list[dict], title: str) -> bytes:
    """PNG chart of every variant / real storage: energy per inference and chip area
    (rendered in memory, so that a failure leaves no file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_e, ax_a) = plt.subplots(2, 1, figsize=(max(8, 0.9 * len(variants)), 8),
                                     sharex=True)
    try:
        draw_variants(ax_e, ax_a, variants, title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120)
        return buf.getvalue()
    finally:
        plt.close(fig)


#: the energy bars of a variant, side by side (a log axis cannot stack: a small part drawn
#: on top of a large one would not show)
ENERGY_BARS = (("energy_binary_j", "binary layers (2T2R arrays)"),
               ("energy_real_j", "real layers"), ("energy_j", "total"))


def draw_variants(ax_e, ax_a, variants: list[dict], title: str) -> None:
    """Energy per inference, each part its own bar from the axis on a log scale, its value
    written above it ("0" for none); on-chip area stacked on a linear scale."""
    x = np.arange(len(variants))
    width = 0.8 / len(ENERGY_BARS)
    positive = [v[key] for v in variants for key, _ in ENERGY_BARS if v[key] > 0]
    ax_e.set_yscale("log")
    ax_e.set_ylim(min(positive) / 3, max(positive) * 30)
    for k, (key, label) in enumerate(ENERGY_BARS):
        pos = x + (k - (len(ENERGY_BARS) - 1) / 2) * width
        values = [v[key] for v in variants]
        ax_e.bar(pos, values, width, label=label)
        for p, value in zip(pos, values, strict=True):
            ax_e.annotate(si(value, "J"), (p, value or min(positive) / 3), xytext=(0, 2),
                          textcoords="offset points", ha="center", va="bottom", fontsize=5,
                          rotation=90)
    ax_e.set_ylabel("energy per inference (J, log scale)")
    ax_e.legend(fontsize=8, loc="upper right")
    ax_e.set_title(title)
    area_arrays = [v["area_arrays_m2"] * 1e6 for v in variants]
    ax_a.bar(x, area_arrays, label="2T2R arrays + periphery")
    ax_a.bar(x, [v["area_sram_m2"] * 1e6 for v in variants], bottom=area_arrays,
             label="SRAM for real weights")
    for i, v in enumerate(variants):
        if v["real_memory"] == "dram" and v["area_sram_m2"] == 0 and v["macs"]:
            ax_a.text(i, area_arrays[i], "real weights\nin DRAM\n(off chip)", ha="center",
                      va="bottom", fontsize=6)
    ax_a.set_ylabel("on-chip area (mm$^2$, linear)")
    ax_a.set_xticks(list(x), [f"{v['binarize']}\n{v['real_precision']} {v['real_memory']}"
                              for v in variants], fontsize=7)
    ax_a.legend(fontsize=8)


def report_files(report: dict, out: Path) -> dict[Path, str | bytes]:
    """The report's files in ``out`` and their contents: the per-layer table of the variant
    asked for, the comparison of all three variants as CSV and as a chart."""
    name, binarize, aug, hw = report["model"], report["binarize"], report["aug"], \
        report["hardware"]
    return {
        out / f"cost_{name}_{binarize}_aug{aug}_layers.csv": csv_text(report["layers"]),
        out / f"cost_{name}_aug{aug}_variants.csv": csv_text(report["variants"]),
        out / f"cost_{name}_aug{aug}_variants.png": variants_chart(
            report["variants"], f"{name} aug={aug}, binarize=none, classifier and full, "
                                f"on {hw['array_size']}x{hw['array_size']} 2T2R arrays "
                                f"({hw['name']})"),
    }


def write_files(contents: dict[Path, str | bytes]) -> list[Path]:
    """Write every file (its folder created if missing); return their paths."""
    for path, content in contents.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, newline="")
    return list(contents)

