"""The physionet source on a small EEGMMIDB tree written in the dataset's own format.

The tree: ``<root>/MNE-eegbci-data/files/eegmmidb/1.0.0/S00k/S00kRyy.edf``, EDF+ written by
``mne.export.export_raw`` (edfio), channel labels as in the real files ('Fc5.', 'Cz..'),
125 s runs of 15 cues with T0/T1/T2 annotations. Subjects 1 and 2 are synthetic subjects
(so the trials are known), subject 3 is recorded at 128 Hz and subject 4 has no T1/T2
annotations; 3 and 4 must be skipped and listed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mne
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mne.datasets import eegbci

import bnn_edge.data.eeg.synthetic as syn
from bnn_edge.cli.app import CONF_DIR
from bnn_edge.data.eeg import EEGDataModule, eegmmidb
from bnn_edge.errors import DataError
from bnn_edge.experiment.training import train
from tests.conftest import run_cli, stderr_lines
from tests.helpers.edf import write_run

RUNS = (4, 8, 12)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict]:
    """Write the 4-subject tree once; return its root and the simulated runs of subjects 1-2."""
    root = tmp_path_factory.mktemp("mne_data")
    simulated = {}
    for s in (1, 2):
        simulated[s] = syn.simulate_subject(s, seed=0, runs=RUNS)
        for run, r in simulated[s].items():
            write_run(eegmmidb.run_path(root, s, run), r.signals, eegmmidb.FS,
                      r.onsets_s, r.durations_s, r.descriptions)
    rng = np.random.default_rng(3)
    onsets, durations, labels = syn.cue_schedule(rng)
    for run in RUNS:  # subject 3: 128 Hz, like subjects 88, 92 and 100 of the real dataset
        write_run(eegmmidb.run_path(root, 3, run), rng.normal(0, 20, (64, 125 * 128)),
                  128, onsets, durations, labels)
    for run in RUNS:  # subject 4: rest annotations only
        write_run(eegmmidb.run_path(root, 4, run), rng.normal(0, 20, (64, 125 * 160)),
                  160, onsets[::2], durations[::2], labels[::2])
    return root, simulated


def physionet(root, tmp_path, **kwargs) -> EEGDataModule:
    kwargs = {"subjects": [1, 2, 3, 4], "folds": 2, "test_fraction": 0.25, **kwargs}
    return EEGDataModule(source="physionet", root=str(root), cache_dir=str(tmp_path / "cache"),
                         progress=False, **kwargs)


def test_tree_is_in_the_real_format(tree):
    """MNE finds the files where it keeps EEGMMIDB and reads them as the real ones."""
    root, _ = tree
    paths = eegbci.load_data([1], list(RUNS), path=str(root), update_path=False)
    assert [Path(p) for p in paths] == [
        root / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001" / f"S001R{r:02d}.edf" for r in RUNS]
    raw = mne.io.read_raw_edf(paths[0], verbose="ERROR")
    assert raw.ch_names[:3] == ["Fc5.", "Fc3.", "Fc1."] and raw.ch_names[10] == "Cz.."
    assert raw.info["sfreq"] == 160 and raw.n_times == 20_000 and len(raw.ch_names) == 64
    assert sorted(set(raw.annotations.description)) == ["T0", "T1", "T2"]
    assert list(raw.annotations.description).count("T0") == 15
    eegbci.standardize(raw)
    assert tuple(raw.ch_names) == eegmmidb.CHANNELS


def test_good_subjects_give_42_trials_and_bad_ones_are_listed(tree, tmp_path):
    root, _ = tree
    dm = physionet(root, tmp_path)
    dm.setup()
    assert dm.arrays.x.shape == (84, 64, 960) and dm.arrays.x.dtype == np.float32
    summary = dm.summary()
    assert summary["source"] == "physionet" and summary["root"] == str(root)
    assert summary["subjects"] == [1, 2]
    assert summary["trials_per_subject"] == {"1": 42, "2": 42}
    assert summary["excluded_subjects"] == {
        "3": "S003R04.edf: sampling rate 128 Hz, expected 160 Hz",
        "4": "S004R04.edf: no T1/T2 annotations (found T0)",
    }
    assert summary["dropped_cues"] == 6 and summary["n_trials"] == 84
    assert summary["description"].startswith(f"EEGMMIDB (PhysioNet) from {root}, 2 subjects")
    assert summary["cache"].startswith("read in")


def test_physionet_trials_are_the_recorded_ones(tree, tmp_path):
    """normalize=none: the trials are the simulated signals cut at the cues, in microvolts."""
    root, simulated = tree
    dm = physionet(root, tmp_path, subjects=[1, 2], normalize="none")
    dm.setup()
    expected = [syn.run_epochs(simulated[s][r]) for s in (1, 2) for r in RUNS]
    x = np.concatenate([e[0] for e in expected])
    y = np.concatenate([e[1] for e in expected])
    assert np.array_equal(dm.arrays.y, y)
    # EDF stores 16-bit integers: error below 1e-4 of the signal's range
    assert np.abs(dm.arrays.x - x).max() < 1e-4 * np.abs(x).max()
    # and the synthetic source cuts the same trials from the same simulation
    same = EEGDataModule(subjects=[1, 2], normalize="none", cache_dir=str(tmp_path / "s"),
                         progress=False)
    same.setup()
    assert np.array_equal(same.arrays.x, x) and np.array_equal(same.arrays.y, y)


def test_missing_files_error_says_where_and_how(tree, tmp_path, monkeypatch):
    """download=false: no network, a DataError naming the expected file and the fix."""
    def no_download(*args, **kwargs):
        raise AssertionError("must not download with data.download=false")

    monkeypatch.setattr(eegbci, "load_data", no_download)
    empty = tmp_path / "empty"
    with pytest.raises(DataError) as err:  # raised on construction, before any work
        physionet(empty, tmp_path, subjects=[1, 2])
    msg = str(err.value)
    assert f"6 EEGMMIDB file(s) missing under {empty}" in msg
    assert str(empty / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf") in msg
    assert "data.download=true" in msg and "eegbci.load_data([1, 2], [4, 8, 12]" in msg
    assert not (tmp_path / "cache").exists()


def test_download_goes_through_mne(tree, tmp_path, monkeypatch):
    """download=true: missing runs are fetched with eegbci.load_data(path=root, no prompt)."""
    source_root, _ = tree
    calls = []

    def fake_load_data(subjects, runs, *, path, update_path, **kwargs):
        calls.append((list(subjects), list(runs), path, update_path))
        for s in subjects:
            for r in runs:
                dst = eegmmidb.run_path(Path(path), s, r)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(eegmmidb.run_path(source_root, s, r), dst)

    monkeypatch.setattr(eegbci, "load_data", fake_load_data)
    root = tmp_path / "fresh"
    dm = physionet(root, tmp_path, subjects=[2], download=True)
    dm.setup()
    assert calls == [([2], [4, 8, 12], str(root), False)]
    assert dm.arrays.x.shape == (42, 64, 960)


def test_excluded_subjects_are_neither_needed_nor_read(tree, tmp_path):
    """data.exclude (default 88, 92, 100, 104): no files needed, listed in data.json."""
    root, _ = tree
    dm = physionet(root, tmp_path, subjects=[1, 2, 88])
    dm.setup()
    assert dm.summary()["excluded_subjects"] == {"88": "in data.exclude"}
    assert dm.summary()["subjects"] == [1, 2]


def test_corrupt_file_is_a_data_error_naming_it(tree, tmp_path):
    root, _ = tree
    copy = tmp_path / "copy"
    for run in RUNS:
        dst = eegmmidb.run_path(copy, 1, run)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(eegmmidb.run_path(root, 1, run), dst)
    bad = eegmmidb.run_path(copy, 1, 8)
    bad.write_bytes(b"not an EDF file" * 10)
    dm = physionet(copy, tmp_path, subjects=[1])
    with pytest.raises(DataError, match=f"{bad}: cannot read this EDF file"):
        dm.setup()


def test_cache_is_used_and_follows_the_files(tree, tmp_path, monkeypatch):
    """A second setup reads the cached arrays; a changed file changes the cache key."""
    root, _ = tree
    first = physionet(root, tmp_path, subjects=[1])
    first.setup()
    path = Path(first.arrays.info["cache_file"])
    assert path.is_file() and path.parent == tmp_path / "cache"

    def no_reading(*args, **kwargs):
        raise AssertionError("the cached arrays should have been read")

    monkeypatch.setattr(eegmmidb, "read_subject", no_reading)
    again = physionet(root, tmp_path, subjects=[1])
    again.setup()
    assert again.arrays.info["cache"] == "cache"
    assert np.array_equal(again.arrays.x, first.arrays.x)
    f = eegmmidb.run_path(root, 1, 4)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert physionet(root, tmp_path, subjects=[1]).cache_path(
            [eegmmidb.run_path(root, 1, r) for r in RUNS]) != path
    finally:
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_short_training_run_on_the_tree(tree, tmp_path):
    """model=eeg data.source=physionet data.root=PATH trains, tests and records the subjects."""
    root, _ = tree
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "model=eeg", "binarize=full", "aug=1", "data.source=physionet",
            f"data.root={root}", "data.subjects=[1,2,3,4]", "data.folds=2",
            "data.batch_size=16", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
            "trainer.log_every_n_steps=1",
            "callbacks.rich_progress_bar=null", "trainer.enable_model_summary=false",
            f"paths.output_dir={tmp_path / 'run'}"])
    results = train(cfg, echo=lambda *_: None)
    assert results["model"] == "eeg" and results["data_source"] == "physionet"
    assert results["epochs"] == 1 and 0 <= results["test_acc"] <= 1
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["subjects"] == [1, 2] and sorted(data["excluded_subjects"]) == ["3", "4"]
    assert data["input_shape"] == [64, 960] and data["noise_std"] == 0.1
    n_test = sum(round(0.2 * n) for n in data["class_counts"].values())
    assert data["split_sizes"]["test"] == n_test
    assert sum(data["split_sizes"].values()) == 84


def test_missing_data_is_one_error_line(tmp_path):
    """The entry point prints a missing copy as one line and exits 2, before any training."""
    proc = run_cli("bnn_edge.train", "model=eeg", "data.source=physionet",
                   f"data.root={tmp_path / 'nowhere'}", "data.subjects=2",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    err = stderr_lines(proc)
    assert len(err) == 1 and err[0].startswith("error: 6 EEGMMIDB file(s) missing under "), \
        proc.stderr
    assert not (tmp_path / "run").exists()
