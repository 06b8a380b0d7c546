"""Bit-error robustness curves of trained checkpoints (``python -m bnn_edge.evaluate``).

Evaluates trained checkpoints (any model, any variant) under RRAM bit errors on their
run's held-out test split, prints a table (error rate, accuracy mean and std over draws)
and writes ``ber_curve.csv`` and ``ber_curve.png`` into the output directory. Every
option and file is checked before any data is loaded. See docs/bit_errors.md.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from bnn_edge.errors import BnnEdgeError, ConfigError
from bnn_edge.experiment.rundir import RunDir, load_module
from bnn_edge.hardware.faults import (
    BitErrorSettings,
    SweepPoint,
    WeightFaults,
    ber_sweep,
    bit_error_settings,
    check_fault_target,
    rate_label,
    real_weight_layers,
)
from bnn_edge.hardware.faults.axes import axis_title
from bnn_edge.hardware.packed.sweep import (
    ENGINE_NOTE,
    ENGINES,
    check_engine,
    check_packed_target,
    packed_ber_sweep,
)
from bnn_edge.lit.tracking import check_run_settings
from bnn_edge.progress import steps
from bnn_edge.validation import require_choice

SPLITS = ("test", "val")
DEVICES = ("auto", "cpu", "cuda")
CSV_COLUMNS = ("variant", "checkpoint", "model", "binarize", "aug", "real_format", "split",
               "n_samples", "ber", "cell", "cycles", "draws", "acc_mean", "acc_std", "acc_min",
               "acc_max", "flipped_fraction", "fault_model", "parameter", "value")


@dataclass
class Curve:
    """One line of the plot: a checkpoint evaluated with one real-weight format."""

    label: str
    checkpoint: Path
    model: str
    binarize: str
    aug: int
    real_format: str
    num_classes: int
    split: str = "test"
    n_samples: int = 0
    points: list[SweepPoint] = field(default_factory=list)
    # another parameter than the error rate swept: (cell, cycles, point) of read errors
    # alone at the device model's operating points, for reference
    operating: list[tuple[str, float, SweepPoint]] = field(default_factory=list)


def checkpoint_paths(value) -> list[Path]:
    """The checkpoint files ``ckpt_path`` names: files, or run directories (best, else last)."""
    allowed = "a checkpoint file, a run directory, or a list of them"
    items = list(value) if isinstance(value, list | tuple) else [value]
    if value is None or not items:
        raise ConfigError("ckpt_path", value, allowed)
    return [RunDir.find_checkpoint(item, "ckpt_path", allowed) for item in items]


def resolve_device(name: str):
    """``auto`` is cuda when available, else cpu."""
    import torch

    if name not in DEVICES:
        raise ConfigError("device", name, f"one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "cpu or auto (no CUDA device is available)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def settings_from_config(cfg: DictConfig) -> BitErrorSettings:
    """The checked ``bit_errors.*`` options of an evaluate config (real_format may be a list)."""
    options = OmegaConf.to_container(cfg.bit_errors, resolve=True)
    options.pop("train_ber", None)
    return bit_error_settings(**options, multiple_formats=True)


def plan_curves(paths: list[Path], settings: BitErrorSettings, split: str,
                engine: str = "torch") -> list[tuple]:
    """Load every checkpoint and pair it with the formats that fault something in it.

    A format that faults nothing (``none`` without binary layers) or exactly what
    ``none`` faults (``fp32``/``int8`` without real conv/linear layers, when ``none`` is
    listed too) is skipped; a checkpoint left with nothing is a ConfigError.
    """
    plans, labels = [], []
    for path in paths:
        module = load_module(path)
        run = RunDir.of_checkpoint(path)
        run.data_config()  # DataError now, before any data, if the run's config is unusable
        if engine == "packed":
            check_packed_target(module, settings.real_formats, path)
        hp = module.hparams
        formats = []
        for fmt in settings.real_formats:
            if not WeightFaults(module, fmt).targets:
                continue
            if fmt != "none" and "none" in formats and not real_weight_layers(module):
                continue
            formats.append(fmt)
        if not formats:
            check_fault_target("none", settings.real_formats[0], "bit_errors.real_format")
        for fmt in formats:
            label = f"{hp.network} {hp.binarize} aug{hp.aug}" + ("" if fmt == "none" else f" {fmt}")
            curve = Curve(label, path, hp.network, hp.binarize, hp.aug, fmt, hp.num_classes, split)
            plans.append((curve, module, run))
            labels.append(label)
    for curve, _, _ in plans:
        if labels.count(curve.label) > 1:
            curve.label += f" [{curve.checkpoint.resolve().parent.parent.name}]"
    return plans


def evaluate(cfg: DictConfig, echo=print) -> list[Curve]:
    """Run the evaluate command for ``cfg``: checks, sweeps, table, CSV and figure."""
    settings = settings_from_config(cfg)
    if cfg.split not in SPLITS:
        raise ConfigError("split", cfg.split, f"one of {', '.join(SPLITS)}")
    batch_size = cfg.get("batch_size")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ConfigError("batch_size", batch_size, "null or an integer >= 1")
    wandb_settings = run_settings(cfg)  # checked now, before any data
    device = resolve_device(cfg.device)
    requested = require_choice("engine", cfg.get("engine", "auto"), ("auto", *ENGINES))
    engine, device = check_engine("torch" if requested == "auto" else requested, cfg.device,
                                  device)
    ckpt = cfg.get("ckpt_path")
    paths = checkpoint_paths(list(ckpt) if isinstance(ckpt, ListConfig) else ckpt)
    plans = plan_curves(paths, settings, cfg.split, engine)
    if requested == "auto":
        engine, why = auto_engine(plans, settings, device)
        if why:
            echo(why)
    out = Path(cfg.paths.output_dir)

    loaders: dict[str, tuple] = {}
    curves = []
    for curve, module, run in plans:
        overrides = {} if batch_size is None else {"batch_size": batch_size}
        key = repr(sorted(run.data_config(**overrides)[1].items()))
        if key not in loaders:
            datamodule = run.datamodule(**overrides)
            datamodule.setup("test")
            loader = (datamodule.test_dataloader() if cfg.split == "test"
                      else datamodule.val_dataloader())
            if len(loader.dataset) == 0:
                raise BnnEdgeError(f"{curve.checkpoint}: its run has no {cfg.split} trials")
            loaders[key] = (loader, datamodule.describe_source())
        loader, description = loaders[key]
        curve.n_samples = len(loader.dataset)
        echo(f"Evaluating {curve.label} ({curve.checkpoint}) on {curve.n_samples} "
             f"{cfg.split} trials of {description}" + ENGINE_NOTE[engine]())
        module.to(device)
        passes = sum(settings.draws_at(rate) for rate in settings.rates)
        with steps(f"  {passes} fault draws", passes) as progress:
            if engine == "packed":
                curve.points = packed_ber_sweep(module, loader, settings.rates,
                                                settings.draws, settings.seed,
                                                fault_model=settings.fault_model,
                                                parameter=settings.parameter,
                                                progress=progress)
            else:
                curve.points = ber_sweep(module, loader, settings.rates, settings.draws,
                                         curve.real_format, settings.seed, device,
                                         fault_model=settings.fault_model,
                                         parameter=settings.parameter, progress=progress)
        curve.operating = operating_accuracies(engine, module, loader, curve, settings, device)
        module.cpu()
        curves.append(curve)

    echo(format_table(curves, settings))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(curves, settings, out / "ber_curve.csv")
    plot_curves(curves, settings, out / "ber_curve.png")
    echo(f"Wrote {out / 'ber_curve.csv'} and {out / 'ber_curve.png'}")
    if wandb_settings is not None:
        echo(log_to_wandb(cfg, curves, settings, wandb_settings,
                          [run.config() for _, _, run in plans]))
    return curves


def run_settings(cfg: DictConfig) -> dict | None:
    """The checked wandb.init settings of ``logger=wandb`` (None without it); the group left
    at its default (None) joins the evaluated runs' group."""
    node = OmegaConf.select(cfg, "logger.wandb")
    if node is None:
        if OmegaConf.select(cfg, "logger.csv") is not None:
            raise ConfigError("logger", "csv", "none or wandb (evaluate always writes "
                                               "ber_curve.csv)")
        return None
    settings = OmegaConf.to_container(node, resolve=True)
    if OmegaConf.to_container(node, resolve=False).get("group") == "${run_group:}":
        settings["group"] = None
    for key in ("_target_", "save_dir", "log_model"):
        settings.pop(key, None)
    return check_run_settings("logger.wandb", settings)


