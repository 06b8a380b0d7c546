"""The real ECG sources (PTB-XL, the challenge .npy layout, WFDB folders) on files written here.

Every lead of a written record is a sine of its own frequency (lead k: ``FREQS[k]`` Hz,
whole cycles in a 3 s window) and amplitude, so where a lead lands after reading,
reordering, resampling and reversal can be checked exactly from its spectrum.
"""

from __future__ import annotations

import csv
import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from bnn_edge.data.ecg import LEADS, ECGDataModule, swap_transform
from bnn_edge.data.ecg.sources import ptbxl
from bnn_edge.data.ecg.sources import records as ecg_sources
from bnn_edge.data.ecg.sources.challenge import CHALLENGE_LEADS, CHALLENGE_TO_PROJECT
from bnn_edge.data.ecg.sources.records import check_signal
from bnn_edge.errors import ConfigError, DataError
from bnn_edge.experiment.training import train
from tests.conftest import run_cli, stderr_lines
from tests.helpers.ecg_files import AMPS, FREQS, PTBXL_COLUMNS, PTBXL_NAMES, sines, write_record
from tests.helpers.runs import compose_app


def write_ptbxl(root: Path, n_records: int = 24, specials: dict | None = None) -> Path:
    """A PTB-XL copy: table plus records100/ and records500/; two records per patient.

    ``specials`` maps an ecg_id to ``flat`` (V3 all zero), ``nan`` (NaN samples in II),
    ``eleven`` (V6 left out), ``flag`` (an electrodes_problems entry) or ``missing`` (listed
    in the table, no files).
    """
    specials = specials or {}
    rows = []
    for ecg_id in range(1, n_records + 1):
        kind = specials.get(ecg_id)
        lr, hr = f"records100/00000/{ecg_id:05d}_lr", f"records500/00000/{ecg_id:05d}_hr"
        patient = 100 + (ecg_id - 1) // 2
        rows.append({"ecg_id": ecg_id, "patient_id": f"{patient}.0", "age": "56.0", "sex": "1",
                     "scp_codes": "{'NORM': 100.0}",
                     "electrodes_problems": "LA-RA vertauscht" if kind == "flag" else "",
                     "strat_fold": str(1 + (patient - 100) % 10),
                     "filename_lr": lr, "filename_hr": hr})
        if kind == "missing":
            continue
        for fs, rel in ((100, lr), (500, hr)):
            sig = sines(fs, 10, seed=ecg_id)
            names = list(PTBXL_NAMES)
            if kind == "flat":
                sig[:, 8] = 0.0
            elif kind == "nan":
                sig[100:103, 1] = np.nan
            elif kind == "eleven":
                sig, names = sig[:, :11], names[:11]
            write_record(root / Path(rel).parent, Path(rel).name, sig, fs, names)
    with open(root / "ptbxl_database.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=PTBXL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return root


def write_challenge(root: Path, n: int = 30, skip_rows: dict | None = None) -> np.ndarray:
    """input_training.npy in the challenge lead order and alternating labels; returns them.

    Challenge lead j is a sine at ``FREQS[LEADS.index(CHALLENGE_LEADS[j])]`` Hz, so after
    reordering project lead k must again sit at ``FREQS[k]``.
    """
    order = [LEADS.index(lead) for lead in CHALLENGE_LEADS]
    x = np.stack([sines(250, 10, seed=i, freqs=FREQS[order], amps=AMPS[order]).T
                  for i in range(n)])
    for row, kind in (skip_rows or {}).items():
        if kind == "nan":
            x[row, 4, 10] = np.inf
        elif kind == "flat":
            x[row, 5] = 0.25
    labels = np.arange(n) % 2
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "input_training.npy", x.astype(np.float32))
    np.save(root / "output_training.npy", labels)
    return labels


