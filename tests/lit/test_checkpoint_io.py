"""Checkpoints and run files are written whole or not at all."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import lightning as L
import pytest
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from bnn_edge.files import write_atomic
from bnn_edge.lit.checkpoint_io import AtomicCheckpointIO, use_atomic_checkpoints
from tests.conftest import ROOT


def full_after_half(monkeypatch) -> None:
    """The disk fills in the middle of the next file: half of its first write, then ENOSPC."""
    real_write = os.write

    def write(fd, data):
        if os.fstat(fd).st_size == 0:
            return real_write(fd, memoryview(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)


def test_a_failed_checkpoint_write_leaves_the_old_file_whole_and_nothing_else(tmp_path,
                                                                              monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"epoch": 0, "w": torch.arange(1000.0)}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() makes files
    full_after_half(monkeypatch)
    with pytest.raises(OSError) as raised:
        io.save_checkpoint({"epoch": 1, "w": torch.zeros(100_000)}, path)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)
    monkeypatch.undo()
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file
    old = torch.load(path, weights_only=True)
    assert old["epoch"] == 0 and torch.equal(old["w"], torch.arange(1000.0))


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "results.json"
    killed = subprocess.run([sys.executable, "-c", (
        "import os, signal, sys; from bnn_edge.files import write_atomic; "
        "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL); "
        "write_atomic(sys.argv[1], 'left behind')"), str(path)], cwd=ROOT)
    assert killed.returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(".results.json.") and left.read_text() == "left behind"
    write_atomic(path, "{}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_trainers_get_atomic_checkpoints_unless_given_their_own():
    kwargs = dict(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer = L.Trainer(**kwargs)
    use_atomic_checkpoints(trainer)
    assert type(trainer.strategy.checkpoint_io) is AtomicCheckpointIO

    class Own(TorchCheckpointIO):
        pass

    trainer = L.Trainer(plugins=[Own()], **kwargs)
    use_atomic_checkpoints(trainer)
    assert type(trainer.strategy.checkpoint_io) is Own
