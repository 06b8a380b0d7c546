"""``python -m bnn_edge.cost model=... binarize=... aug=...`` (or ``ckpt_path=``): :data:`ABOUT`
(docs/cost.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bnn_edge.cli.app import CONF_DIR, one_line, run_app
from bnn_edge.cli.help import app_help
from bnn_edge.errors import BnnEdgeError, ConfigError

if TYPE_CHECKING:
    from bnn_edge.hardware.cost import HardwareParams

ABOUT = """\
Energy, latency and area of a network run in memory: binary layers on 2T2R RRAM arrays
(sense-amplifier reads, popcount, bits moved), real layers as multiply-accumulates with
their weights in SRAM or DRAM, from a parameter set whose every number names its source
(hardware=, each one settable as hardware.<parameter>=). It prints the parameters, the
derived quantities, per-layer tables and the three variants (none, classifier, full)
against fp32 / int8 baselines, and writes the per-layer and per-variant tables as CSV files
and charts of energy and area per variant into a new folder under logs/cost/. With
ckpt_path= the checkpoint's network is counted."""
#: what the command line holds, for the usage line
ARGS = "[option=value ...]"


def report_console():
    """The console the tables print to: the terminal's width (or $COLUMNS), else 100."""
    import os
    import sys

    from rich.console import Console

    wide = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(width=None if wide else 100)


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], left: int = 1):
    """A table without vertical rules, two spaces between columns, whose values fold (are
    never cut) in a terminal too narrow for them; the first ``left`` columns are
    left-aligned. Long headers are given on two lines, so that the values set the widths."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i < left else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def print_report(report: dict, param_rows: list[dict], derived: dict, files: list[Path],
                 preset_path: Path) -> None:
    """The parameter set, the per-layer tables and the three-variant comparison."""
    from bnn_edge.hardware.cost import kind_of, si, variant_rows

    console = report_console()
    hw = report["hardware"]
    console.print(f"Parameter set: {hw['name']} ({preset_path}); array {hw['array_size']} x "
                  f"{hw['array_size']}")
    params = _table("Parameters (kind: literature, simulator default, assumption, command "
                    "line)", ("parameter", "value", "kind", "source"),
                    [(r["parameter"], f"{r['value']:.4g}" if isinstance(r["value"], float)
                      else str(r["value"]), kind_of(r["source"]), r["source"])
                     for r in param_rows], left=4)
    console.print(params)
    console.print(_table("Derived quantities", ("quantity", "value", "from"),
                         [(key, f"{value:.4g}", formula)
                          for key, (value, formula) in derived.items()], left=3))

    title = (f"{report['model']} binarize={report['binarize']} aug={report['aug']}, "
             f"real layers {report['real_precision']} in {report['real_memory']}")
    rows = report["layers"] + [{"name": "total", "kind": "", **report["totals"]}]
    console.print(_table(
        f"Per layer, per inference, operations: {title}",
        ("layer", "kind", "rows x cols\nx positions", "arrays", "row\nreads",
         "PCSA ops\n(=XNOR)", "popcount\nbits", "bits\nmoved", "real MACs\n/ adds"),
        [(r["name"], r["kind"], f"{r['rows']} x {r['cols']} x {r['positions']}"
          if "rows" in r else "", f"{r['arrays']:,}", f"{r['row_reads']:,}",
          f"{r['pcsa_ops']:,}", f"{r['popcount_bits']:,}", f"{r['bits_moved']:,}",
          f"{r['macs'] + r['real_adds']:,}") for r in rows], left=2))
    console.print(_table(
        f"Per layer, per inference, costs: {title}",
        ("layer", "kind", "weight\ntraffic", "energy", "latency", "area\n(mm2)"),
        [(r["name"], r["kind"], f"{r['weight_bits'] / 8:,.0f} B", si(r["energy_j"], "J"),
          si(r["latency_s"], "s"), f"{r['area_m2'] * 1e6:.4g}") for r in rows], left=2))

    variants = variant_rows(report["variants"])
    what = (f"{report['model']} aug={report['aug']} per inference (binary layers on 2T2R "
            f"arrays; real layers at the precision and in the memory given)")
    console.print(_table(
        f"Variants of {what}: energy and latency",
        ("binarize", "real\nlayers", "arrays", "energy:\nbinary", "energy:\nreal",
         "energy\ntotal", "vs none\nfp32 dram", "latency"), [v[:8] for v in variants], left=2))
    console.print(_table(
        f"Variants of {report['model']} aug={report['aug']}: on-chip area (mm2)",
        ("binarize", "real\nlayers", "2T2R arrays\n+ periphery", "SRAM for\nreal weights",
         "total"), [v[:2] + v[8:] for v in variants], left=2))
    console.print("energy: binary = the layers on the 2T2R arrays (PCSA reads, popcount, "
                  "moves); area: on-chip 2T2R arrays with periphery and SRAM cells for real "
                  "weights (DRAM is off chip; MAC units and buffers are not counted)")
    console.print("Wrote " + ", ".join(str(f) for f in files))


def _preset_choice(cfg) -> str:
    """The ``hardware=`` preset Hydra composed (its name field may have been overridden)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return HydraConfig.get().runtime.choices.get("hardware", cfg.hardware.name)
    return cfg.hardware.name


