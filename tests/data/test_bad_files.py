"""Bad inputs not covered elsewhere: a truncated WFDB signal file, challenge arrays that hold
pickled objects or text, and checkpoints that are pickles of something other than weights.

Every pickle written here would create a marker file when unpickled; the marker must never
appear, which shows the file was refused without running it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bnn_edge.data.ecg import ECGDataModule
from bnn_edge.errors import DataError
from bnn_edge.experiment.rundir import RunDir, load_module
from tests.helpers.ecg_files import PTBXL_NAMES, sines, write_record


class Payload:
    """Unpickling this opens (creates) ``marker``: proof that the file was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def module(**kwargs) -> ECGDataModule:
    kwargs = {"folds": 2, "test_fraction": 0.25, "seed": 1, "progress": False, **kwargs}
    return ECGDataModule(**kwargs)


def test_wfdb_truncated_signal_file_is_skipped_and_counted(tmp_path):
    """A header whose .dat lost its second half: skipped as unreadable, named, counted."""
    root = tmp_path / "wfdb"
    for i in range(4):
        write_record(root, f"rec{i}", sines(500, 10, seed=i), 500, PTBXL_NAMES)
    dat = root / "rec2.dat"
    full = dat.read_bytes()
    assert len(full) == 5000 * 12 * 2  # 10 s at 500 Hz, 12 leads, 16 bit
    dat.write_bytes(full[: len(full) // 2])
    dm = module(source="wfdb", root=str(root), windows_per_record=2,
                cache_dir=str(tmp_path / "cache"))
    dm.setup()
    info = dm.summary()
    assert info["records_read"] == 3
    assert info["records_skipped"] == {"unreadable": 1}
    assert info["records_skipped_total"] == 1
    (example,) = info["skipped_examples"]["unreadable"]
    assert example.startswith("rec2: wfdb cannot read it")
    assert dm.arrays.x.shape == (3 * 2, 12, 750)  # nothing of rec2 in the training data
    assert sorted(set(dm.arrays.groups.tolist())) == [0, 1, 2]


def test_challenge_arrays_of_objects_or_text_are_refused_unread(tmp_path):
    """Pickled object arrays are never unpickled (allow_pickle=False); text is not numbers."""
    root = tmp_path / "ch"
    root.mkdir()
    marker = tmp_path / "executed"
    inputs, labels = root / "input_training.npy", root / "output_training.npy"
    np.save(labels, np.array([0, 1, 0, 1]))
    np.save(inputs, np.array([Payload(marker)] * 4, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=rf"^{inputs}: cannot read this \.npy array"):
        module(source="challenge", root=str(root))
    assert not marker.exists()

    np.save(inputs, np.zeros((4, 12, 2500), np.float32))
    np.save(labels, np.array([Payload(marker)] * 4, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=rf"^{labels}: cannot read this \.npy array .*"
                                        r"allow_pickle=False"):
        module(source="challenge", root=str(root))
    assert not marker.exists()

    np.save(labels, np.array([0, 1, 0, 1]))
    np.save(inputs, np.full((4, 12, 2500), "1"))
    with pytest.raises(DataError, match=rf"^{inputs}: array of shape \(4, 12, 2500\) "
                                        r"\(<U1\); expected numbers"):
        module(source="challenge", root=str(root))
    np.save(inputs, np.zeros((4, 12, 2500), np.float32))
    np.save(labels, np.array([0.0, 1.0, 0.5, 1.0]))
    with pytest.raises(DataError, match=rf"^{labels}: labels \[0\.0, 0\.5, 1\.0\]"):
        module(source="challenge", root=str(root))


def test_checkpoint_that_is_not_weights_is_refused_unread(tmp_path):
    """load_module (evaluate, export) uses weights_only=True: a pickled object is refused."""
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": Payload(marker)}, evil)
    with pytest.raises(DataError, match=rf"^{evil}: not a bnn_edge checkpoint"):
        load_module(evil)
    assert not marker.exists()
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=rf"^{garbage}: not a bnn_edge checkpoint"):
        load_module(garbage)


def test_a_tampered_run_config_cannot_call_other_functions(tmp_path):
    """A config.yaml next to a checkpoint whose data._target_ names any other callable is
    refused before anything is instantiated."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    marker = tmp_path / "called"
    (run / "config.yaml").write_text(
        "data:\n  _target_: pathlib.Path.touch\n  self: " + str(marker) + "\n")
    with pytest.raises(DataError, match="is not a bnn_edge data module"):
        RunDir.of_checkpoint(run / "checkpoints" / "last.ckpt").datamodule()
    assert not marker.exists()


def test_truncated_edf_stops_naming_the_file(tmp_path):
    """An EEGMMIDB run cut short is not read as a shorter recording: DataError names it."""
    from bnn_edge.data.eeg import eegmmidb
    from bnn_edge.errors import DataError
    from tests.helpers.edf import write_run

    path = tmp_path / "S001R04.edf"
    signals = np.random.default_rng(0).standard_normal((64, 160 * 20)) * 20
    write_run(path, signals, 160, [1.0, 8.0], [4.0, 4.0], ["T1", "T2"])
    x, y, dropped = eegmmidb.read_run(path)  # the whole file reads
    assert len(y) + dropped == 2
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=f"{path}: truncated EDF file"):
        eegmmidb.read_run(path)
