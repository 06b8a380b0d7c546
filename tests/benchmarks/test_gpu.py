"""benchmarks/gpu.py on the CPU: the dry run end to end, its arithmetic, its time guards."""

from __future__ import annotations

import csv
import dataclasses
from types import SimpleNamespace

import pytest
import torch

from benchmarks import gpu
from bnn_edge.experiment.protocols import PROTOCOLS


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_dry_run_measures_every_ecg_configuration_and_projects_fig7(tmp_path):
    assert gpu.main(["--dry-run", "--sections", "ecg", "--out", str(tmp_path)]) == 0
    timings = read(tmp_path / "gpu_timings.csv")
    # 3 variants x aug 1, 2 x 2 precisions on the device, and one host-DataLoader row
    assert len(timings) == 13 and sum(r["loader"] == "DataLoader" for r in timings) == 1
    for r in timings:
        assert r["note"] == "" and int(r["epochs_timed"]) == 1 and r["train_samples"] == "24"
        epoch, train, val, ckpt = (float(r[k]) for k in ("epoch_s", "train_s", "val_s",
                                                          "ckpt_s"))
        assert 0 < val < epoch and 0 < ckpt < epoch  # last.ckpt every epoch, inside it
        assert train == pytest.approx(epoch - val - ckpt, rel=1e-4)
        assert float(r["samples_per_s"]) == pytest.approx(24 / train, rel=1e-4)
        assert r["peak_mem_gib"] == ""  # no GPU memory on the CPU
    measured = {(r["binarize"], int(r["aug"]), r["precision"]): r for r in timings
                if r["loader"] == "on_device"}
    cells = read(tmp_path / "gpu_projection.csv")
    fig7 = PROTOCOLS["fig7_ecg"]
    assert len(cells) == 2 * 2 * len(fig7.cells)  # two precisions, with and without checkpoints
    for c in cells:
        v, a, p = c["variant"], int(c["aug"]), c["precision"]
        less = "less checkpoint" in c["rate"]

        def epoch(r, less=less):
            return float(r["epoch_s"]) - (float(r["ckpt_s"]) if less else 0.0)

        one, two = (epoch(measured[v, k, p]) for k in (1, 2))
        expected = {1: one, 2: two}.get(a, two + (two - one) * (a - 2))
        assert c["how"] == ("measured" if a <= 2 else "extrapolated")
        assert float(c["epoch_s"]) == pytest.approx(max(0.0, expected), rel=1e-4)
        setup = float(measured[v, min(a, 2), p]["overhead_s"])
        hours = 25 * (1000 * float(c["epoch_s"]) + setup) / 3600
        assert float(c["gpu_hours"]) == pytest.approx(hours, rel=1e-4)
    text = (tmp_path / "gpu_bench.md").read_text()
    assert text.startswith("# GPU timings (dry run")
    assert "| Fig. 7 ECG | 32-true | measured epochs | 15 |" in text


def test_a_spent_budget_skips_what_is_left_and_says_so(tmp_path):
    assert gpu.main(["--dry-run", "--sections", "eeg,mobilenet", "--budget-s", "1e-6",
                     "--out", str(tmp_path)]) == 1
    timings = read(tmp_path / "gpu_timings.csv")
    assert len(timings) == 3 + 8
    assert {r["note"] for r in timings} == {"skipped: section time budget spent"}
    text = (tmp_path / "gpu_bench.md").read_text()
    # nothing measured: the table says so instead of giving hours
    assert "| Table III EEG | 32-true | measured epochs | 6 | > 0 (incomplete) |" in text


def test_a_fit_stops_once_its_share_is_spent():
    """After one timed epoch past the share; after the warm-up alone past three shares."""

    def stops(epoch_ends: list[float], budget: float) -> int:
        ticks = iter([0.0, *sum(([t, t] for t in epoch_ends), [])])
        clock = gpu.EpochClock(lambda: next(ticks), budget)
        trainer = SimpleNamespace(should_stop=False, sanity_checking=False)
        clock.on_fit_start(trainer, None)
        for epoch in range(len(epoch_ends)):
            clock.on_train_epoch_start(trainer, None)
            clock.on_train_epoch_end(trainer, None)
            if trainer.should_stop:
                return epoch + 1
        return len(epoch_ends)

    assert stops([4.0, 8.0, 12.0, 16.0], budget=10.0) == 3
    assert stops([4.0, 11.0, 12.0, 16.0], budget=10.0) == 2
    assert stops([31.0, 40.0, 50.0], budget=10.0) == 1
    assert stops([29.0, 40.0, 50.0], budget=10.0) == 2


def test_timed_fits_write_checkpoints_and_say_what_they_timed(tmp_path):
    sizes = dataclasses.replace(gpu.DRY, epochs=4)
    data = gpu.RandomTrials((12, 750), 40, batch_size=4, on_device=True)
    data.setup("fit")
    device = torch.device("cpu")
    ample = gpu.time_task("ecg", "ecg", "none", 1, "32-true", data, sizes, device, 1e9,
                          tmp_path / "a")
    assert ample.epochs_timed == 3 and ample.note == "" and ample.overhead_s >= 0
    assert len(list((tmp_path / "a").rglob("*.ckpt"))) == 2  # best and last, as in a run
    none = gpu.time_task("ecg", "ecg", "none", 1, "32-true", data, sizes, device, 0.0,
                         tmp_path / "b")
    assert none.epochs_timed == 0 and none.note == "warm-up epoch only (an upper bound)"
    assert none.epoch_s == none.first_epoch_s


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_the_benchmark_stops_in_one_line(tmp_path, capsys):
    assert gpu.main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: benchmarks/gpu.py needs a CUDA device (torch.cuda.is_available() is "
                   "False); --dry-run times tiny CPU runs instead"]
    assert list(tmp_path.iterdir()) == []