def dominant_freqs(x: np.ndarray) -> np.ndarray:
    """(n, 12, 750) windows at 250 Hz -> (n, 12) frequency of each lead's largest peak."""
    spectrum = np.abs(np.fft.rfft(x, axis=-1))
    return np.fft.rfftfreq(x.shape[-1], d=1 / 250)[spectrum.argmax(axis=-1)]


def expected_freqs(swap_index: np.ndarray, swaps: list[str]) -> np.ndarray:
    """Each window's expected lead frequencies given which swap (if any) reversed it."""
    out = np.tile(FREQS.astype(float), (len(swap_index), 1))
    for k, swap in enumerate(swaps):
        perm, _ = swap_transform(swap)
        out[swap_index == k] = FREQS[perm]
    return out


def module(**kwargs) -> ECGDataModule:
    kwargs = {"folds": 2, "test_fraction": 0.25, "seed": 1, "progress": False, **kwargs}
    return ECGDataModule(**kwargs)


@pytest.fixture(scope="module")
def ptbxl_root(tmp_path_factory) -> Path:
    return write_ptbxl(tmp_path_factory.mktemp("ptbxl"),
                       specials={3: "flat", 6: "nan", 9: "eleven", 12: "flag"})


# ---------------------------------------------------------------- PTB-XL


def test_resampled_records_lose_the_filter_edges():
    """A 10 s record: 2500 samples at 250 Hz less the edge margin, equal to scipy inside."""
    from scipy.signal import resample_poly

    fields = {"sig_name": PTBXL_NAMES, "units": ["mV"] * 12}
    for fs, margin in ((500, 10), (100, 25), (360, 10), (250, 0)):
        sig = sines(fs, 10, seed=fs)
        x = ecg_sources.prepare_wfdb_signal(sig, {**fields, "fs": fs}, "r")
        assert ecg_sources.edge_margin(fs) == margin and x.shape == (12, 2500 - 2 * margin)
        frac = Fraction(250, fs)
        ref = resample_poly(sig.T, frac.numerator, frac.denominator, axis=-1, padtype="line")
        np.testing.assert_allclose(x, ref[:, margin:2500 - margin], atol=1e-6)
        t = (np.arange(2500 - 2 * margin) + margin) / 250  # the exact sines at 250 Hz
        phase = np.random.default_rng(fs).uniform(0, 2 * np.pi, size=12)
        exact = (AMPS * np.sin(2 * np.pi * FREQS * t[:, None] + phase)).T
        assert np.abs(x - exact).max() < 0.01


@pytest.mark.parametrize("sampling", [500, 100])
def test_ptbxl_resamples_to_250_hz_and_keeps_leads(ptbxl_root, sampling, tmp_path):
    swaps = ["LA-RA", "RA-LL", "V1-V2"]
    dm = module(source="ptbxl", root=str(ptbxl_root), sampling=sampling, windows_per_record=3,
                swaps=swaps, cache_dir=str(tmp_path))
    dm.setup()
    x, y = dm.arrays.x, dm.arrays.y
    assert x.shape == (20 * 3, 12, 750) and x.dtype == np.float32  # 24 records, 4 skipped
    assert np.bincount(y).tolist() == [30, 30]
    info = dm.arrays.info
    assert info["input_sampling_hz"] == {str(sampling): 20} and info["sampling_rate_hz"] == 250
    # every lead is where its name says, at its own frequency (reversed windows permuted)
    swap_index = dm.swap_index
    assert ((swap_index >= 0) == (y == 1)).all()
    np.testing.assert_array_equal(dominant_freqs(x), expected_freqs(swap_index, swaps))
    assert sum(info["swap_counts"].values()) == 30 and set(info["swap_counts"]) == set(swaps)
    # millivolts kept: each unreversed lead's peak is its written amplitude
    np.testing.assert_allclose(np.abs(x[y == 0]).max(axis=(0, 2)), AMPS, rtol=0.03)


