"""The process tree of a command a test started, read from /proc (Linux; no psutil)."""

from __future__ import annotations

import time
from pathlib import Path


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (command name)"
    return fields[0], int(fields[1])


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == pid:
            out.append(int(entry.name))
    return out


def descendants(pid: int) -> set[int]:
    """Children, their children and so on."""
    found, todo = set(), [pid]
    while todo:
        for child in children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as ended)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def has_open(pid: int, path: Path) -> bool:
    """Whether the process holds ``path`` open (a job holds its folder's train.log)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, PermissionError):
        return False
    for fd in fds:
        try:
            if fd.readlink() == path.resolve():
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def wait_until(condition, seconds: float = 300.0, every: float = 0.05) -> bool:
    """Poll ``condition()`` until it holds or ``seconds`` pass; return whether it held."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True
