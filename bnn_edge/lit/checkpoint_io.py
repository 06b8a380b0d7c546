"""Checkpoints written whole or not at all, for every checkpoint Lightning writes.

Lightning's own writer stages a checkpoint in the system's temporary folder and moves it
into place; across file systems that move is a copy, so a full disk leaves a truncated
``.ckpt`` that a resume or ``evaluate`` then reads. :class:`AtomicCheckpointIO` writes
through :func:`bnn_edge.files.write_atomic` (a temporary file in the checkpoint's own
folder, ``fsync``, ``os.replace``): a failed write leaves the previous file as it was.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from bnn_edge.files import write_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's TorchCheckpointIO with atomic, fsynced writes to local folders."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomic(path, buffer.getbuffer())


def use_atomic_checkpoints(trainer: L.Trainer) -> None:
    """Give ``trainer`` atomic checkpoint writes, unless it was given a CheckpointIO of its
    own (``trainer.plugins``)."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()
