"""Weights & Biases: the logger of training runs, the runs of evaluate and report, and where
their records went.

Without an API key (``WANDB_API_KEY`` or a ``~/.netrc`` entry for the W&B host) runs are
written offline under their output folder (``wandb/offline-run-*``), for a later
``wandb sync``; ``WANDB_MODE`` set by the user wins over that default, a ``mode`` option
over both. Any other setting of ``wandb.init`` or Lightning's ``WandbLogger`` passes
through (``entity``, ``notes``, ``tags``, ``save_code``, ...).
"""

from __future__ import annotations

import inspect
import netrc
import os
import shlex
from collections.abc import Iterable
from pathlib import Path

from bnn_edge.errors import ConfigError
from bnn_edge.validation import require_choice

WANDB_HOST = "api.wandb.ai"
#: the project of a run whose ``project`` is not set (and of evaluate and report runs when
#: the runs they describe recorded none)
PROJECT = "bnn_edge"
MODES = ("online", "offline", "disabled", "shared")
#: what our own code sets, never a user's setting
_RESERVED = ("experiment", "config", "dir", "save_dir", "offline")


def has_api_key() -> bool:
    """True when wandb could authenticate: WANDB_API_KEY or a netrc entry for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_mode(option: str = "logger.wandb.mode", mode: str | None = None) -> str:
    """``mode`` when set (checked), else WANDB_MODE, else online with an API key and offline
    without one."""
    if mode is not None:
        return require_choice(option, mode, MODES, f"one of {', '.join(MODES)}, or null "
                                                   f"(online with an API key, else offline)")
    return os.environ.get("WANDB_MODE") or ("online" if has_api_key() else "offline")


def init_arguments(logger: bool = True) -> set[str]:
    """The settings a W&B run accepts: ``wandb.init``'s arguments, and with ``logger``
    (training's WandbLogger) ``WandbLogger``'s too."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    names = set(inspect.signature(wandb.init).parameters)
    if logger:
        names |= set(inspect.signature(WandbLogger.__init__).parameters) - {"self", "kwargs"}
    return names - set(_RESERVED)


def _plain(value):
    """Hydra's ListConfig/DictConfig as plain lists and dicts (wandb.init wants them)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def check_settings(prefix: str, settings: dict, logger: bool = True) -> dict:
    """``settings`` as plain values; ConfigError names one that W&B does not take
    (``logger``: a WandbLogger's settings, else wandb.init's alone)."""
    allowed = init_arguments(logger)
    for name, value in settings.items():
        if name not in allowed:
            what = "wandb.init or WandbLogger" if logger else "wandb.init"
            raise ConfigError(f"{prefix}.{name}", _plain(value),
                              f"a setting of {what} (entity, notes, tags, mode, id, resume, "
                              f"save_code, settings, ...)")
    return {k: _plain(v) for k, v in settings.items()}


def check_run_settings(option: str, settings: dict) -> dict:
    """The settings of a wandb.init run (evaluate, report) as plain values, ``None`` left
    out; ConfigError names one that wandb.init does not take (WandbLogger's own ``prefix``,
    ``checkpoint_name``, ... included) or a ``mode`` it does not know (``option``: where
    they came from)."""
    settings = check_settings(option, {k: v for k, v in settings.items() if v is not None},
                              logger=False)
    if "mode" in settings:
        wandb_mode(f"{option}.mode", settings["mode"])
    return settings


def wandb_logger(project: str | None = None, save_dir: str = ".", group: str | None = None,
                 name: str | None = None, tags: Iterable | None = None,
                 log_model: bool = False, job_type: str = "train", mode: str | None = None,
                 **settings):
    """A Lightning WandbLogger, offline without credentials, in ``project`` (None:
    :data:`PROJECT`); ``settings`` go to wandb.init.

    ConfigError names a setting W&B does not take, a mode it does not know, or checkpoint
    upload (``log_model``) asked of an offline run.
    """
    from lightning.pytorch.loggers import WandbLogger

    settings = check_settings("logger.wandb", settings)
    mode = wandb_mode("logger.wandb.mode", mode)
    offline = mode == "offline"
    if log_model not in (False, True, "all"):
        raise ConfigError("logger.wandb.log_model", log_model, "false, true or all")
    if log_model and offline:
        raise ConfigError("logger.wandb.log_model", log_model,
                          "false in offline mode (no API key, WANDB_MODE=offline or "
                          "logger.wandb.mode=offline): checkpoints are not uploaded offline")
    os.environ.setdefault("WANDB_MODE", mode)
    os.environ.setdefault("WANDB_SILENT", "true")
    logger = WandbLogger(project=project or PROJECT, save_dir=save_dir, group=group, name=name,
                         tags=[str(t) for t in _plain(tags) or []], log_model=log_model,
                         offline=offline, job_type=job_type, mode=mode, **settings)
    if logger._wandb_init.get("anonymous") is None:  # else wandb warns it has no effect
        logger._wandb_init.pop("anonymous", None)
    return logger


def start_run(out: Path, job_type: str, settings: dict, option: str, **init):
    """A W&B run (wandb.init) of ``job_type`` writing under ``out``; ``settings`` (checked,
    ``option`` names them) win over ``init``'s defaults, ``None`` values are left out."""
    import wandb

    settings = check_run_settings(option, settings)
    mode = wandb_mode(f"{option}.mode", settings.pop("mode", None))
    os.environ.setdefault("WANDB_SILENT", "true")
    out.mkdir(parents=True, exist_ok=True)
    merged = {**{k: v for k, v in init.items() if v is not None}, **settings}
    merged.setdefault("job_type", job_type)
    if "tags" in merged:
        merged["tags"] = [str(t) for t in merged["tags"] or []]
    return wandb.init(dir=str(out), mode=mode, **merged)


def wandb_runs(loggers: list) -> list:
    """The W&B run of every WandbLogger in ``loggers`` (started now if it was not); none on
    the other ranks of a multi-process run."""
    from lightning.pytorch.loggers import WandbLogger

    mine = [logger for logger in loggers if isinstance(logger, WandbLogger)]
    if not mine:
        return []
    from wandb.sdk.wandb_run import Run

    return [logger.experiment for logger in mine if isinstance(logger.experiment, Run)]


def where_it_went(run) -> str | None:
    """One line: the run's URL online, or its offline folder and the ``wandb sync`` command
    that uploads it; None for a disabled run."""
    if getattr(run, "disabled", False):
        return None
    if run.offline:
        folder = run.settings.sync_dir
        return (f"W&B: offline run {run.name!r} (group {run.group!r}) in {folder}; upload "
                f"with: wandb sync {shlex.quote(str(folder))}")
    return f"W&B: run {run.name!r} (group {run.group!r}) at {run.url}"


def finish_wandb(loggers: list) -> list[str]:
    """End the W&B run of every WandbLogger, so the next run of this process starts a new
    one (cv=all, sweeps) and offline records are flushed to disk; return where each went."""
    from lightning.pytorch.loggers import WandbLogger

    started = [logger for logger in loggers
               if isinstance(logger, WandbLogger) and logger._experiment is not None]
    lines = []
    for run in wandb_runs(started):
        line = where_it_went(run)
        run.finish()
        if line:
            lines.append(line)
    return lines


def offline_runs(folder: Path) -> list[Path]:
    """The offline W&B run folders (``wandb/offline-run-*``) anywhere under ``folder``."""
    return sorted(p for p in Path(folder).rglob("offline-run-*")
                  if p.is_dir() and p.parent.name == "wandb" and any(p.glob("*.wandb")))


def sync_command(folder: Path) -> str | None:
    """``wandb sync <globs>`` matching exactly the offline runs under ``folder`` (one glob per
    depth, e.g. ``DIR/*/wandb/offline-run-*`` for a sweep's jobs), or None if it has none."""
    folder = Path(folder)
    runs = offline_runs(folder)
    depths = sorted({len(p.relative_to(folder).parts) for p in runs})
    if not depths:
        return None
    base = shlex.quote(str(folder))
    return "wandb sync " + " ".join(f"{base}/{'*/' * (d - 2)}wandb/offline-run-*"
                                    for d in depths)


def sync_line(folder: Path) -> str | None:
    """``W&B: N offline runs under DIR; upload with: wandb sync ...``, or None."""
    command = sync_command(folder)
    if command is None:
        return None
    n = len(offline_runs(folder))
    return f"W&B: {n} offline run{'s' * (n != 1)} under {folder}; upload with: {command}"


def recorded_settings(configs: Iterable[dict]) -> dict:
    """The W&B ``project``, ``entity`` and ``group`` that the runs of ``configs`` (stored
    config.yaml) logged to, each where they all agree; ``groups``: how many groups."""
    found: dict[str, set] = {"project": set(), "entity": set(), "group": set()}
    for config in configs:
        wandb_cfg = ((config or {}).get("logger") or {}).get("wandb")
        if isinstance(wandb_cfg, dict):
            for key, values in found.items():
                values.add(wandb_cfg.get(key))
    out = {key: next(iter(values)) for key, values in found.items()
           if len(values) == 1 and next(iter(values)) is not None}
    out["groups"] = len(found["group"] - {None})
    return out


def upload_evaluation(out: Path, rows: list[dict], settings: dict, configs: list[dict],
                      config: dict, figure: Path, parameter: str = "ber") -> str | None:
    """The bit-error curves of ``evaluate`` as one W&B run of job type ``evaluate``: the
    table of ``rows`` with its line plot against the swept ``parameter`` (``ber/curve``) and
    ``figure``. ``settings`` (the ``logger.wandb.*`` options; None: not set) win over the
    project, entity and group the evaluated runs (``configs``) logged to. Returns where it
    went."""
    import wandb

    from bnn_edge.lit.wandb_panels import log_ber_curve

    recorded = recorded_settings(configs)
    out = Path(out)
    run = start_run(out, "evaluate", settings, "logger.wandb",
                    project=recorded.get("project", PROJECT),
                    entity=recorded.get("entity"), group=recorded.get("group", out.name),
                    name=f"evaluate-{out.name}", config=config)
    try:
        log_ber_curve([run], "ber/curve", rows, "accuracy", parameter)
        run.log({f"figures/{figure.stem}": wandb.Image(str(figure))})
        return where_it_went(run)
    finally:
        run.finish()


def upload_report(report: dict, out: Path, root: Path, fig7: list[dict],
                  items: list | None = None, curves: list[dict] | None = None,
                  project: str = PROJECT) -> str | None:
    """The report as one W&B run of job type ``report``, in the project and group of the runs
    it summarises (the ones they recorded, else ``project`` and the name of ``root``): the
    panels of :func:`~bnn_edge.lit.wandb_panels.log_report` (Table III, the ``fig7`` series,
    the claims ``items``, the bit-error ``curves``) and the figures. Returns where it went."""
    import wandb

    from bnn_edge.lit.wandb_panels import csv_ber_rows, log_report

    runs = [r for g in report["groups"] for r in g.runs]
    recorded = recorded_settings(r.config for r in runs)
    run = start_run(Path(out), "report", {}, "report",
                    project=recorded.get("project", project), entity=recorded.get("entity"),
                    group=recorded.get("group", Path(root).resolve().name),
                    name=f"report-{Path(out).resolve().name}",
                    config={"dir": str(root), "out": str(out), "runs": len(runs),
                            "not_averaged": len(report["not_averaged"]),
                            "variants": [f"{g.model} {g.binarize} aug{g.aug}"
                                         for g in report["groups"]],
                            "pooled": bool(report["pooled"])})
    try:
        log_report(run, report, fig7, items, csv_ber_rows(curves or []))
        for path in report["figures"]:
            run.log({f"figures/{Path(path).stem}": wandb.Image(str(path))})
        return where_it_went(run)
    finally:
        run.finish()
