"""Errors the entry points turn into one clear line and a non-zero exit."""

from __future__ import annotations


class BnnEdgeError(Exception):
    """Base class for user-facing errors (bad option, bad or missing data)."""


class ConfigError(BnnEdgeError, ValueError):
    """A user-facing option has a value that is not allowed (a ValueError for library use)."""

    def __init__(self, option: str, value, allowed: str):
        self.option, self.value, self.allowed = option, value, allowed
        super().__init__(f"{option}={value!r} is not allowed: expected {allowed}")


class DataError(BnnEdgeError):
    """Data files are missing, unreadable or not what the task expects; names the file."""


class Interrupted(BnnEdgeError):
    """Training stopped by a signal (SIGTERM, SIGINT); the run folder stays resumable."""

    def __init__(self, signal_name: str, exit_code: int, where: str = ""):
        self.signal_name, self.exit_code = signal_name, exit_code
        super().__init__(f"interrupted by {signal_name}{where}")