def auto_engine(plans: list[tuple], settings: BitErrorSettings, device) -> tuple[str, str | None]:
    """``engine=auto``: packed where it gives the torch engine's table (every checkpoint with
    binary layers, real weights kept exact, on the CPU), else torch with the line saying
    why."""
    if device.type != "cpu":
        return "torch", (f"engine=auto: torch on {device.type} (the packed engine runs on "
                         f"the CPU; device=cpu for it)")
    try:
        for curve, module, _ in plans:
            check_packed_target(module, settings.real_formats, curve.checkpoint)
    except ConfigError as e:
        return "torch", f"engine=auto: {e.allowed}"
    check_engine("packed", "cpu", device)
    return "packed", None


def log_to_wandb(cfg: DictConfig, curves: list[Curve], settings: BitErrorSettings,
                 wandb_settings: dict, configs: list[dict]) -> str | None:
    """The curves as a W&B run of job type evaluate, in the group of the evaluated runs."""
    from bnn_edge.lit.tracking import upload_evaluation
    from bnn_edge.lit.wandb_panels import ber_rows

    out = Path(cfg.paths.output_dir)
    rows = [row for c in curves
            for row in ber_rows(c.label, c.points, settings.cell, settings.rate_cycles)]
    config = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items()
              if k not in ("hydra", "logger")}
    config["curves"] = [{"variant": c.label, "checkpoint": str(c.checkpoint), "model": c.model,
                         "binarize": c.binarize, "aug": c.aug, "real_format": c.real_format,
                         "n_samples": c.n_samples} for c in curves]
    return upload_evaluation(out, rows, wandb_settings, configs, config,
                             out / "ber_curve.png", settings.parameter)


