"""``python -m bnn_edge.memory model=eeg binarize=classifier [format=json]``: :data:`ABOUT`."""

from __future__ import annotations

import json
import sys

from omegaconf import DictConfig

from bnn_edge.cli.app import fail, run_app
from bnn_edge.cli.help import app_help
from bnn_edge.errors import BnnEdgeError
from bnn_edge.validation import require_choice, require_int

ABOUT = """\
The memory a network needs, counted as Table IV of the paper counts it, without training
or data: per layer its parameters and bits (binary weights 1 bit, the other layers at 32
or 8 bit, batch norms before a sign folded into thresholds), the Table IV row (total and
classifier parameters, size at 32 and 8 bit, the size as configured and the saving), and
how the binary layers map onto array_size x array_size 2T2R arrays (arrays, devices, sense
amplifiers, utilization). format=json prints the same as one JSON object."""
#: what the command line holds, for the usage line
ARGS = "[option=value ...]"


def print_report(report: dict) -> None:
    """The per-layer table, the Table IV row and the array mapping, as rich tables."""
    from rich.console import Console
    from rich.table import Table

    from bnn_edge.hardware.memory import human_bytes

    console = Console(width=None if sys.stdout.isatty() else 120)
    title = f"{report['model']} binarize={report['binarize']} aug={report['aug']}"
    layers = Table(title=f"Layers of {title} (bytes as configured)")
    for col in ("layer", "type", "shape", "params", "bits (fp32 / int8 ref.)",
                "bytes (fp32 ref.)", "bytes (int8 ref.)"):
        layers.add_column(col, justify="left" if col in ("layer", "type", "shape") else "right")
    for r in report["layers"]:
        bits = "folded" if r["folded"] else f"{r['bits_mixed_fp32']} / {r['bits_mixed_int8']}"
        layers.add_row(r["name"], r["kind"] + (" (binary)" if r["binary"] else ""),
                       "x".join(map(str, r["shape"])), f"{r['params']:,}", bits,
                       f"{r['bytes_mixed_fp32']:,.0f}", f"{r['bytes_mixed_int8']:,.0f}")
    console.print(layers)

    row = Table(title="Table IV row (reference: the same network with real weights)")
    row.add_column("quantity")
    row.add_column("value", justify="right")
    row.add_row("total parameters", f"{report['total_params']:,}")
    row.add_row("classifier parameters", f"{report['classifier_params']:,}")
    row.add_row("size at 32 bit / 8 bit", f"{human_bytes(report['bytes_fp32'])} / "
                f"{human_bytes(report['bytes_int8'])}")
    row.add_row("as configured, rest at 32 bit / 8 bit",
                f"{human_bytes(report['bytes_mixed_fp32'])} / "
                f"{human_bytes(report['bytes_mixed_int8'])}")
    row.add_row("saving vs 32 bit / vs 8 bit",
                f"{report['saving_vs_fp32_pct']:.1f}% / {report['saving_vs_int8_pct']:.1f}%")
    console.print(row)
    console.print(f"binary parameters (1 bit): {report['binary_params']:,}; batch-norm "
                  f"parameters folded into thresholds: {report['folded_norm_params']:,}; "
                  f"the folded thresholds take {human_bytes(report['threshold_bytes'])} at 32 bit.")

    mapping = report["arrays"]
    if mapping["layers"]:
        size = mapping["array_size"]
        arrays = Table(title=f"Binary layers on {size} x {size} 2T2R arrays")
        for col in ("layer", "fan-in x outputs", "arrays", "devices", "sense amplifiers",
                    "utilization"):
            arrays.add_column(col, justify="left" if col == "layer" else "right")
        for a in mapping["layers"]:
            arrays.add_row(a["name"], f"{a['rows']} x {a['cols']}", f"{a['arrays']:,}",
                           f"{a['devices']:,}", f"{a['sense_amplifiers']:,}",
                           f"{100 * a['utilization']:.1f}%")
        arrays.add_row("total", "", f"{mapping['total_arrays']:,}",
                       f"{mapping['total_devices']:,}", f"{mapping['total_sense_amplifiers']:,}",
                       "")
        console.print(arrays)


def _main(cfg: DictConfig) -> None:
    from bnn_edge.hardware.memory import memory_report
    from bnn_edge.lit.module import module_options
    from bnn_edge.tasks import check_network

    try:
        check_network(cfg.model.name, cfg.binarize, cfg.aug)
        require_choice("format", cfg.format, ("table", "json"))
        require_int("array_size", cfg.array_size, 1)
        options = dict(module_options(cfg.model)["net_options"] or {})
        if cfg.model.get("num_classes") is not None:
            require_int("model.num_classes", cfg.model.num_classes, 2)
            options["num_classes"] = cfg.model.num_classes
    except BnnEdgeError as e:
        fail(e)
    report = memory_report(cfg.model.name, cfg.binarize, cfg.aug, cfg.array_size, **options)
    if cfg.format == "json":
        print(json.dumps(report))
    else:
        print_report(report)


def main() -> None:
    run_app("memory", _main, ABOUT, ARGS, render_help=app_help, output_dir=False)


if __name__ == "__main__":
    main()
