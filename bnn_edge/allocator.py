"""Large tensors reuse freed memory instead of being mapped afresh (glibc's malloc, tuned).

glibc serves each allocation above its mmap threshold (32 MB at most) with a fresh
``mmap`` and unmaps it on free, so every training step page-faults its large maps in
anew: the EEG network's (32, 40, 64, 961) maps are 315 MB each, and on this project's
2-core machine the faults took more than half of an EEG step. :func:`reuse_freed_memory`
asks glibc to serve every block from the heap and to keep what is freed, so the next step
finds its maps already resident. The price is memory: the heap keeps its peak until the
process exits, and blocks freed between differently sized ones fragment it (EEG aug 1,
batch 32, plain layers: 3.0 GB resident at peak against 2.05 GB, for 2.5x the steps per
second on one thread; docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_MAX = -4


@functools.cache
def reuse_freed_memory() -> bool:
    """Switch glibc's mmap-per-block off and its trimming of the heap off (once per
    process); False where the C library is not glibc and nothing was changed."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: musl has mallopt as a no-op)
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
