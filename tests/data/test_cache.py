"""A cache is checked like fresh data: a bad one is named in one warning line and rebuilt.

Every corruption below, planted in a synthetic-ECG cache, would otherwise be trained on
(NaN weights, a subset of the trials, a one-class model) or end in a traceback.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bnn_edge.data import cache as cache_mod
from bnn_edge.data.cache import load_arrays, remove_stale_temporaries, save_arrays_atomic
from bnn_edge.data.ecg import ECGDataModule
from bnn_edge.data.ecg.sources.challenge import CHALLENGE_INPUTS, CHALLENGE_LABELS
from bnn_edge.errors import ConfigError, DataError
from tests.conftest import run_cli, stderr_lines


def ecg(cache_dir, **kwargs) -> ECGDataModule:
    return ECGDataModule(n_trials=20, folds=2, seed=3, cache_dir=str(cache_dir), progress=False,
                         **kwargs)


def nan_in_x(a):
    a["x"] = a["x"].copy()
    a["x"][3, 2, 100] = np.nan


CORRUPTIONS = {
    "nan": (nan_in_x, "x holds 1 values that are NaN or Inf as float32"),
    "inf_as_float32": (lambda a: a.update(x=np.where(np.arange(750) == 7, 1e39,
                                                     a["x"].astype(np.float64))),
                       "x holds 240 values that are NaN or Inf as float32"),
    "short_y": (lambda a: a.update(y=a["y"][:-4]), "y has shape (16,), expected (20,)"),
    "float_labels": (lambda a: a.update(y=a["y"].astype(np.float32)),
                     "y holds float32, expected integer labels"),
    "one_class": (lambda a: a.update(y=np.zeros_like(a["y"]), swap_index=np.full(20, -1)),
                  "every trial has label 0"),
    "eleven_leads": (lambda a: a.update(x=a["x"][:, :11]),
                     "x has shape (20, 11, 750), expected (n, 12, 750)"),
    "short_window": (lambda a: a.update(x=a["x"][:, :, :700]),
                     "x has shape (20, 12, 700), expected (n, 12, 750)"),
    "strings": (lambda a: a.update(x=a["x"].astype(str)), "x holds <U"),
    "label_minus_one": (lambda a: a["y"].__setitem__(0, -1), "labels [-1] outside 0..1"),
    "label_seven": (lambda a: a["y"].__setitem__(0, 7), "labels [7] outside 0..1"),
    "one_dimensional": (lambda a: a.update(x=a["x"].reshape(-1)), "x has shape (180000,)"),
    "no_swap_index": (lambda a: a.pop("swap_index"), "the array 'swap_index' is missing"),
    "swap_mismatch": (lambda a: a.update(swap_index=np.full(20, -1)),
                      "swap_index does not match the labels"),
    "fewer_trials": (lambda a: a.update(x=a["x"][:10], y=a["y"][:10],
                                        swap_index=a["swap_index"][:10]),
                     "10 trials, expected data.n_trials=20"),
}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean synthetic cache and the arrays it holds."""
    folder = tmp_path_factory.mktemp("clean_cache")
    dm = ecg(folder)
    dm.setup()
    return dm.cache_path(), load_arrays(dm.cache_path())


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_bad_cache_is_named_and_rebuilt(name, clean, tmp_path, capsys):
    path, arrays = clean
    corrupt, problem = CORRUPTIONS[name]
    planted = {k: v.copy() for k, v in arrays.items()}
    corrupt(planted)
    target = tmp_path / path.name
    save_arrays_atomic(target, **planted)
    dm = ecg(tmp_path)
    assert dm.cache_path() == target
    dm.setup()
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith(f"warning: {target}: ") and problem in warning
    assert warning.endswith("; rebuilding it")
    assert dm.arrays.info["cache"].startswith("generated in")
    np.testing.assert_array_equal(dm.arrays.x, arrays["x"])
    np.testing.assert_array_equal(dm.arrays.y, arrays["y"])
    np.testing.assert_array_equal(load_arrays(target)["x"], arrays["x"])  # replaced


def test_a_bad_eeg_cache_is_rebuilt(tmp_path, capsys):
    from bnn_edge.data.eeg import EEGDataModule

    def module():
        return EEGDataModule(subjects=[1, 2], folds=2, cache_dir=str(tmp_path), progress=False)

    first = module()
    first.setup()
    stored = load_arrays(first.cache_path())
    stored["x"][0, 0, 0] = np.inf
    stored["subject"][:] = 99
    save_arrays_atomic(first.cache_path(), **stored)
    again = module()
    again.setup()
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert "NaN or Inf as float32; rebuilding it" in warning
    np.testing.assert_array_equal(again.arrays.x, first.arrays.x)


