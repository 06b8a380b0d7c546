"""The ECG data module: the synthetic source, k-fold splits and the cache."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bnn_edge.data import cache as cache_mod
from bnn_edge.data import ecg as ecg_mod
from bnn_edge.data.base import kfold_split
from bnn_edge.data.ecg import ECGDataModule, make_inversion_task, reverse_electrodes
from bnn_edge.data.ecg.nuisance import synthesize_trials
from bnn_edge.data.ecg.sources import synthetic
from bnn_edge.errors import ConfigError, DataError


def einthoven_residuals(x: np.ndarray) -> tuple[float, float]:
    """max |I + III - II| and max |aVR + aVL + aVF| over a batch of 12-lead ECGs."""
    return (float(np.abs(x[:, 0] + x[:, 2] - x[:, 1]).max()),
            float(np.abs(x[:, 3] + x[:, 4] + x[:, 5]).max()))


@pytest.fixture(scope="module")
def small_module(tmp_path_factory):
    dm = ECGDataModule(n_trials=40, folds=4, fold=1, test_fraction=0.25, seed=3,
                       cache_dir=str(tmp_path_factory.mktemp("ecg")), progress=False)
    dm.setup()
    return dm


def test_kfold_split_partitions_and_stratifies():
    y = np.array([0] * 60 + [1] * 40)
    splits = [kfold_split(y, folds=5, fold=k, test_fraction=0.2, seed=7) for k in range(5)]
    for s in splits:
        parts = np.concatenate([s.train, s.val, s.test])
        assert len(parts) == 100 and len(np.unique(parts)) == 100
        assert np.bincount(y[s.test]).tolist() == [12, 8]
    # the test split does not move with the fold; the validation folds partition the rest
    assert all(np.array_equal(s.test, splits[0].test) for s in splits)
    vals = np.concatenate([s.val for s in splits])
    assert len(vals) == 80 and len(np.unique(vals)) == 80
    assert not set(vals) & set(splits[0].test)
    for s in splits:  # stratified: 48 and 32 non-test trials dealt into 5 folds
        counts = np.bincount(y[s.val], minlength=2)
        assert counts[0] in (9, 10) and counts[1] in (6, 7)


def test_kfold_split_is_deterministic_per_seed():
    y = np.arange(50) % 2
    a = kfold_split(y, 5, 2, 0.2, seed=1)
    b = kfold_split(y, 5, 2, 0.2, seed=1)
    c = kfold_split(y, 5, 2, 0.2, seed=2)
    assert np.array_equal(a.val, b.val) and np.array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)


def test_kfold_split_keeps_groups_whole():
    groups = np.repeat(np.arange(20), 6)  # 20 subjects, 6 trials each
    y = np.tile([0, 1], 60)
    splits = [kfold_split(y, folds=4, fold=k, test_fraction=0.2, seed=3, groups=groups)
              for k in range(4)]
    for s in splits:
        parts = [set(groups[idx]) for idx in (s.train, s.val, s.test)]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        assert len(s.train) + len(s.val) + len(s.test) == 120
        assert len(parts[2]) == 4 and len(parts[1]) == 4  # 4 test subjects, 16 dealt into 4 folds
    assert all(np.array_equal(s.test, splits[0].test) for s in splits)
    assert len(set().union(*(set(groups[s.val]) for s in splits))) == 16


def test_synthetic_set_shape_labels_and_physiology(small_module):
    dm = small_module
    x, y = dm.arrays.x, dm.arrays.y
    assert x.shape == (40, 12, 750) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [20, 20]
    assert np.isfinite(x).all()
    # millivolt scale: a QRS complex is a fraction of a mV to a few mV
    assert 0.2 < np.abs(x).max() < 10
    # every trial, reversed or not, still obeys Einthoven's and Goldberger's laws
    lead_err, aug_err = einthoven_residuals(x.astype(np.float64))
    assert lead_err < 1e-4 and aug_err < 1e-4
    summary = dm.summary()
    assert summary["source"] == "synthetic"
    assert summary["n_trials"] == 40 and summary["input_shape"] == [12, 750]
    assert summary["class_counts"] == {"0": 20, "1": 20}
    assert summary["fold"] == 1 and summary["folds"] == 4
    assert summary["split_sizes"] == {"train": 22, "val": 8, "test": 10}
    assert sum(summary["swap_counts"].values()) == 20
    assert set(summary["swap_counts"]) <= set(summary["swaps"])
    assert "deepfake-ecg" in summary["description"]


def test_loaders_follow_the_split(small_module):
    dm = small_module
    sizes = {name: sum(len(b[1]) for b in loader) for name, loader in
             [("train", dm.train_dataloader()), ("val", dm.val_dataloader()),
              ("test", dm.test_dataloader())]}
    assert sizes == {"train": 22, "val": 8, "test": 10}
    xb, yb = next(iter(dm.val_dataloader()))
    assert tuple(xb.shape[1:]) == (12, 750) and str(yb.dtype) == "torch.int64"


def test_generation_is_deterministic_and_cached(tmp_path, monkeypatch):
    kwargs = dict(n_trials=12, folds=2, seed=11, progress=False)
    a = ECGDataModule(cache_dir=str(tmp_path / "a"), **kwargs)
    a.setup()
    b = ECGDataModule(cache_dir=str(tmp_path / "b"), **kwargs)
    b.setup()
    assert np.array_equal(a.arrays.x, b.arrays.x) and np.array_equal(a.arrays.y, b.arrays.y)
    other = ECGDataModule(cache_dir=str(tmp_path / "a"), **{**kwargs, "seed": 12})
    other.setup()
    assert not np.allclose(other.arrays.x, a.arrays.x)

    def no_generation(*args, **kw):
        raise AssertionError("the cached set should have been read")

    monkeypatch.setattr(ecg_mod, "generate_deepfake_ecgs", no_generation)
    again = ECGDataModule(cache_dir=str(tmp_path / "a"), **kwargs)
    again.setup()
    assert again.arrays.info["cache"] == "cache"
    assert np.array_equal(again.arrays.x, a.arrays.x)


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise KeyboardInterrupt  # a kill in the middle of the write

    monkeypatch.setattr(cache_mod.np, "savez", broken_savez)
    target = tmp_path / "c" / "set.npz"
    with pytest.raises(KeyboardInterrupt):
        cache_mod.save_arrays_atomic(target, x=np.zeros(3))
    assert list((tmp_path / "c").iterdir()) == []


def test_corrupt_cache_is_named_and_rebuilt(tmp_path, capsys):
    dm = ECGDataModule(n_trials=12, folds=2, seed=5, cache_dir=str(tmp_path), progress=False)
    path = dm.cache_path()
    path.write_bytes(b"not an npz archive")
    dm.setup()
    warning = capsys.readouterr().err.strip()
    assert warning.startswith(f"warning: {path}: cannot read cached arrays")
    assert warning.endswith("rebuilding it") and len(warning.splitlines()) == 1
    assert dm.arrays.info["cache"].startswith("generated in")
    again = ECGDataModule(n_trials=12, folds=2, seed=5, cache_dir=str(tmp_path), progress=False)
    again.setup()
    assert again.arrays.info["cache"] == "cache"
    assert np.array_equal(again.arrays.x, dm.arrays.x)


def test_inversion_task_from_electrode_potentials():
    """Reversed trials equal reverse_electrodes of the same window; labels are exact."""
    rng = np.random.default_rng(0)
    n, t = 30, 5000
    ra, la, ll = (rng.standard_normal((n, t)) for _ in range(3))
    ecg = np.stack([la - ra, ll - ra, ll - la, ra - (la + ll) / 2, la - (ra + ll) / 2,
                    ll - (ra + la) / 2, *rng.standard_normal((6, n, t))], axis=1)
    task = make_inversion_task(ecg, 500, np.random.default_rng(1), ["LA-RA", "V1-V2"], 0.5)
    assert task.x.shape == (30, 12, 750)
    assert task.y.sum() == 15
    swap_index = task.info["swap_index"]
    assert set(swap_index[task.y == 0]) == {-1} and set(swap_index[task.y == 1]) <= {0, 1}
    assert len(set(swap_index[task.y == 1])) == 2
    # the same generator draws the same windows first; fraction 0 leaves them unreversed
    clean = make_inversion_task(ecg, 500, np.random.default_rng(1), ["LA-RA", "V1-V2"], 0.0)
    assert clean.y.sum() == 0
    for i in range(n):
        expected = clean.x[i]
        if task.y[i] == 1:
            expected = reverse_electrodes(expected, ["LA-RA", "V1-V2"][swap_index[i]])
        np.testing.assert_array_equal(task.x[i], expected)


def test_resampling_keeps_a_sine():
    """500 -> 250 Hz: a 10 Hz sine stays a 10 Hz sine of the same amplitude."""
    t500 = np.arange(5000) / 500
    ecg = np.repeat(np.sin(2 * np.pi * 10 * t500)[None, None], 12, axis=1)
    task = make_inversion_task(ecg, 500, np.random.default_rng(0), ["V1-V2"], 0.5)
    spectrum = np.abs(np.fft.rfft(task.x[0, 0]))
    freqs = np.fft.rfftfreq(750, d=1 / 250)
    assert freqs[spectrum.argmax()] == pytest.approx(10.0, abs=0.34)
    assert np.abs(task.x[:, 6:]).max() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"source": "mitbih"}, "data.source"),
    ({"n_trials": 5}, "data.n_trials"),
    ({"swaps": ["LA-XX"]}, "data.swaps"),
    ({"swaps": []}, "data.swaps"),
    ({"inverted_fraction": 1.0}, "data.inverted_fraction"),
    ({"folds": 1}, "data.folds"),
    ({"fold": 5}, "data.fold"),
    ({"test_fraction": 1.5}, "data.test_fraction"),
    ({"batch_size": 0}, "data.batch_size"),
])
def test_bad_options_name_the_option(kwargs, option, tmp_path):
    with pytest.raises(ConfigError, match=option.replace(".", r"\.")):
        ECGDataModule(cache_dir=str(tmp_path), **kwargs)
    assert list(tmp_path.iterdir()) == []  # nothing generated


def test_generation_leaves_the_global_torch_rng_alone():
    """A cold cache must train like a warm one: generating ECGs draws nothing from torch's RNG.

    (The GAN's constructor initialises weights it then overwrites; before the fix that shifted
    the initialisation of the model trained next, so same-seed runs differed.)
    """
    import torch

    torch.manual_seed(0)
    before = torch.get_rng_state()
    ecgs = ecg_mod.generate_deepfake_ecgs(2, seed=3, progress=False)
    assert ecgs.shape == (2, 12, 5000)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize(("swaps", "repeated"), [
    (["LA-RA", "LA-RA"], "LA-RA appears 2 times"),
    (["V1-V2", "V2-V1"], "V1-V2 appears 2 times"),
    (["la-ra", "V3-V4", "RA-LA", "v4-v3", "LA-RA"], "LA-RA appears 3 times, V3-V4 appears 2 times"),
])
def test_a_swap_given_twice_is_refused(swaps, repeated, tmp_path):
    """One physical swap under two names would be drawn twice as often and counted apart."""
    with pytest.raises(ConfigError) as e:
        ECGDataModule(cache_dir=str(tmp_path), swaps=swaps, swap_weights="uniform")
    assert str(e.value) == (f"data.swaps={swaps!r} is not allowed: expected each electrode "
                            f"swap once, whatever the order of its two electrodes ({repeated})")
    assert list(tmp_path.iterdir()) == []


def test_swap_counts_are_the_reversals_found_in_the_trials(tmp_path):
    """Each trial is matched to the reversal that turns its clean version into it; the
    counts of data.json, the categories and the description use the same names."""
    kwargs = dict(n_trials=40, folds=2, seed=3, cache_dir=str(tmp_path), progress=False,
                  inverted_fraction=0.75, swap_weights=[1, 1, 2])
    dm = ECGDataModule(swaps=["V2-V1", "ra-la", "LA-LL"], **kwargs)
    dm.setup()
    ecgs = synthetic.generate_deepfake_ecgs(40, seed=3, progress=False)
    clean = synthesize_trials(ecgs, 500, np.random.default_rng(3), dm.data_source.nuisance)
    candidates = ("LA-RA", "LA-LL", "RA-LL", "V1-V2", "V2-V3")
    found = []
    for x, c in zip(dm.arrays.x, clean, strict=True):
        match = [s for s in candidates if np.array_equal(x, reverse_electrodes(c, s))]
        match += ["correct"] if np.array_equal(x, c) else []
        assert len(match) == 1
        found += match
    found = np.array(found)
    assert ((found != "correct") == (dm.arrays.y == 1)).all() and dm.arrays.y.sum() == 30
    reversed_ = Counter(found[found != "correct"].tolist())
    summary = dm.summary()
    assert summary["swaps"] == ["V1-V2", "LA-RA", "LA-LL"]
    assert summary["swap_counts"] == dict(reversed_) and sum(reversed_.values()) == 30
    assert len(reversed_) == 3
    for split in ("train", "val", "test"):
        assert dm.categories(split) == found[getattr(dm.split, split)].tolist()
    assert "(V1-V2 25%, LA-RA 25%, LA-LL 50%) on 75%" in summary["description"]
    same = ECGDataModule(swaps=["V1-V2", "LA-RA", "LA-LL"], **kwargs)
    assert same.cache_path() == dm.cache_path()  # the same data under either spelling


def test_non_finite_generated_trials_name_the_options_not_the_cache(tmp_path, monkeypatch):
    """Trials that go NaN while generated stop the run naming what made them; no cache file."""
    real = synthetic.generate_deepfake_ecgs

    def generator_gone_wrong(n, seed, **kwargs):
        ecgs = real(n, seed, **kwargs)
        ecgs[2, 0] = np.nan  # lead I of one ECG
        return ecgs

    monkeypatch.setattr(synthetic, "generate_deepfake_ecgs", generator_gone_wrong)
    dm = ECGDataModule(n_trials=12, folds=2, seed=4, cache_dir=str(tmp_path), progress=False,
                       gain_spread=0.5)
    with pytest.raises(DataError) as e:
        dm.setup()
    message = str(e.value)
    assert message.startswith("the synthetic ECGs of seed=4, data.n_trials=12, "
                              "data.axis_spread_deg=10, data.heart_rate_spread=0.08, "
                              "data.gain_spread=0.5, data.baseline_wander_mv=0.03, ")
    assert message.endswith("values that are NaN or Inf as float32")
    assert str(tmp_path) not in message and list(tmp_path.iterdir()) == []
