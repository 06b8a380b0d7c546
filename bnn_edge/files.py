"""Atomic writes of a run's files: a reader, or a resume after a crash or a full disk, sees
the whole new file or the old one, never a part.

The bytes go to a temporary file in the target's folder (``.<name>.<host>.<pid>.tmp``),
are flushed to the disk (``fsync``), then renamed over the target (``os.replace``); a write
that fails removes its temporary file, and one left by a killed writer is removed by the
next write of that file on the same machine. Files get the mode ``open()`` gives (0o666
less the umask).
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

#: the errors of a write that found no space: a full disk, or a full quota
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_HOST = socket.gethostname().replace(".", "_") or "host"


def write_atomic(path: str | Path, data: bytes | bytearray | memoryview | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path``: the whole file or, on failure, none.

    An OSError is raised as it came, with ``filename`` set to ``path`` when it had none.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    _remove_dead_temporaries(path)
    tmp = path.parent / f".{path.name}.{_HOST}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                     0o666)
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (where the platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_dead_temporaries(path: Path) -> None:
    """Remove this machine's temporary files of ``path`` whose writer no longer runs."""
    prefix = f".{path.name}.{_HOST}."
    for tmp in path.parent.glob(f"{prefix}*.tmp"):
        pid = tmp.name[len(prefix):-len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def disk_full(error: BaseException) -> OSError | None:
    """The no-space OSError behind ``error`` (itself, its cause or its context), if any."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return error
        error = error.__cause__ or error.__context__
    return None
