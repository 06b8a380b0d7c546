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


class RunLocked(BnnEdgeError):
    """Another process trains in the run folder: it holds the folder's lock."""


class DiskFull(BnnEdgeError):
    """A run's file could not be written for want of space; what the run wrote before is
    whole (atomic writes), so it resumes from its last checkpoint once there is space."""

    exit_code = 2

    def __init__(self, folder, file=None):
        self.folder, self.file = folder, file
        writing = f" (writing {file})" if file else ""
        super().__init__(f"no space left on the disk of {folder}{writing}; free some space")