def test_challenge_values_beyond_float32_are_skipped_and_counted(tmp_path):
    root = tmp_path / "ch"
    root.mkdir()
    x = np.sin(np.linspace(0, 60, 2500))[None, None, :] * np.ones((6, 12, 1))
    x = x + np.arange(12)[None, :, None] * 0.01
    x[2, 5, 10] = 1e39  # finite as float64, Inf as float32
    np.save(root / CHALLENGE_INPUTS, x)
    np.save(root / CHALLENGE_LABELS, np.array([0, 1, 0, 1, 0, 1]))
    dm = ECGDataModule(source="challenge", root=str(root), folds=2, test_fraction=0.0,
                       cache_dir=str(tmp_path / "c"), progress=False)
    dm.setup()
    info = dm.summary()
    assert info["records_skipped"] == {"non_finite": 1}
    assert info["skipped_examples"]["non_finite"][0].startswith("input_training.npy[2]: ")
    assert dm.arrays.x.dtype == np.float32 and np.isfinite(dm.arrays.x).all()
    assert len(dm.arrays.y) == 5


@pytest.mark.parametrize(("value", "message"), [
    ("", r"^data\.cache_dir='' is not allowed: expected a folder path, or null"),
    ("   ", r"^data\.cache_dir='   ' is not allowed"),
])
def test_empty_cache_dir_is_refused(value, message):
    with pytest.raises(ConfigError, match=message):
        ECGDataModule(cache_dir=value)


def test_cache_dir_that_is_a_file_is_refused(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=r"^data\.cache_dir=.* expected a folder \(this path "
                                          r"is a file\)"):
        ECGDataModule(cache_dir=str(a_file))


def test_temporaries_of_killed_writers_are_removed(tmp_path):
    """A writer killed mid-write leaves its temporary file; the next write removes it, but
    not the file of a writer that still runs."""
    target = tmp_path / "set.npz"
    code = (f"import os, signal; open({str(tmp_path)!r} + '/.set.npz.{cache_mod._HOST}.' + "
            f"str(os.getpid()) + '.abc.tmp', 'wb').close(); os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == -9
    (stale,) = tmp_path.glob(".set.npz.*.tmp")
    assert stale.stat().st_size == 0
    live = tmp_path / f".set.npz.{cache_mod._HOST}.{os.getpid()}.xyz.tmp"
    live.write_bytes(b"")
    old_format = tmp_path / ".set.npz.q1w2e3r4.tmp"
    old_format.write_bytes(b"")
    day_ago = time.time() - 2 * cache_mod.STALE_AFTER_S
    os.utime(old_format, (day_ago, day_ago))
    save_arrays_atomic(target, x=np.zeros(3))
    assert not stale.exists() and not old_format.exists() and live.exists()
    assert remove_stale_temporaries(target) == []
    assert load_arrays(target)["x"].shape == (3,)


def test_unreadable_cache_names_the_file(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK garbage")
    with pytest.raises(DataError, match=rf"^{path}: cannot read cached arrays"):
        load_arrays(path)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_cache_files_get_the_users_umask(umask, mode, tmp_path):
    """A shared cache needs group-readable files: the mode open() gives, not mkstemp's 0600."""
    old = os.umask(umask)
    try:
        save_arrays_atomic(tmp_path / "set.npz", x=np.zeros(3))
        save_arrays_atomic(tmp_path / "set.npz", x=np.ones(3))  # a replaced file too
    finally:
        os.umask(old)
    assert (tmp_path / "set.npz").stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ["set.npz"]


def test_a_full_disk_leaves_no_file_and_names_the_cache_folder(tmp_path, monkeypatch):
    """ENOSPC halfway through the write: one line naming the folder, no temporary or partial
    file, and the same run goes through once there is space again."""
    def disk_full(f, **arrays):
        f.write(b"PK partial archive")
        raise OSError(errno.ENOSPC, "No space left on device")

    folder = tmp_path / "cache"
    monkeypatch.setattr(cache_mod.np, "savez", disk_full)
    dm = ecg(folder)
    with pytest.raises(DataError) as e:
        dm.setup()
    assert str(e.value) == (f"{folder}: cannot write the cache file {dm.cache_path().name} "
                            f"(No space left on device); free space there or set "
                            f"data.cache_dir to another folder")
    assert list(folder.iterdir()) == []
    monkeypatch.undo()
    again = ecg(folder)
    again.setup()
    assert again.arrays.info["cache"].startswith("generated in")
    assert [p.name for p in folder.iterdir()] == [dm.cache_path().name]


def _file_size_limit():
    """In the child: files may grow to 1 MB, and a larger write fails (EFBIG) instead of
    killing the process, as a full disk fails it."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))


def test_cli_cache_write_failure_is_one_line(tmp_path):
    """A real failed write (a 1.4 MB cache under a 1 MB file limit) in the training command."""
    cache = tmp_path / "cache"
    proc = run_cli("bnn_edge.train", "model=ecg", "data.n_trials=40", "data.folds=2",
                   f"data.cache_dir={cache}", f"hydra.run.dir={tmp_path / 'run'}",
                   preexec_fn=_file_size_limit)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [line for line in stderr_lines(proc) if not line.startswith("INFO: ")]
    assert line.startswith(f"error: {cache}: cannot write the cache file ecg_synthetic_")
    assert line.endswith(".npz (File too large); free space there or set data.cache_dir to "
                         "another folder")
    assert list(cache.iterdir()) == []
