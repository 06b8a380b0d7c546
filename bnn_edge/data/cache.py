"""On-disk cache of preprocessed arrays, keyed by the settings that produced them.

The cache lives outside the repository: ``$BNN_EDGE_CACHE`` if set, else
``$XDG_CACHE_HOME/bnn_edge`` (``~/.cache/bnn_edge``). Files are plain ``.npz`` archives
written atomically (temporary file in the same folder, then ``os.replace``), so a run
killed mid-write never leaves a file that a later run reads; they are loaded with
``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from bnn_edge.errors import DataError


def default_cache_dir() -> Path:
    """The cache folder: $BNN_EDGE_CACHE, else $XDG_CACHE_HOME/bnn_edge, else ~/.cache/bnn_edge."""
    if os.environ.get("BNN_EDGE_CACHE"):
        return Path(os.environ["BNN_EDGE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "bnn_edge"


def cache_key(settings: dict) -> str:
    """A short stable hash of JSON-serialisable settings."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def save_arrays_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` (.npz) so that readers see the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an .npz file without unpickling; DataError names a bad file."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read cached arrays ({e}); delete it to rebuild") from e
