"""Faults for tests of real training processes: a SIGKILL at a chosen point of an epoch,
and ``python -m tests.helpers.faults N <train options>``: ``bnn_edge.train`` on a disk
that fills up while the (N+1)-th checkpoint file is written."""

from __future__ import annotations

import errno
import os
import runpy
import signal
import sys

import lightning as L


class KillAt(L.Callback):
    """SIGKILLs its own process at the end of validation in ``epoch`` (before the epoch's
    checkpoints: Lightning runs checkpoint callbacks after the others)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def fill_disk_after(files: int) -> None:
    """Make ``os.write`` to a file under a ``checkpoints/`` folder fail with ENOSPC once
    ``files`` such files were written: the next one gets half its first write, then the
    error (a disk that fills up in the middle of a file)."""
    real_write = os.write
    started = [0]

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if f"{os.sep}checkpoints{os.sep}" in target:
            if os.fstat(fd).st_size == 0:
                started[0] += 1
                if started[0] > files:
                    return real_write(fd, memoryview(data)[: max(1, len(data) // 2)])
            if started[0] > files:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    os.write = write


if __name__ == "__main__":
    fill_disk_after(int(sys.argv[1]))
    sys.argv = ["bnn_edge.train", *sys.argv[2:]]
    runpy.run_module("bnn_edge.train", run_name="__main__", alter_sys=True)