def operating_accuracies(engine: str, module, loader, curve: Curve, settings: BitErrorSettings,
                         device) -> list[tuple[str, float, SweepPoint]]:
    """Read errors alone at the 1T1R and 2T2R operating points (``bitflip`` at the device
    model's rates after each of ``bit_errors.cycles``), for a sweep of another parameter."""
    if settings.parameter == "ber":
        return []
    points = settings.operating_points()
    rates = [rate for *_, rate in points]
    passes = len(rates) * settings.draws
    with steps(f"  {passes} draws of read errors at the 1T1R/2T2R operating points",
               passes) as progress:
        if engine == "packed":
            swept = packed_ber_sweep(module, loader, rates, settings.draws, settings.seed,
                                     progress=progress)
        else:
            swept = ber_sweep(module, loader, rates, settings.draws, curve.real_format,
                              settings.seed, device, progress=progress)
    return [(cell, cycles, p) for (cell, cycles, _), p in zip(points, swept, strict=True)]


def _rows(curves: list[Curve], settings: BitErrorSettings):
    for curve in curves:
        for i, p in enumerate(curve.points):
            cycles = settings.rate_cycles[i] if settings.rate_cycles else None
            yield curve, p, cycles


def format_table(curves: list[Curve], settings: BitErrorSettings) -> str:
    """The results as an aligned text table, one row per variant and error rate (or value
    of the swept parameter), then the fault model and the operating points' accuracies
    when the model is not ``bitflip``."""
    head = ["variant", settings.parameter] + (["cell", "cycles"] if settings.cell else []) + [
        "draws", "acc mean", "acc std", "flipped"]
    rows = []
    for curve, p, cycles in _rows(curves, settings):
        cell = [settings.cell, f"{cycles:.3g}"] if settings.cell else []
        rows.append([curve.label, rate_label(p.ber), *cell, str(p.draws),
                     f"{100 * p.mean:.2f}%", f"{100 * p.std:.2f}%",
                     f"{p.flipped_fraction:.3g}"])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(row, widths, strict=True)))
             for row in [head, *rows]]
    if settings.fault_model.name != "bitflip":
        lines.append(f"fault model: {settings.fault_model.describe(settings.parameter)}, "
                     f"{settings.parameter} swept")
    for curve in curves:
        for cell, cycles, p in curve.operating:
            lines.append(f"{curve.label}, read errors alone at the {cell} operating point "
                         f"after {cycles:.3g} cycles (ber {p.ber:.3g}): {100 * p.mean:.2f}% "
                         f"+- {100 * p.std:.2f}% over {p.draws} draws")
    return "\n".join(line.rstrip() for line in lines)