def test_ptbxl_100_and_500_hz_files_give_the_same_trials(ptbxl_root, tmp_path):
    """Same seed, same records: the 250 Hz windows from either rate agree to a few uV."""
    a, b = (module(source="ptbxl", root=str(ptbxl_root), sampling=s, cache_dir=str(tmp_path))
            for s in (500, 100))
    a.setup()
    b.setup()
    np.testing.assert_array_equal(a.arrays.y, b.arrays.y)
    # windows stay 25 samples (0.1 s) clear of the record ends, where the filters see padding
    assert np.abs(a.arrays.x - b.arrays.x).max() < 0.01  # mV, amplitudes are 0.5-1.6 mV


def test_ptbxl_skips_bad_and_flagged_records_and_counts_them(ptbxl_root, tmp_path):
    dm = module(source="ptbxl", root=str(ptbxl_root), cache_dir=str(tmp_path))
    dm.setup()
    info = dm.summary()
    assert info["source"] == "ptbxl" and info["records_read"] == 20
    assert info["records_skipped"] == {"electrodes_problems": 1, "flat_lead": 1,
                                       "non_finite": 1, "wrong_lead_count": 1}
    assert info["records_skipped_total"] == 4
    examples = info["skipped_examples"]
    assert examples["flat_lead"][0].startswith("records500/00000/00003_hr: flat lead(s) V3")
    assert examples["non_finite"][0].startswith("records500/00000/00006_hr: 3 NaN/Inf samples "
                                                "in lead(s) II")
    assert examples["wrong_lead_count"][0].startswith("records500/00000/00009_hr: 11 leads")
    assert "00012_hr: electrodes_problems='LA-RA vertauscht'" in examples["electrodes_problems"][0]
    assert "20 records read, 4 skipped" in info["description"]
    assert info["n_patient_ids"] == 12 and info["groups"] == "patient_id"
    json.dumps(info)  # data.json can hold it
    # flagged records are read when asked to
    keep = module(source="ptbxl", root=str(ptbxl_root), exclude_electrode_problems=False,
                  cache_dir=str(tmp_path))
    keep.setup()
    assert keep.arrays.info["records_read"] == 21
    assert "electrodes_problems" not in keep.arrays.info["records_skipped"]


def test_ptbxl_random_split_keeps_patients_whole(ptbxl_root, tmp_path):
    dm = module(source="ptbxl", root=str(ptbxl_root), windows_per_record=2, folds=3, fold=2,
                cache_dir=str(tmp_path))
    dm.setup()
    groups = dm.arrays.groups
    parts = [set(groups[idx].tolist()) for idx in vars(dm.split).values()]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(len(idx) for idx in vars(dm.split).values()) == 40
    assert dm.summary()["split"] == "random, patient-wise"


def test_ptbxl_strat_fold_split(tmp_path):
    root = write_ptbxl(tmp_path / "ptbxl", n_records=40)  # patients 100-119, strat_fold 1-10
    dm = module(source="ptbxl", root=str(root), folds=3, fold=1, split="strat_fold",
                cache_dir=str(tmp_path / "cache"))
    dm.setup()
    folds = dm.strat_fold
    assert sorted(set(folds[dm.split.test].tolist())) == [10]
    assert sorted(set(folds[dm.split.val].tolist())) == [2, 5, 8]
    assert sorted(set(folds[dm.split.train].tolist())) == [1, 3, 4, 6, 7, 9]
    assert [len(dm.split.train), len(dm.split.val), len(dm.split.test)] == [24, 12, 4]
    summary = dm.summary()
    assert summary["split_sizes"] == {"train": 24, "val": 12, "test": 4}
    assert summary["test_fraction"] is None and "strat_fold(s) [2, 5, 8]" in summary["split"]
    xb, _ = next(iter(dm.val_dataloader()))
    assert tuple(xb.shape[1:]) == (12, 750)


