"""``python -m bnn_edge.hardware.cost model=... binarize=... aug=...`` (or ``ckpt_path=``):
energy, latency and area of the in-memory implementation, per layer and per variant
(docs/cost.md)."""

from __future__ import annotations

from pathlib import Path

from bnn_edge.cli.app import CONF_DIR, fail, one_line, run_app
from bnn_edge.errors import BnnEdgeError, ConfigError
from bnn_edge.hardware.cost import (
    HardwareParams,
    build_from,
    check_real_options,
    check_results,
    cost_report,
    csv_text,
    kind_of,
    markdown_variants,
    provenance,
    si,
    variants_chart,
    write_files,
)
from bnn_edge.models import check_network


def print_report(report: dict, param_rows: list[dict], derived: dict, files: list[Path],
                 preset_path: Path) -> None:
    """The parameter set, the per-layer table and the three-variant comparison."""
    import sys

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    hw = report["hardware"]
    console.print(f"Parameter set: {hw['name']} ({preset_path}); array {hw['array_size']} x "
                  f"{hw['array_size']}")
    params = Table(title="Parameters (kind: literature, simulator default, assumption, "
                         "command line)")
    for col in ("parameter", "value", "kind", "source"):
        params.add_column(col, overflow="fold")
    for r in param_rows:
        params.add_row(r["parameter"], f"{r['value']:.4g}" if isinstance(r["value"], float)
                       else str(r["value"]), kind_of(r["source"]), r["source"])
    console.print(params)
    dtable = Table(title="Derived quantities")
    for col in ("quantity", "value", "from"):
        dtable.add_column(col)
    for key, (value, formula) in derived.items():
        dtable.add_row(key, f"{value:.4g}", formula)
    console.print(dtable)

    title = (f"{report['model']} binarize={report['binarize']} aug={report['aug']}, "
             f"real layers {report['real_precision']} in {report['real_memory']}")
    layers = Table(title=f"Per layer, per inference: {title}")
    for col in ("layer", "kind", "R x C x P", "arrays", "row reads", "PCSA ops (=XNOR)",
                "popcount bits", "bits moved", "real MACs / adds", "weight traffic", "energy",
                "latency", "area"):
        layers.add_column(col, justify="left" if col in ("layer", "kind") else "right",
                          no_wrap=col in ("layer", "kind", "R x C x P"))
    rows = report["layers"] + [{"name": "total", "kind": "", **report["totals"]}]
    for r in rows:
        shape = f"{r['rows']} x {r['cols']} x {r['positions']}" if "rows" in r else ""
        xnor = r["pcsa_ops"]
        layers.add_row(r["name"], r["kind"], shape, f"{r['arrays']:,}", f"{r['row_reads']:,}",
                       f"{xnor:,}", f"{r['popcount_bits']:,}", f"{r['bits_moved']:,}",
                       f"{r['macs'] + r['real_adds']:,}", f"{r['weight_bits'] / 8:,.0f} B",
                       si(r["energy_j"], "J"), si(r["latency_s"], "s"),
                       f"{r['area_m2'] * 1e6:.4g} mm2")
    console.print(layers)

    comp = Table(title=f"Variants of {report['model']} aug={report['aug']} per inference "
                       f"(binary layers on 2T2R arrays; real layers at the precision and in "
                       f"the memory given)")
    for col in ("binarize", "real layers", "arrays", "energy: binary", "energy: real",
                "energy total", "vs none fp32 dram", "latency", "area: arrays",
                "area: SRAM", "area total"):
        comp.add_column(col, justify="left" if col in ("binarize", "real layers") else "right")
    base = next(v for v in report["variants"] if v["binarize"] == "none"
                and v["real_precision"] == "fp32" and v["real_memory"] == "dram")
    for v in report["variants"]:
        comp.add_row(v["binarize"], f"{v['real_precision']} {v['real_memory']}",
                     f"{v['arrays']:,}", si(v["energy_binary_j"], "J"),
                     si(v["energy_real_j"], "J"), si(v["energy_j"], "J"),
                     f"{v['energy_j'] / base['energy_j']:.3g}x", si(v["latency_s"], "s"),
                     f"{v['area_arrays_m2'] * 1e6:.4g} mm2",
                     f"{v['area_sram_m2'] * 1e6:.4g} mm2", f"{v['area_m2'] * 1e6:.4g} mm2")
    console.print(comp)
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


def _count(cfg, name: str, binarize: str, aug: int, kwargs: dict, hw: HardwareParams) -> dict:
    """The cost report on the meta device; a network too large for PyTorch's tensors is
    refused in one line naming the options that size it."""
    try:
        return cost_report(build_from(name, kwargs), binarize,
                           {"model": name, "binarize": binarize, "aug": aug}, hw,
                           cfg.real_precision, cfg.real_memory, cfg.image_size)
    except RuntimeError as e:
        if "overflow" not in str(e):
            raise
        options = f"aug={aug}" + (f" and image_size={cfg.image_size} are" if name ==
                                  "mobilenet" else " is")
        raise BnnEdgeError(f"{options} not allowed: expected a network whose tensors take "
                           f"fewer than 2**63 bytes each (PyTorch's limit: "
                           f"{one_line(e)})") from None


def run(cfg) -> int:
    """The Hydra app's body; returns the exit status. Nothing is written unless every
    check passes and every result is finite (below RESULT_LIMIT)."""
    import json
    import sys

    from omegaconf import OmegaConf

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
            kwargs = {"aug": aug, **({} if classes is None else {"num_classes": classes})}
            if name == "mobilenet":
                kwargs["hidden"] = int(cfg.model.hidden)
            meta = {}
        report = _count(cfg, name, binarize, aug, kwargs, hw) | meta
        preset_path = CONF_DIR / "hardware" / f"{_preset_choice(cfg)}.yaml"
        preset = (OmegaConf.to_container(OmegaConf.load(preset_path))
                  if preset_path.is_file() else {})
        check_results(report, hw, preset)
        stem = out / f"cost_{name}_{binarize}_aug{aug}"
        contents = {
            Path(f"{stem}_layers.csv"): csv_text(report["layers"]),
            Path(f"{stem}_variants.csv"): csv_text(report["variants"]),
            Path(f"{stem}_variants.png"): variants_chart(
                report["variants"], f"{name} aug={aug} on {hw.array_size}x{hw.array_size} "
                                    f"2T2R arrays ({hw.name})"),
        }
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
    allowed = set(HardwareParams.names())
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and key.startswith("hardware."):
            parts = key.split(".")
            sources = parts[1] == "sources" and len(parts) == 3 and parts[2] in allowed
            if not sources and (parts[1] not in allowed or len(parts) > 2):
                raise ConfigError(key, value, "hardware.<parameter> with one of "
                                  + ", ".join(HardwareParams.names()[1:]))


def main() -> None:
    import sys

    import hydra

    try:
        check_hardware_keys(sys.argv[1:])
    except ConfigError as e:
        fail(e)

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="cost")
    def _main(cfg) -> None:
        status = run(cfg)
        if status:
            sys.exit(status)

    run_app("cost", _main, output_dir=False)


if __name__ == "__main__":
    main()