def write_csv(curves: list[Curve], settings: BitErrorSettings, path: Path) -> None:
    """One row per variant and error rate, accuracies as fractions (``CSV_COLUMNS``)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for curve, p, cycles in _rows(curves, settings):
            writer.writerow({
                "variant": curve.label, "checkpoint": str(curve.checkpoint),
                "model": curve.model, "binarize": curve.binarize, "aug": curve.aug,
                "real_format": curve.real_format, "split": curve.split,
                "n_samples": curve.n_samples,
                "ber": repr(p.ber) if settings.parameter == "ber" else "",
                "cell": settings.cell or "", "cycles": "" if cycles is None else repr(cycles),
                "draws": p.draws, "acc_mean": f"{p.mean:.6f}", "acc_std": f"{p.std:.6f}",
                "acc_min": f"{min(p.accuracies):.6f}", "acc_max": f"{max(p.accuracies):.6f}",
                "flipped_fraction": f"{p.flipped_fraction:.6g}",
                "fault_model": settings.fault_model.name, "parameter": settings.parameter,
                "value": repr(p.ber),
            })


def plot_curves(curves: list[Curve], settings: BitErrorSettings, path: Path) -> None:
    """Accuracy (mean +- std over draws) against error rate, one line per curve.

    The x axis is logarithmic above the smallest nonzero rate and linear below it, so
    rate 0 (the fault-free accuracy) sits at the left edge. Dashed vertical lines mark
    the 1T1R and 2T2R operating points of the device model at ``bit_errors.cycles``; when
    another fault-model parameter is swept (the x axis), dashed horizontal lines in each
    curve's colour mark its accuracy with read errors alone at those points.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    on_rate_axis = settings.parameter == "ber"
    points = settings.operating_points() if on_rate_axis else []
    nonzero = [p.ber for c in curves for p in c.points if p.ber > 0] + [r for *_, r in points]
    linthresh = 10.0 ** math.floor(math.log10(min(nonzero))) if nonzero else 1e-4
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    for curve in curves:
        xs = [p.ber for p in curve.points]
        line = ax.errorbar(xs, [100 * p.mean for p in curve.points],
                           yerr=[100 * p.std for p in curve.points], marker="o", markersize=4,
                           capsize=3, linewidth=1.5, label=curve.label)
        for cell, cycles, p in curve.operating:
            ax.axhline(100 * p.mean, color=line[0].get_color(), linewidth=1,
                       linestyle={"1T1R": "--", "2T2R": "-."}[cell],
                       label=f"{curve.label}: read errors alone, {cell} after "
                             f"{short_number(cycles)} cycles (BER {short_number(p.ber)})")
    styles = {"1T1R": "--", "2T2R": "-."}
    for cell, cycles, rate in points:
        ax.axvline(rate, color="0.3", linestyle=styles[cell], linewidth=1,
                   label=f"{cell} after {short_number(cycles)} cycles: BER {short_number(rate)}")
    chance = 100 / max(c.num_classes for c in curves) if curves else 50
    ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xscale("symlog", linthresh=linthresh, linscale=0.5)
    right = max([linthresh, *nonzero])
    ax.set_xlim(0, right * 1.5)
    lowest = min([100 * (p.mean - p.std) for c in curves for p in c.points] + [chance - 10])
    ax.set_ylim(max(0, lowest - 5), 101)
    title = axis_title(settings.parameter)
    ax.set_xlabel(f"{title} (log scale; 0 at the left edge)")
    ax.set_ylabel("accuracy (%)")
    split = curves[0].split if curves else "test"
    what = ("RRAM bit errors" if settings.fault_model.name == "bitflip"
            else f"{settings.fault_model.describe(settings.parameter)}\n")
    ax.set_title(f"Accuracy under {what} ({split} split, mean ± std over "
                 f"{settings.draws} draws)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def short_number(x: float) -> str:
    """1e6 -> "1e6", 6.2136e-06 -> "6.2e-6", 0.001 -> "1e-3": compact labels for plots."""
    mantissa, exponent = f"{x:.1e}".split("e")
    mantissa = mantissa.removesuffix(".0")
    return f"{mantissa}e{int(exponent)}"