def test_ptbxl_cache_follows_files_and_settings(ptbxl_root, tmp_path, monkeypatch):
    kwargs = dict(source="ptbxl", root=str(ptbxl_root), cache_dir=str(tmp_path), max_records=8)
    first = module(**kwargs)
    first.setup()
    assert first.arrays.info["cache"].startswith("read in")
    assert first.arrays.info["records_read"] == 6  # ecg_id 1-8 less the flat and NaN ones

    def no_reading(path):
        raise AssertionError("the cached set should have been used")

    monkeypatch.setattr(ptbxl, "read_wfdb", no_reading)
    again = module(**kwargs)
    again.setup()
    assert again.arrays.info["cache"] == "cache"
    np.testing.assert_array_equal(again.arrays.x, first.arrays.x)
    assert again.arrays.info["records_skipped"] == first.arrays.info["records_skipped"]
    path = first.cache_path()
    for other in ({"windows_per_record": 2}, {"seed": 2}, {"sampling": 100},
                  {"max_records": 9}, {"swaps": ["LA-LL"]}):
        assert module(**{**kwargs, **other}).cache_path() != path
    # a changed record file (new modification time) changes the key
    dat = ptbxl_root / "records500/00000/00002_hr.dat"
    st = dat.stat()
    os.utime(dat, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert module(**kwargs).cache_path() != path
    finally:
        os.utime(dat, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert module(**kwargs).cache_path() == path


def test_ptbxl_missing_files_name_the_path(ptbxl_root, tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path}/nowhere: data.root is not a folder"):
        module(source="ptbxl", root=str(tmp_path / "nowhere"))
    (tmp_path / "outer" / "ptbxl").mkdir(parents=True)
    (tmp_path / "outer" / "ptbxl" / "ptbxl_database.csv").write_text("ecg_id\n")
    with pytest.raises(DataError, match=r"outer/ptbxl_database.csv: not found.*did you mean "
                                        r"data.root=.*outer/ptbxl\?"):
        module(source="ptbxl", root=str(tmp_path / "outer"))
    with pytest.raises(DataError, match=r"records500: not found"):
        module(source="ptbxl", root=str(tmp_path / "outer" / "ptbxl"))
    (tmp_path / "outer" / "ptbxl" / "records500").mkdir()
    with pytest.raises(DataError, match=r"missing column\(s\) patient_id, strat_fold"):
        module(source="ptbxl", root=str(tmp_path / "outer" / "ptbxl"))
    # a record the table lists without its files: the copy is incomplete, so stop
    root = write_ptbxl(tmp_path / "partial", n_records=6, specials={4: "missing"})
    dm = module(source="ptbxl", root=str(root), cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError, match=r"records500/00000/00004_hr.hea: file not found; it "
                                        r"belongs to a record listed in ptbxl_database.csv"):
        dm.setup()


# ---------------------------------------------------------------- challenge layout


def test_challenge_reorders_leads_and_keeps_labels(tmp_path):
    labels = write_challenge(tmp_path / "ch", n=12, skip_rows={2: "nan", 7: "flat"})
    dm = module(source="challenge", root=str(tmp_path / "ch"), windows_per_record=3,
                cache_dir=str(tmp_path / "c"))
    dm.setup()
    x, y = dm.arrays.x, dm.arrays.y
    kept = [i for i in range(12) if i not in (2, 7)]
    assert x.shape == (30, 12, 750)
    np.testing.assert_array_equal(y, np.repeat(labels[kept], 3))  # labels as given, no reversal
    # aVR is the challenge's sixth lead and the project's fourth; aVF the other way round
    assert CHALLENGE_TO_PROJECT[LEADS.index("aVR")] == 5
    assert CHALLENGE_TO_PROJECT[LEADS.index("aVF")] == 3
    np.testing.assert_array_equal(dominant_freqs(x), np.tile(FREQS.astype(float), (30, 1)))
    # windows are exact slices of the stored rows (250 Hz in, nothing resampled)
    raw = np.load(tmp_path / "ch" / "input_training.npy")
    row = raw[kept[0]][CHALLENGE_TO_PROJECT]
    for w in x[:3]:  # (the sines repeat every second, so a window matches several offsets)
        assert any(np.array_equal(w, row[:, s:s + 750]) for s in range(2500 - 750 + 1))
    info = dm.summary()
    assert info["records_read"] == 10
    assert info["records_skipped"] == {"flat_lead": 1, "non_finite": 1}
    assert info["skipped_examples"]["non_finite"] == [
        "input_training.npy[2]: 1 NaN/Inf samples in lead(s) aVL"]
    assert info["skipped_examples"]["flat_lead"][0].startswith(
        "input_training.npy[7]: flat lead(s) aVR (peak-to-peak 0)")
    assert info["swaps"] is None and "output_training.npy" in info["labels"]
    assert info["split"] == "random, record-wise"  # three windows of a row stay together


def test_challenge_bad_files_stop_with_the_path(tmp_path):
    root = tmp_path / "ch"
    root.mkdir()
    np.save(root / "input_training.npy", np.zeros((4, 12, 2500), np.float32))
    with pytest.raises(DataError, match=r"output_training.npy: not found; .*\(n, 12, 2500\)"):
        module(source="challenge", root=str(root))
    np.save(root / "output_training.npy", np.array([0, 1, 0]))
    with pytest.raises(DataError, match=r"output_training.npy: shape \(3,\); expected \(4,\)"):
        module(source="challenge", root=str(root))
    np.save(root / "output_training.npy", np.array([0, 1, 2, 1]))
    with pytest.raises(DataError, match=r"labels \[0, 1, 2\]"):
        module(source="challenge", root=str(root))
    np.save(root / "output_training.npy", np.array([0, 1, 0, 1]))
    with pytest.raises(ConfigError, match=r"data.windows_per_record=4 .* at most 3"):
        module(source="challenge", root=str(root), windows_per_record=4)
    np.save(root / "input_training.npy", np.zeros((4, 8, 2500), np.float32))
    with pytest.raises(DataError, match=r"input_training.npy: array of shape \(4, 8, 2500\)"):
        module(source="challenge", root=str(root))
    (root / "input_training.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"input_training.npy: cannot read"):
        module(source="challenge", root=str(root))


# ---------------------------------------------------------------- WFDB folders


@pytest.fixture(scope="module")
def wfdb_root(tmp_path_factory) -> Path:
    """Records at 250, 360 and 1000 Hz, leads in shuffled order with mixed-case names and an
    extra channel, one in uV; plus one with 8 leads, one of 2 s and one broken header."""
    root = tmp_path_factory.mktemp("wfdb")
    order = [11, 5, 0, 3, 9, 1, 7, 2, 10, 4, 8, 6]
    names = [PTBXL_NAMES[k].lower() if k % 2 else PTBXL_NAMES[k] for k in order]
    for i, fs in enumerate([250, 360, 1000, 250, 360, 1000]):
        sig = sines(fs, 10, seed=50 + i)[:, order]
        extra = np.random.default_rng(i).normal(size=(len(sig), 1))
        write_record(root / ("a" if i < 3 else "b"), f"rec{i}", np.hstack([sig, extra]), fs,
                     [*names, "Resp"])
    write_record(root / "b", "rec6", sines(500, 10, seed=7)[:, 1:] * 1000, 500,
                 PTBXL_NAMES[1:], units="uV")  # no lead I
    write_record(root / "b", "rec7", sines(500, 10, seed=8) * 1000, 500, PTBXL_NAMES,
                 units="uV")
    write_record(root / "c", "short", sines(500, 2, seed=9), 500, PTBXL_NAMES)
    (root / "c" / "broken.hea").write_text("broken 12 five-hundred\n")
    return root


def test_wfdb_folder_matches_leads_by_name_at_any_rate(wfdb_root, tmp_path):
    dm = module(source="wfdb", root=str(wfdb_root), swaps=["LA-LL"], windows_per_record=2,
                cache_dir=str(tmp_path))
    dm.setup()
    x, info = dm.arrays.x, dm.summary()
    assert x.shape == (7 * 2, 12, 750)
    assert info["input_sampling_hz"] == {"1000": 2, "250": 2, "360": 2, "500": 1}
    swap_index = dm.swap_index
    np.testing.assert_array_equal(dominant_freqs(x), expected_freqs(swap_index, ["LA-LL"]))
    # rec7 was written in uV: read back in mV like the others
    np.testing.assert_allclose(np.abs(x[dm.arrays.y == 0]).max(axis=(0, 2)), AMPS, rtol=0.03)
    assert info["records_read"] == 7
    assert info["records_skipped"] == {"missing_leads": 1, "too_short": 1, "unreadable": 1}
    examples = info["skipped_examples"]
    assert examples["missing_leads"][0].startswith("b/rec6: missing lead(s) I (has II, III")
    # 2 s at 500 Hz: 500 samples at 250 Hz less 10 at each end (resampling filter's edge)
    assert examples["too_short"][0] == ("c/short: 480 usable samples at 250 Hz (1.92 s) hold "
                                        "fewer than 2 window(s) of 3 s")
    assert examples["unreadable"][0].startswith("c/broken: wfdb cannot read it")


def test_wfdb_missing_or_empty_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"data.root=None is not allowed: expected a folder"):
        module(source="wfdb", root=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=rf"{tmp_path}/empty: no WFDB header files"):
        module(source="wfdb", root=str(tmp_path / "empty"))
    (tmp_path / "empty" / "x.hea").write_text("broken\n")
    dm = module(source="wfdb", root=str(tmp_path / "empty"), cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError, match=r"no usable wfdb records \(skipped: 1 unreadable\)"):
        dm.setup()


# ---------------------------------------------------------------- shared checks and options


def test_cut_windows_one_per_slot():
    """k windows: one at a random offset inside each k-th of the record, none overlapping."""
    ramp = np.tile(np.arange(2500, dtype=np.float32), (12, 1))
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = ecg_sources.cut_windows(ramp, 3, rng, "r")
        starts = w[:, 0, 0].astype(int)
        assert w.shape == (3, 12, 750)
        for j, s in enumerate(starts):
            assert j * 833 <= s <= (j + 1) * 833 - 750
            np.testing.assert_array_equal(w[j], ramp[:, s:s + 750])
    with pytest.raises(ecg_sources.RecordProblem, match="r: 2500 usable samples at 250 Hz"):
        ecg_sources.cut_windows(ramp, 4, rng, "r")


def test_signal_checks_name_the_record():
    good = sines(250, 3, seed=0).T
    check_signal(good, "r")
    cases = [(good[:11], "wrong_lead_count", "r: signal of shape (11, 750)"),
             (np.where(np.arange(750) == 5, np.nan, good), "non_finite",
              "r: 12 NaN/Inf samples in lead(s) I, II"),
             (np.vstack([good[:4], good[4:5] * 1e-4, good[5:]]), "flat_lead",
              "r: flat lead(s) aVL")]
    for x, reason, message in cases:
        with pytest.raises(ecg_sources.RecordProblem, match=message.replace("(", r"\(")
                           .replace(")", r"\)")) as e:
            check_signal(x, "r")
        assert e.value.reason == reason


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"source": "ptbxl"}, "data.root"),
    ({"source": "challenge", "root": ""}, "data.root"),
    ({"sampling": 250}, "data.sampling"),
    ({"windows_per_record": 0}, "data.windows_per_record"),
    ({"source": "ptbxl", "root": "/x", "windows_per_record": 4}, "data.windows_per_record"),
    ({"max_records": 0}, "data.max_records"),
    ({"exclude_electrode_problems": "yes"}, "data.exclude_electrode_problems"),
    ({"split": "time"}, "data.split"),
    ({"source": "wfdb", "root": "/x", "split": "strat_fold"}, "data.split"),
    ({"source": "ptbxl", "root": "/x", "split": "strat_fold", "folds": 10}, "data.folds"),
])
def test_bad_options_name_the_option(kwargs, option, tmp_path):
    with pytest.raises(ConfigError, match=option.replace(".", r"\.")):
        ECGDataModule(cache_dir=str(tmp_path), **kwargs)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- training on each source




