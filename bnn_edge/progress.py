"""Progress of long steps (generating or reading data, bit-error sweeps), for every layer.

In a terminal a step shows a bar that disappears when it ends; elsewhere (a log, a pipe,
a test) it prints one line when it starts and one when it ends, so a long step is never
silent and a log stays short.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager


def track(items: Iterable, description: str, show: bool = True,
          total: int | None = None) -> Iterator:
    """``items``, with the progress of their consumption shown as the module says
    (``show=False``: nothing shown)."""
    if not show:
        yield from items
        return
    if sys.stdout.isatty():
        from rich.progress import track as rich_track

        yield from rich_track(items, description=description, total=total, transient=True)
        return
    start = time.perf_counter()
    print(f"{description} ...", flush=True)
    yield from items
    print(f"{description}: done in {time.perf_counter() - start:.0f} s", flush=True)


@contextmanager
def steps(description: str, total: int, show: bool = True) -> Iterator[Callable[[], None]]:
    """A function to call once per step of ``total``, shown as :func:`track` shows a loop."""
    ticks = track(range(total + 1), description, show, total + 1)
    next(ticks)
    try:
        yield lambda: next(ticks, None)
        for _ in ticks:  # the steps not called (and the closing line)
            pass
    finally:
        ticks.close()
