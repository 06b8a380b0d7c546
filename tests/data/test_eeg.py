"""The EEG data module: options, the synthetic head-model source, normalisation, noise, cache."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
import torch
from scipy.signal import welch

import bnn_edge.data.eeg.synthetic as syn
from bnn_edge.data.base import AddGaussianNoise
from bnn_edge.data.eeg import EEGDataModule
from bnn_edge.data.eeg.datamodule import normalize_trials, subject_list
from bnn_edge.data.eeg.eegmmidb import CHANNELS, FS, N_SAMPLES, cut_epochs
from bnn_edge.errors import ConfigError

N_SUBJECTS = 6


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> EEGDataModule:
    """Six synthetic subjects (252 trials), generated once for the module."""
    dm = EEGDataModule(subjects=N_SUBJECTS, folds=3, fold=1, test_fraction=0.25, seed=5,
                       cache_dir=str(tmp_path_factory.mktemp("eeg")), progress=False)
    dm.setup()
    return dm


def mu_log_power(x: np.ndarray, channels: tuple[str, ...]) -> np.ndarray:
    """log 8-14 Hz power of ``channels`` over 1-4.5 s of each trial, shape (n, len(channels))."""
    idx = [CHANNELS.index(c) for c in channels]
    f, p = welch(x[:, idx, FS:int(4.5 * FS)], fs=FS, nperseg=FS)
    return np.log(p[:, :, (f >= 8) & (f <= 14)].mean(axis=-1))


def binomial_tail(k: int, n: int, p: float = 0.5) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"source": "edf"}, "data.source='edf'"),
    ({"normalize": "variance"}, "data.normalize='variance'"),
    ({"split": "run"}, "data.split='run'"),
    ({"runs": [4, 5]}, "data.runs=[4, 5]"),
    ({"runs": []}, "data.runs=[]"),
    ({"runs": 4}, "data.runs=4"),
    ({"subjects": 0}, "data.subjects=0"),
    ({"subjects": [1, 1]}, "data.subjects=[1, 1]"),
    ({"subjects": "all"}, "data.subjects='all'"),
    ({"source": "physionet", "subjects": 110}, "data.subjects=110"),
    ({"source": "physionet", "subjects": [3, 200]}, "data.subjects=[3, 200]"),
    ({"exclude": 88}, "data.exclude=88"),
    ({"subjects": [2], "exclude": [2]}, "data.exclude=[2]"),
    ({"download": "yes"}, "data.download='yes'"),
    ({"noise_std": -0.1}, "data.noise_std=-0.1"),
    ({"synthetic_seed": 1.5}, "data.synthetic_seed=1.5"),
    ({"fold": 5}, "data.fold=5"),
])
def test_bad_options_raise_config_error(kwargs, option, tmp_path):
    """Every option is checked in the constructor, before any data is read or generated."""
    with pytest.raises(ConfigError) as err:
        EEGDataModule(cache_dir=str(tmp_path), progress=False, **kwargs)
    assert str(err.value).startswith(f"{option} is not allowed: expected ")
    assert list(tmp_path.iterdir()) == []


def test_subject_lists_and_exclusions():
    """null = all subjects of the source, N = 1..N; data.exclude removes and records them."""
    assert subject_list(None, "synthetic") == list(range(1, 21))
    assert subject_list(None, "physionet") == list(range(1, 110))
    assert subject_list(3, "physionet") == [1, 2, 3]
    assert subject_list([9, 4], "synthetic") == [4, 9]
    dm = EEGDataModule(source="physionet", root="/nonexistent", download=True, progress=False)
    assert len(dm.subjects) == 105 and not {88, 92, 100, 104} & set(dm.subjects)
    assert dm.excluded == {88: "in data.exclude", 92: "in data.exclude",
                           100: "in data.exclude", 104: "in data.exclude"}


def test_cut_epochs_keeps_whole_windows_only():
    """960-sample windows from each onset; an onset less than 960 samples from the end drops."""
    sig = np.arange(3 * 2000, dtype=np.float32).reshape(3, 2000)
    x, y = cut_epochs(sig, np.array([0, 100, 1040, 1041]), np.array([0, 1, 1, 0]))
    assert x.shape == (3, 3, N_SAMPLES) and y.tolist() == [0, 1, 1]
    assert x[1, 0, 0] == 100 and x[2, 2, -1] == 2 * 2000 + 1040 + 959


def test_cue_schedule_matches_eegmmidb():
    """15 cycles of T0 (4.2 s) + T1/T2 (4.1 s) in 125 s; the last cue overruns a 6 s window."""
    onsets, durations, labels = syn.cue_schedule(np.random.default_rng(0))
    cues = [i for i, d in enumerate(labels) if d != "T0"]
    assert len(labels) == 30 and len(cues) == 15 and labels[::2] == ["T0"] * 15
    assert sorted({labels.count("T1"), labels.count("T2")}) in ([7, 8], [8, 7])
    assert onsets[1] == 4.2 and onsets[-1] == pytest.approx(120.4)
    assert onsets[-1] + 6 > syn.RUN_SECONDS > onsets[-3] + 6
    assert durations[:2].tolist() == [4.2, 4.1]


# --------------------------------------------------------------------------- synthetic


def test_synthetic_shape_labels_and_record(synthetic):
    """42 trials (64 x 960) per subject, both classes, and a data.json record of the subjects."""
    x, y = synthetic.arrays.x, synthetic.arrays.y
    assert x.shape == (N_SUBJECTS * 42, 64, 960) and x.dtype == np.float32
    assert np.isfinite(x).all()
    assert set(np.unique(y).tolist()) == {0, 1} and 0.4 < y.mean() < 0.6
    summary = synthetic.summary()
    assert summary["source"] == "synthetic" and summary["input_shape"] == [64, 960]
    assert summary["subjects"] == list(range(1, N_SUBJECTS + 1))
    assert summary["trials_per_subject"] == {str(s): 42 for s in range(1, N_SUBJECTS + 1)}
    assert summary["excluded_subjects"] == {}
    assert summary["dropped_cues"] == N_SUBJECTS * 3  # the last cue of every run
    assert summary["channels"] == list(CHANNELS) and summary["sampling_rate_hz"] == 160
    assert summary["split_sizes"] == {"train": 126, "val": 63, "test": 63}
    assert summary["noise_std"] == 0.0 and summary["split"] == "trial"
    assert "head model" in summary["description"] and "6 subjects" in summary["description"]


def test_synthetic_is_normalised_per_subject_and_channel(synthetic):
    """normalize=subject: each channel of each subject has mean 0 and s.d. 1 over its trials."""
    x, subj = synthetic.arrays.x, synthetic.trial_subjects
    for s in (1, N_SUBJECTS):
        part = x[subj == s].astype(np.float64)
        assert np.abs(part.mean(axis=(0, 2))).max() < 1e-5
        assert np.abs(part.std(axis=(0, 2)) - 1).max() < 1e-4
    # but single trials keep their own power (which carries the class)
    trial_sd = x[subj == 1].std(axis=2)
    assert trial_sd.std(axis=0).mean() > 0.05


def test_synthetic_shows_contralateral_desynchronisation(synthetic):
    """Imagined left fist lowers mu power over the right hand area (C4) relative to C3."""
    x, y = synthetic.arrays.x, synthetic.arrays.y
    power = mu_log_power(x, ("C3", "C4"))
    contrast = power[:, 0] - power[:, 1]  # C3 - C4: higher when C4 desynchronises
    assert contrast[y == 0].mean() - contrast[y == 1].mean() > 0.1


def test_synthetic_is_learnable_on_held_out_trials(synthetic):
    """A band-power linear classifier trained on train+val beats chance on the test trials.

    Features: log mu and beta power of 10 sensorimotor channels; least-squares discriminant.
    The bound: P(>= k correct of n by guessing) < 1e-4.
    """
    x, y, split = synthetic.arrays.x, synthetic.arrays.y, synthetic.split
    chans = ("C3", "C4", "FC3", "FC4", "CP3", "CP4", "C5", "C6", "C1", "C2")
    idx = [CHANNELS.index(c) for c in chans]
    f, p = welch(x[:, idx, FS:int(4.5 * FS)], fs=FS, nperseg=FS)
    feats = np.concatenate([np.log(p[:, :, (f >= lo) & (f <= hi)].mean(-1))
                            for lo, hi in ((8, 14), (17, 26))], axis=1)
    train = np.concatenate([split.train, split.val])
    mean, sd = feats[train].mean(0), feats[train].std(0)
    design = np.c_[(feats - mean) / sd, np.ones(len(feats))]
    w = np.linalg.lstsq(design[train], 2.0 * y[train] - 1, rcond=None)[0]
    correct = int(((design[split.test] @ w > 0) == (y[split.test] == 1)).sum())
    n = len(split.test)
    assert binomial_tail(correct, n) < 1e-4, f"{correct}/{n} correct"


def test_synthetic_is_deterministic_and_cached(synthetic, tmp_path, monkeypatch):
    """Same seed -> same subjects whatever else is requested; a second setup reads the cache."""
    one = EEGDataModule(subjects=[2], cache_dir=str(tmp_path), progress=False)
    one.setup()
    assert one.arrays.info["cache"].startswith("generated")
    ref = synthetic.arrays.x[synthetic.trial_subjects == 2]
    # normalised over the same subject's trials either way, so equal up to float rounding
    assert np.abs(one.arrays.x - ref).max() < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == [one.cache_path().name]  # no temp files

    def no_simulation(*args, **kwargs):
        raise AssertionError("the cached set should have been read")

    monkeypatch.setattr(syn, "simulate_subject", no_simulation)
    again = EEGDataModule(subjects=[2], cache_dir=str(tmp_path), progress=False)
    again.setup()
    assert again.arrays.info["cache"] == "cache"
    assert np.array_equal(again.arrays.x, one.arrays.x)
    other = EEGDataModule(subjects=[2], normalize="trial", cache_dir=str(tmp_path),
                          progress=False)
    assert other.cache_path() != one.cache_path()
    assert EEGDataModule(subjects=[2], synthetic_seed=1, cache_dir=str(tmp_path),
                         progress=False).cache_path() != one.cache_path()


def test_subjects_differ_in_topography():
    """Per-subject anatomy: the hand-area patterns of two subjects are not the same."""
    head = syn.head_model()
    a, b = syn.draw_subject(head, 1, 0), syn.draw_subject(head, 2, 0)
    assert a.hand_gain.shape == (2, 64)
    assert not np.allclose(a.hand_gain, b.hand_gain)
    assert a.mu_freq != b.mu_freq and 9 <= a.mu_freq <= 13 and 18 <= a.beta_freq <= 25
    # the right-hemisphere dipole projects most strongly on the right (even-numbered) side
    assert CHANNELS[int(np.argmax(np.abs(a.hand_gain[1])))][-1] in "2468"
    assert CHANNELS[int(np.argmax(np.abs(a.hand_gain[0])))][-1] in "13579"


# --------------------------------------------------------------------------- splits, noise


def test_subject_split_keeps_subjects_whole(synthetic, tmp_path):
    """split=subject: no subject has trials in two of train, validation and test."""
    dm = EEGDataModule(subjects=N_SUBJECTS, split="subject", folds=2, fold=0,
                       test_fraction=0.34, cache_dir=synthetic.cache_dir, progress=False)
    dm.setup()
    subj = dm.trial_subjects
    parts = [set(subj[idx].tolist()) for idx in vars(dm.split).values()]
    assert [len(p) for p in parts] == [2, 2, 2]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert dm.summary()["split"] == "subject"
    with pytest.raises(ConfigError, match="data.folds=3 is not allowed: expected at most 1 "):
        EEGDataModule(subjects=[1, 2], split="subject", folds=3, test_fraction=0.5,
                      cache_dir=str(tmp_path), progress=False)


def test_normalize_trial_and_none():
    x = np.random.default_rng(0).normal(3.0, 5.0, (4, 2, 100))
    subj = np.array([1, 1, 2, 2])
    per_trial = normalize_trials(x, subj, "trial")
    assert np.abs(per_trial.mean(axis=2)).max() < 1e-5
    assert np.abs(per_trial.std(axis=2) - 1).max() < 1e-4
    assert np.array_equal(normalize_trials(x, subj, "none"), x.astype(np.float32))


def test_training_noise_only_on_training_batches(synthetic):
    """noise_std adds fresh N(0, s^2) noise to training batches; val/test stay exact."""
    dm = EEGDataModule(subjects=N_SUBJECTS, folds=3, fold=1, test_fraction=0.25, seed=5,
                       noise_std=0.2, batch_size=64, cache_dir=synthetic.cache_dir,
                       progress=False)
    dm.setup()
    clean = {i: torch.from_numpy(dm.arrays.x[i]) for i in dm.split.val[:3]}
    xb, _ = next(iter(dm.val_dataloader()))
    for k, i in enumerate(dm.split.val[:3]):
        assert torch.equal(xb[k], clean[i])
    torch.manual_seed(0)
    loader = dm.train_dataloader()
    assert isinstance(loader.collate_fn, AddGaussianNoise)
    batch = [(torch.zeros(64, 960), torch.tensor(0)) for _ in range(20)]
    noisy, labels = loader.collate_fn(batch)
    assert noisy.shape == (20, 64, 960) and labels.tolist() == [0] * 20
    assert abs(noisy.std().item() - 0.2) < 0.002 and abs(noisy.mean().item()) < 0.002
    torch.manual_seed(0)
    assert torch.equal(loader.collate_fn(batch)[0], noisy)  # seeded: reproducible
    plain = EEGDataModule(subjects=N_SUBJECTS, cache_dir=synthetic.cache_dir, progress=False)
    plain.setup()
    assert plain.train_dataloader().collate_fn is not loader.collate_fn
    assert not isinstance(plain.train_dataloader().collate_fn, AddGaussianNoise)
    assert dm.summary()["noise_std"] == 0.2