@pytest.mark.parametrize("source", ["ptbxl", "challenge", "wfdb"])
def test_short_training_run_on_each_source(source, ptbxl_root, wfdb_root, tmp_path):
    root = {"ptbxl": ptbxl_root, "wfdb": wfdb_root}.get(source)
    if root is None:
        root = tmp_path / "ch"
        write_challenge(root, n=24)
    out = tmp_path / "run"
    cfg = compose_app("train", "model=ecg", "binarize=classifier", f"data.source={source}",
                        f"data.root={root}", "data.folds=2", "data.test_fraction=0.25",
                        "data.windows_per_record=2", "trainer.max_epochs=1",
                        "callbacks.rich_progress_bar=null", f"paths.output_dir={out}",
                        "trainer.enable_model_summary=false")
    lines = []
    results = train(cfg, echo=lines.append)
    assert results["epochs"] == 1 and results["data_source"] == source
    assert 0 <= results["test_acc"] <= 1
    data = json.loads((out / "data.json").read_text())
    read = {"ptbxl": 20, "challenge": 24, "wfdb": 7}[source]
    assert data["source"] == source and data["records_read"] == read
    assert data["n_trials"] == 2 * read and data["input_shape"] == [12, 750]
    assert sum(data["split_sizes"].values()) == 2 * read
    assert lines[0].startswith("Data: ") and f"{read} records read" in lines[0]