def _explicit_options() -> set[str]:
    """The keys set on the command line (none when not run by Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    return {o.lstrip("+~").partition("=")[0] for o in HydraConfig.get().overrides.task}


def _checkpoint_network(cfg) -> tuple[str, str, int, dict, dict]:
    """Model, variant, aug, builder options and report fields of ``cfg.ckpt_path``; the
    checkpoint decides, and options given on the command line that say otherwise are
    refused in one line naming both."""
    from bnn_edge.experiment.rundir import describe_variant, load_module

    hp = load_module(cfg.ckpt_path).hparams
    net_options = dict(hp.get("net_options") or {})
    theirs = {"model": hp.network, "binarize": hp.binarize, "aug": int(hp.aug),
              "model.num_classes": int(hp.num_classes), "model.hidden": net_options.get("hidden")}
    ours = {"model": cfg.model.name, "binarize": cfg.binarize, "aug": cfg.aug,
            "model.num_classes": cfg.model.get("num_classes"),
            "model.hidden": cfg.model.get("hidden")}
    explicit = _explicit_options()
    wrong = [f"{k}={ours[k]}" for k in theirs if k in explicit and ours[k] != theirs[k]]
    if wrong:
        raise BnnEdgeError(f"{', '.join(wrong)} on the command line contradict"
                           f"{'s' if len(wrong) == 1 else ''} ckpt_path={cfg.ckpt_path}, a "
                           f"checkpoint of {describe_variant(hp)}: with ckpt_path the "
                           f"checkpoint decides (leave the option out or give its value)")
    kwargs = {"aug": theirs["aug"], "num_classes": theirs["model.num_classes"], **net_options}
    meta = {"checkpoint": str(Path(cfg.ckpt_path).resolve())}
    return hp.network, hp.binarize, theirs["aug"], kwargs, meta


def report_is_of_images(name: str, kwargs: dict) -> bool:
    """Whether the network takes images (channels x height x width), so image_size sizes it."""
    import torch

    from bnn_edge.tasks import build_network

    with torch.device("meta"):  # at aug 1: the input does not depend on it
        return len(build_network(name, **{**kwargs, "aug": 1}).input_shape) == 3


def _count(cfg, name: str, binarize: str, aug: int, kwargs: dict, hw: HardwareParams) -> dict:
    """The cost report on the meta device; a network too large for PyTorch's tensors is
    refused in one line naming the options that size it."""
    from bnn_edge.hardware.cost import build_from, cost_report

    try:
        return cost_report(build_from(name, kwargs), binarize,
                           {"model": name, "binarize": binarize, "aug": aug}, hw,
                           cfg.real_precision, cfg.real_memory, cfg.image_size)
    except RuntimeError as e:
        if "overflow" not in str(e):
            raise
        options = f"aug={aug}" + (f" and image_size={cfg.image_size} are" if
                                  report_is_of_images(name, kwargs) else " is")
        raise BnnEdgeError(f"{options} not allowed: expected a network whose tensors take "
                           f"fewer than 2**63 bytes each (PyTorch's limit: "
                           f"{one_line(e)})") from None


def run(cfg) -> int:
    """The Hydra app's body; returns the exit status. Nothing is written unless every
    check passes and every result is finite (below RESULT_LIMIT)."""
    import json
    import sys

    from omegaconf import OmegaConf

    from bnn_edge.hardware.cost import (
        HardwareParams,
        check_real_options,
        check_results,
        markdown_variants,
        provenance,
        report_files,
        write_files,
    )
    from bnn_edge.lit.module import module_options
    from bnn_edge.tasks import check_network
    from bnn_edge.validation import check_unused_output_dir, require_choice, require_int

    try:
        hw_cfg = OmegaConf.to_container(cfg.hardware, resolve=True)
        sources = hw_cfg.get("sources") or {}
        hw = HardwareParams.from_mapping(hw_cfg)
        require_choice("format", cfg.format, ("table", "json", "markdown"))
        check_real_options(cfg.real_precision, cfg.real_memory)
        require_int("image_size", cfg.image_size, 32)
        out = check_unused_output_dir("out", cfg.out, cfg.overwrite, "the cost report's files")
        if cfg.ckpt_path is not None:
            name, binarize, aug, kwargs, meta = _checkpoint_network(cfg)
        else:
            check_network(cfg.model.name, cfg.binarize, cfg.aug)
            name, binarize, aug = cfg.model.name, cfg.binarize, cfg.aug
            classes = cfg.model.get("num_classes")
            if classes is not None:
                require_int("model.num_classes", classes, 2)
            kwargs = {"aug": aug, **({} if classes is None else {"num_classes": classes}),
                      **(module_options(cfg.model)["net_options"] or {})}
            meta = {}
        report = _count(cfg, name, binarize, aug, kwargs, hw) | meta
        preset_path = CONF_DIR / "hardware" / f"{_preset_choice(cfg)}.yaml"
        preset = (OmegaConf.to_container(OmegaConf.load(preset_path))
                  if preset_path.is_file() else {})
        check_results(report, hw, preset)
        contents = report_files(report, out)
    except BnnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    param_rows = provenance(hw, sources, preset)
    report["parameters"] = param_rows
    files = write_files(contents)
    report["files"] = [str(f) for f in files]
    if cfg.format == "json":
        print(json.dumps(report))
    elif cfg.format == "markdown":
        print(markdown_variants(report))
    else:
        print_report(report, param_rows, hw.derived(), files, preset_path)
    return 0


def check_hardware_keys(argv: list[str]) -> None:
    """``hardware.KEY=...`` must name a parameter: ConfigError before Hydra composes (its
    own message for an unknown key is many lines)."""
    from bnn_edge.hardware.cost import HardwareParams

    allowed = set(HardwareParams.names())
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and key.startswith("hardware."):
            parts = key.split(".")
            sources = parts[1] == "sources" and len(parts) == 3 and parts[2] in allowed
            if not sources and (parts[1] not in allowed or len(parts) > 2):
                raise ConfigError(key, value, "hardware.<parameter> with one of "
                                  + ", ".join(HardwareParams.names()[1:]))


def _main(cfg) -> None:
    import sys

    status = run(cfg)
    if status:
        sys.exit(status)


def main() -> None:
    run_app("cost", _main, ABOUT, ARGS, render_help=app_help, output_dir=False,
            check_args=check_hardware_keys)


if __name__ == "__main__":
    main()
