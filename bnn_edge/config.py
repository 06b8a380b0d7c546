"""Validation of the training options, run before any data is touched.

Every check raises :class:`~bnn_edge.errors.ConfigError`, which names the option, the
value and what is allowed; the entry points print it as one line and exit with status 2.
"""

from __future__ import annotations

import os
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


def check_output_dir(option: str, path) -> Path:
    """ConfigError unless ``path`` is a writable folder or can be created as one.

    Checked before any work, so a run never stops after hours on a folder it cannot write:
    an empty path, a path that is (or runs through) a file, and a folder without write
    permission are refused. Returns the path.
    """
    if path is None or not str(path).strip():
        raise ConfigError(option, path, "a folder path")
    target = Path(str(path)).expanduser()
    if target.exists() and not target.is_dir():
        raise ConfigError(option, str(path), "a folder (this path is a file)")
    ancestor = target
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(option, str(path), f"a folder path ({ancestor} is a file)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(option, str(path), f"a writable folder ({ancestor} is read-only)")
    return target


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


SEED_MAX = 2**32 - 1


def require_seed(option: str, value) -> None:
    """ConfigError unless ``value`` is an integer seed in [0, 2**32 - 1] (numpy's range)."""
    if not is_int(value) or not 0 <= value <= SEED_MAX:
        raise ConfigError(option, value, f"an integer in [0, {SEED_MAX}]")


def validate_train_config(cfg: DictConfig) -> None:
    """Check the options shared by every task; data and trainer options are checked on build."""
    validate_variant(cfg)
    require_seed("seed", cfg.seed)
    if not is_number(cfg.model.lr) or cfg.model.lr <= 0:
        raise ConfigError("model.lr", cfg.model.lr, "a number > 0")
    if not is_number(cfg.model.weight_decay) or cfg.model.weight_decay < 0:
        raise ConfigError("model.weight_decay", cfg.model.weight_decay, "a number >= 0")
    num_classes = cfg.model.get("num_classes")
    if num_classes is not None and (not is_int(num_classes) or num_classes < 2):
        raise ConfigError("model.num_classes", num_classes, "an integer >= 2, or null (the "
                          "number of classes of the data)")
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