def test_cli_names_the_missing_root(tmp_path):
    proc = run_cli("bnn_edge.train", "model=ecg", "data.source=ptbxl",
                   f"data.root={tmp_path / 'ptb-xl'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    err = stderr_lines(proc)
    assert err == [f"error: {tmp_path / 'ptb-xl'}: data.root is not a folder; expected the "
                   f"PTB-XL folder holding ptbxl_database.csv, records100/ and records500/ "
                   f"(see docs/ecg_data.md)"]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_training_learns_reversals_from_ptbxl_files(tmp_path):
    """400 realistic ECGs (deepfake-ecg) written as PTB-XL at 100 Hz: LA-RA is learnt."""
    from scipy.signal import resample_poly

    from bnn_edge.data.ecg import generate_deepfake_ecgs

    ecgs = resample_poly(generate_deepfake_ecgs(400, seed=5, progress=False), 1, 5, axis=-1)
    root = tmp_path / "ptbxl"
    rows = []
    for i, ecg in enumerate(ecgs, start=1):
        lr = f"records100/00000/{i:05d}_lr"
        write_record(root / "records100/00000", f"{i:05d}_lr", ecg.T, 100, PTBXL_NAMES)
        rows.append({"ecg_id": i, "patient_id": f"{i}.0", "age": "", "sex": "",
                     "scp_codes": "", "electrodes_problems": "", "strat_fold": str(1 + i % 10),
                     "filename_lr": lr, "filename_hr": lr.replace("100", "500")})
    (root / "records500").mkdir()
    with open(root / "ptbxl_database.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=PTBXL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    cfg = compose_app("train", "model=ecg", "binarize=none", "data.source=ptbxl",
                      f"data.root={root}",
                        "data.sampling=100", "trainer.max_epochs=4",
                        "callbacks.rich_progress_bar=null", f"paths.output_dir={tmp_path / 'run'}",
                        "trainer.enable_model_summary=false")
    results = train(cfg, echo=lambda *_: None)
    print(f"ptbxl-format deepfake ECGs: val/acc best {results['val_acc_best']:.4f}, "
          f"test/acc {results['test_acc']:.4f}")
    assert results["test_acc"] > 0.8  # chance is 0.5
