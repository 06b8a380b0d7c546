"""On-disk cache of preprocessed arrays, keyed by the settings that produced them.

The cache lives outside the repository: ``$BNN_EDGE_CACHE`` if set, else
``$XDG_CACHE_HOME/bnn_edge`` (``~/.cache/bnn_edge``). Files are plain ``.npz`` archives
written atomically (temporary file in the same folder, then ``os.replace``), so a run
killed mid-write never leaves a file that a later run reads; temporary files left by a
killed writer are removed by the next write, and a write that fails (a full disk) removes
its own. Files get the mode ``open()`` gives (0o666 less the umask), so a cache can be
shared. Files are loaded with ``allow_pickle=False`` and checked like freshly built data:
:func:`load_or_build` names a cache that fails the checks, rebuilds it and replaces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bnn_edge.errors import DataError

_HOST = socket.gethostname().replace(".", "_") or "host"
STALE_AFTER_S = 24 * 3600  # temporary files of unknown origin older than this are removed


def default_cache_dir() -> Path:
    """The cache folder: $BNN_EDGE_CACHE, else $XDG_CACHE_HOME/bnn_edge, else ~/.cache/bnn_edge."""
    if os.environ.get("BNN_EDGE_CACHE"):
        return Path(os.environ["BNN_EDGE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "bnn_edge"


def resolve_cache_dir(cache_dir) -> Path:
    """``data.cache_dir`` checked: null is :func:`default_cache_dir`, else a writable folder."""
    from bnn_edge.errors import ConfigError
    from bnn_edge.validation import check_output_dir

    if cache_dir is not None and not str(cache_dir).strip():
        raise ConfigError("data.cache_dir", cache_dir, "a folder path, or null (the default "
                          "cache)")
    path = default_cache_dir() if cache_dir is None else Path(str(cache_dir)).expanduser()
    check_output_dir("data.cache_dir", path)
    return path


def cache_key(settings: dict) -> str:
    """A short stable hash of JSON-serialisable settings."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` left by writers that are gone; return them.

    A temporary file is named ``.<name>.<host>.<pid>.<random>.tmp``: one of this host whose
    process no longer runs is stale; one of another form is stale after a day.
    """
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        parts = tmp.name[len(path.name) + 2:].split(".")
        if len(parts) == 4 and parts[0] == _HOST and parts[1].isdigit():
            stale = not _alive(int(parts[1]))
        elif len(parts) == 4 and parts[1].isdigit():
            continue  # another machine's writer (a shared folder): its own host cleans it
        else:
            try:
                stale = time.time() - tmp.stat().st_mtime > STALE_AFTER_S
            except FileNotFoundError:
                continue
        if stale:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def save_arrays_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` (.npz) so that readers see the whole file or none.

    The file gets mode 0o666 less the umask, as ``open()`` gives (a shared cache stays
    readable by the group); a failed write (a full disk) leaves no temporary file and
    raises a DataError naming the folder.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        tmp = path.parent / f".{path.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as e:
        raise DataError(f"{path.parent}: cannot write the cache file {path.name} "
                        f"({e.strerror or e}); free space there or set data.cache_dir to "
                        f"another folder") from e


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an .npz file without unpickling; DataError names a bad file."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{path}: cannot read cached arrays ({e})") from e


def load_or_build(path: Path, build: Callable[[], dict[str, np.ndarray]],
                  check: Callable[[dict[str, np.ndarray], object], object],
                  verb: str = "built", built_from: object = None) -> tuple[object, str]:
    """``check(arrays, path)`` of the cached arrays at ``path``, else of freshly built ones.

    ``check`` raises DataError for arrays that are not what the task expects and returns
    what the caller needs from them; its second argument names where the arrays came from
    (the cache file, or ``built_from`` for fresh ones, e.g. the source folder). A cache that
    cannot be read or fails the check is named in one warning line and rebuilt (the new
    file replaces it); freshly built arrays that fail the check stop the run. Returns
    (result, origin): "cache" or, e.g., "generated in 3.1 s" (``verb``).
    """
    if path.exists():
        try:
            return check(load_arrays(path), path), "cache"
        except DataError as e:
            print(f"warning: {e}; rebuilding it", file=sys.stderr)
    t0 = time.perf_counter()
    arrays = build()
    result = check(arrays, path if built_from is None else built_from)
    save_arrays_atomic(path, **arrays)
    return result, f"{verb} in {time.perf_counter() - t0:.1f} s"
