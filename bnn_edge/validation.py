"""The validators every layer checks its options with: one ConfigError per bad value.

A :class:`~bnn_edge.errors.ConfigError` names the option, the value and what is allowed; it
is a ValueError too, so library callers can catch it as one, and the command-line entry
points print it as one ``error:`` line with exit status 2. Each ``require_*`` takes the
text of what is allowed from its bounds, or from ``allowed`` where a sentence says more.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

from bnn_edge.errors import ConfigError

SEED_MAX = 2**32 - 1


def is_int(value) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite int or float that is not a bool."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _fmt(x) -> str:
    return str(x) if is_int(x) else f"{x:g}"


def _bounds(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return (f"in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}"
                f"{')' if high_open else ']'}")
    if low is not None:
        return f"{'>' if low_open else '>='} {_fmt(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_fmt(high)}"
    return ""


def _inside(value, low, high, low_open: bool, high_open: bool) -> bool:
    if low is not None and (value < low or (low_open and value == low)):
        return False
    return not (high is not None and (value > high or (high_open and value == high)))


def require_int(option: str, value, minimum: int | None = None, maximum: int | None = None,
                none_ok: bool = False, allowed: str | None = None):
    """``value`` if it is an integer in [minimum, maximum] (or None with ``none_ok``)."""
    if none_ok and value is None:
        return value
    if not is_int(value) or not _inside(value, minimum, maximum, False, False):
        text = allowed or " ".join(filter(None, ["an integer",
                                                 _bounds(minimum, maximum, False, False)]))
        raise ConfigError(option, value, text + (" or null" if none_ok and not allowed else ""))
    return value


def require_number(option: str, value, low: float | None = None, high: float | None = None,
                   low_open: bool = False, high_open: bool = False, none_ok: bool = False,
                   allowed: str | None = None):
    """``value`` if it is a finite number in the given (open or closed) bounds."""
    if none_ok and value is None:
        return value
    if not is_number(value) or not _inside(value, low, high, low_open, high_open):
        text = allowed or " ".join(filter(None, ["a number",
                                                 _bounds(low, high, low_open, high_open)]))
        raise ConfigError(option, value, text)
    return value


def require_choice(option: str, value, choices: Iterable, allowed: str | None = None):
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if isinstance(value, list | dict) or value not in choices:
        raise ConfigError(option, value, allowed or f"one of {', '.join(map(str, choices))}")
    return value


def require_bool(option: str, value):
    """``value`` if it is true or false."""
    if not isinstance(value, bool):
        raise ConfigError(option, value, "true or false")
    return value


def require_seed(option: str, value):
    """``value`` if it is an integer seed in [0, 2**32 - 1] (numpy's range)."""
    return require_int(option, value, 0, SEED_MAX, allowed=f"an integer in [0, {SEED_MAX}]")


def check_output_dir(option: str, path) -> Path:
    """The path, if it is a writable folder or can be created as one; ConfigError else.

    Checked before any work, so a run never stops after hours on a folder it cannot write:
    an empty path, a path that is (or runs through) a file, and a folder without write
    permission are refused.
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


def check_unused_output_dir(option: str, path, overwrite, replaces: str) -> Path:
    """:func:`check_output_dir`, and the folder empty unless ``overwrite`` is true (then the
    tool replaces ``replaces`` there and leaves other files), so no result is lost silently."""
    require_bool("overwrite", overwrite)
    target = check_output_dir(option, path)
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ConfigError(option, str(path), f"an empty or new folder (it holds files; "
                          f"overwrite=true replaces {replaces} in it)")
    return target


#: the ``_target_`` of ``hydra/launcher=parallel``
LAUNCHER = "hydra_plugins.bnn_edge_launcher.process_launcher.ProcessLauncher"


def check_launcher(launcher) -> None:
    """ConfigError for a ``hydra.launcher.n_jobs`` of the parallel launcher below 1 (or -1)."""
    if launcher is None or launcher.get("_target_") != LAUNCHER:
        return
    n_jobs = launcher.get("n_jobs")
    if not (is_int(n_jobs) and (n_jobs >= 1 or n_jobs == -1)):
        raise ConfigError("hydra.launcher.n_jobs", n_jobs,
                          "an integer >= 1 (jobs at once), or -1 (one per CPU core)")
