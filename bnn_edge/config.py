"""Validation of the training options, run before any data is touched.

Every check raises :class:`~bnn_edge.errors.ConfigError`, which names the option, the
value and what is allowed; the entry points print it as one line and exit with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bnn_edge.errors import BnnEdgeError, ConfigError
from bnn_edge.models import BINARIZE_CHOICES, NETWORKS

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def run_group() -> str:
    """The multirun's folder name (shared by its jobs), else the run's own folder name."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return "interactive"
    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN:
        return Path(hc.sweep.dir).name
    return Path(hc.runtime.output_dir).name


OmegaConf.register_new_resolver("run_group", run_group, replace=True)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def group_choices(group: str) -> list[str]:
    """The options of a Hydra config group, e.g. ``group_choices("model") == ["ecg", ...]``."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def app_groups(app: str) -> tuple[str, ...]:
    """The config groups in the defaults list of ``conf/<app>.yaml`` (Hydra's own excluded)."""
    defaults = OmegaConf.load(CONF_DIR / f"{app}.yaml").get("defaults", [])
    keys = (k for entry in defaults if isinstance(entry, DictConfig) for k in entry)
    return tuple(k for k in keys if not k.startswith(("hydra", "override")))


def check_cli_choices(argv: list[str], groups: tuple[str, ...] = ("model",)) -> None:
    """Check ``group=choice`` arguments before Hydra composes (its own error is many lines).

    Comma-separated sweep values are checked one by one; other sweep syntax is left to Hydra.
    ``null`` deselects an optional group and is always allowed.
    """
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key not in groups or any(c in value for c in "()[]{}*$"):
            continue
        allowed = group_choices(key)
        for choice in value.split(","):
            if choice not in allowed and choice != "null":
                raise ConfigError(key, choice, f"one of {', '.join(allowed)}")


def check_cli_or_exit(app: str, argv: list[str] | None = None) -> None:
    """Check the group choices of ``conf/<app>.yaml`` in ``argv`` (default: the command line).

    The entry points call it first; a bad choice is printed as one line and exits with 2.
    """
    try:
        check_cli_choices(sys.argv[1:] if argv is None else argv, groups=app_groups(app))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def validate_variant(cfg: DictConfig) -> None:
    """Check ``model``, ``binarize`` and ``aug``, which every network-building entry point needs."""
    if cfg.model.name not in NETWORKS:
        raise ConfigError("model", cfg.model.name, f"one of {', '.join(sorted(NETWORKS))}")
    if cfg.binarize not in BINARIZE_CHOICES:
        raise ConfigError("binarize", cfg.binarize, f"one of {', '.join(BINARIZE_CHOICES)}")
    if not is_int(cfg.aug) or cfg.aug < 1:
        raise ConfigError("aug", cfg.aug, "an integer >= 1")


def require_choice(option: str, value, choices) -> None:
    """ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(option, value, f"one of {', '.join(map(str, choices))}")


def require_int(option: str, value, minimum: int) -> None:
    """ConfigError unless ``value`` is an integer >= ``minimum``."""
    if not is_int(value) or value < minimum:
        raise ConfigError(option, value, f"an integer >= {minimum}")


def validate_train_config(cfg: DictConfig) -> None:
    """Check the options shared by every task; data and trainer options are checked on build."""
    validate_variant(cfg)
    if not is_int(cfg.seed):
        raise ConfigError("seed", cfg.seed, "an integer")
    if not is_number(cfg.model.lr) or cfg.model.lr <= 0:
        raise ConfigError("model.lr", cfg.model.lr, "a number > 0")
    if not is_number(cfg.model.weight_decay) or cfg.model.weight_decay < 0:
        raise ConfigError("model.weight_decay", cfg.model.weight_decay, "a number >= 0")
    if not is_int(cfg.model.num_classes) or cfg.model.num_classes < 2:
        raise ConfigError("model.num_classes", cfg.model.num_classes, "an integer >= 2")
    epochs = cfg.trainer.get("max_epochs")
    if epochs is not None and (not is_int(epochs) or (epochs < 1 and epochs != -1)):
        raise ConfigError("trainer.max_epochs", epochs, "an integer >= 1 (or -1: no limit)")
    for flag in ("resume", "test"):
        if not isinstance(cfg.get(flag, False), bool):
            raise ConfigError(flag, cfg.get(flag), "true or false")
    ckpt = cfg.get("ckpt_path")
    if ckpt not in (None, "last") and not Path(str(ckpt)).is_file():
        raise ConfigError("ckpt_path", ckpt, "an existing checkpoint file, 'last' or null")


def instantiate_checked(cfg: DictConfig, option: str, **kwargs):
    """``hydra.utils.instantiate`` whose failures become one line naming the config ``option``.

    The project's own errors pass through unchanged; anything else the target raises
    (e.g. Lightning rejecting ``trainer.accelerator=tpu``) becomes a BnnEdgeError.
    """
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, BnnEdgeError):
            raise cause from None
        reason = str(cause or e).strip().splitlines()[0]
        raise BnnEdgeError(f"{option}: {type(cause or e).__name__}: {reason}") from e
