"""The report: finding runs, aggregating folds, Table III and Fig. 7."""

from __future__ import annotations

import csv
import json
import statistics

import pytest

from bnn_edge.cli.report import main as report_main
from bnn_edge.experiment.report import make_report
from tests.helpers.runs import fake_run


@pytest.fixture
def sweep(tmp_path):
    vals = {("none", 1): [0.96, 0.94], ("classifier", 1): [0.95, 0.93, 0.97],
            ("full", 1): [0.90, 0.92], ("full", 2): [0.93, 0.95]}
    for (binarize, aug), accs in vals.items():
        for fold, acc in enumerate(accs):
            fake_run(tmp_path, f"{binarize}_{aug}_{fold}", binarize=binarize, aug=aug,
                     fold=fold, val=acc, test=acc - 0.01)
    fake_run(tmp_path, "running", binarize="full", aug=2, val=None)
    fake_run(tmp_path, "crashed", binarize="full", aug=2, val=0.1, status="failed")
    return tmp_path, vals


def test_aggregates_folds_and_lists_the_rest(sweep):
    root, vals = sweep
    report = make_report(root)
    rows = {(r["binarize"], r["aug"]): r for r in report["rows"]}
    assert set(rows) == set(vals)
    for key, accs in vals.items():
        assert rows[key]["runs"] == len(accs)
        assert rows[key]["val_acc_mean"] == round(100 * statistics.fmean(accs), 2)
        assert rows[key]["val_acc_std"] == round(100 * statistics.stdev(accs), 2)
    assert rows[("none", 1)]["paper_acc"] == 96.3 and rows[("full", 2)]["paper_acc"] is None
    assert sorted(r.path.name for r in report["not_averaged"]) == ["crashed", "running"]
    assert {r.status for r in report["not_averaged"]} == {"failed", "incomplete"}

    md = (root / "table3.md").read_text()
    assert any(line.startswith("| task | real weights (ours) | real weights (paper)")
               for line in md.splitlines())
    assert "| ECG | 95.0 ± 1.4% (1x, n=2) | 96.3% (1x) |" in md
    assert "91.0 ± 1.4% (1x, n=2)<br>94.0 ± 1.4% (2x, n=2) | 92.1% (1x), 94.9% (7x)" in md
    with open(root / "table3.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    png = root / "fig7_ecg.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_prints_the_table_and_lists_unfinished(sweep, capsys, tmp_path):
    root, _ = sweep
    out = tmp_path / "elsewhere"
    assert report_main([str(root), f"out={out}"]) == 0
    printed = capsys.readouterr().out
    assert "| ECG |" in printed and "9 finished runs in 4 groups" in printed
    assert "not averaged (failed):" in printed and "RuntimeError: out of memory" in printed
    assert "not averaged (incomplete):" in printed
    assert (out / "table3.md").is_file() and (out / "fig7_ecg.png").is_file()


@pytest.mark.parametrize(("argv", "message"), [
    ([], "error: DIR=None is not allowed"),
    (["/no/such/dir"], "error: DIR='/no/such/dir' is not allowed"),
    (["{tmp}", "wandb=maybe"], "error: wandb='maybe' is not allowed: expected true or false"),
    (["{tmp}", "colour=red"], "error: colour='red' is not allowed"),
    (["{tmp}", "margin=wide"], "error: margin='wide' is not allowed: expected a number of "
                               "accuracy points in (0, 50)"),
    (["{tmp}", "margin=0"], "error: margin=0.0 is not allowed: expected a number of accuracy"),
    (["{tmp}", "margin=-1"], "error: margin=-1.0 is not allowed"),
    (["{tmp}", "margin=nan"], "error: margin=nan is not allowed"),
    (["{tmp}", "margin=50"], "error: margin=50.0 is not allowed"),
    (["{tmp}", "pool=all"], "error: pool='all' is not allowed: expected true or false"),
])
def test_cli_rejects_bad_arguments(argv, message, capsys, tmp_path):
    fake_run(tmp_path, "run", val=0.9)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert report_main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith(message) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "table3.md").exists()  # nothing written


@pytest.mark.parametrize(("options", "named"), [
    ({"n_trials": 200}, "data.n_trials (1000 in 2 runs, 200 in 2 runs)"),
    ({"options": {"trainer.limit_train_batches": 4}},
     "trainer.limit_train_batches ('<absent>' in 2 runs, 4 in 2 runs)"),
])
def test_runs_with_other_settings_are_not_averaged_together(options, named, tmp_path, capsys):
    """A set of 200-trial (or batch-limited, as debug=fast) runs next to the 1000-trial ones:
    refused with the option named, nothing written; pool=true averages them and says so."""
    for fold in (0, 1):
        fake_run(tmp_path, f"full_{fold}", fold=fold, val=0.90)
        fake_run(tmp_path, f"other_{fold}", fold=fold, val=0.60, **options)
    assert report_main([str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: runs of one task differ in settings that change the result")
    assert named in line and "pass pool=true" in line
    assert not (tmp_path / "table3.md").exists()
    assert report_main([str(tmp_path), "pool=true"]) == 0
    md = (tmp_path / "table3.md").read_text()
    assert "75.0 ± 17.3% (1x, n=4)" in md
    assert "ECG runs pooled although their settings differ (pool=true)" in md


def test_a_seed_and_fold_seen_twice_counts_once(tmp_path, capsys):
    """The same seed-42 fold-0 run in two sweep folders: averaged once, the other listed."""
    for sweep_dir in ("sweep_a", "sweep_b"):
        (tmp_path / sweep_dir).mkdir()
        fake_run(tmp_path / sweep_dir, "none_fold0", fold=0, val=0.90)
    fake_run(tmp_path / "sweep_b", "none_fold1", fold=1, val=0.80)
    assert report_main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "85.0 ± 7.1% (1x, n=2)" in printed and "2 finished runs in 1 groups" in printed
    dup = tmp_path / "sweep_b" / "none_fold0"
    assert (f"not averaged (duplicate): {dup} - the same seed 42, fold 0 and settings as "
            f"{tmp_path / 'sweep_a' / 'none_fold0'}") in printed


def test_provenance_one_run_and_chance(tmp_path):
    """Each file opens with what it was computed from; one run shows its Wilson interval,
    no ± and no n > 1; a variant at chance says so."""
    fake_run(tmp_path, "full", binarize="full", val=0.50)
    for fold, acc in enumerate((0.90, 0.88, 0.92)):
        fake_run(tmp_path, f"none_{fold}", fold=fold, val=acc, test=acc - 0.01)
    report = make_report(tmp_path)
    md = (tmp_path / "table3.md").read_text()
    assert ("**ECG**: data `synthetic` (made-up trials); 1000 trials; 5-fold split, test "
            "fraction 0.2 (640 train / 160 validation / 200 test trials a fold); 10 epochs; "
            "folds 0, 1, 2 x 1 repeat(s) (seeds 42); code not recorded") in md
    assert "These ECG data are synthetic, generated by this project" in md
    assert "by bnn_edge 0.1.0" in md
    assert "| 50.0% [42.3, 57.7] (1x, n=1) at chance | 92.1% (1x), 94.9% (7x) |" in md
    assert "± 0.0" not in md
    (full,) = [g for g in report["groups"] if g.binarize == "full"]
    assert full.at_chance and not report["groups"][0].at_chance
    with open(tmp_path / "runs.csv") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    row = rows[str(tmp_path / "full")]
    assert (round(float(row["val_wilson_low"]), 4), round(float(row["val_wilson_high"]), 4),
            row["n_val"]) == (0.4234, 0.5766, "160")


def test_learning_curves_across_folds(tmp_path):
    fake_run(tmp_path, "a", fold=0, val=0.8, curve=[0.6, 0.7, 0.8])
    fake_run(tmp_path, "b", fold=1, val=0.9, curve=[0.7, 0.8, 0.9])
    report = make_report(tmp_path)
    with open(tmp_path / "curves.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == "val/acc"]
    assert [(r["epoch"], float(r["mean"]), float(r["std"]), r["n"]) for r in rows] == [
        ("0", 65.0, 7.071, "2"), ("1", 75.0, 7.071, "2"), ("2", 85.0, 7.071, "2")]
    png = tmp_path / "curves_ecg.png"
    assert png in report["figures"] and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_per_class_metrics_pooled_across_folds(tmp_path):
    """Accuracy per class (sensitivity and specificity of reversal detection) and per
    reversal in the runs' order, pooled over the folds with Wilson intervals."""
    extra = {"val_acc_by_class": {"0": {"acc": 0.9, "n": 80}, "1": {"acc": 0.8, "n": 80}},
             "val_acc_by_category": {"correct": {"acc": 0.9, "n": 80},
                                     "LA-RA": {"acc": 1.0, "n": 40},
                                     "LA-LL": {"acc": 0.6, "n": 40}}}
    for fold in (0, 1):
        fake_run(tmp_path, f"r{fold}", fold=fold, val=0.85, by_class=extra)
    make_report(tmp_path)
    md = (tmp_path / "per_class.md").read_text()
    assert "| variant | aug | n | 0: correct electrodes | 1: electrodes reversed |" in md
    assert "its accuracy is the sensitivity and class 0's the specificity" in md
    assert "| none | 1 | 2 | 90.0% [84.4, 93.8] (160) | 80.0% [73.1, 85.5] (160) |" in md
    assert "Accuracy per reversal:" in md and "| variant | aug | correct | LA-RA | LA-LL |" in md
    assert "| none | 1 | 90.0% [84.4, 93.8] (160) | 100.0% [95.4, 100.0] (80) | " \
           "60.0% [49.0, 70.0] (80) |" in md


def test_empty_directory(tmp_path, capsys):
    assert report_main([str(tmp_path)]) == 0
    assert "No finished runs." in capsys.readouterr().out


@pytest.mark.parametrize(("content", "reason"), [
    (b"[1, 2]", "the top level is a list, expected an object"),
    (json.dumps({"binarize": "full", "aug": 1, "val_acc": 0.9}).encode(), "model is missing"),
    (json.dumps({"model": "ecg", "binarize": "full", "aug": "seven",
                 "val_acc": 0.9}).encode(), "aug='seven', expected an integer >= 1"),
    (json.dumps({"model": "ecg", "binarize": "full", "aug": 1,
                 "val_acc": "0.9"}).encode(), "val_acc='0.9', expected a number in [0, 1]"),
    (json.dumps({"model": "ecg", "binarize": "quarter", "aug": 1,
                 "val_acc": 0.9}).encode(), "binarize='quarter', expected one of"),
    (b"\xff\xfe{\"model\": 1}", "not UTF-8 text"),
    (json.dumps({"model": "ecg", "binarize": "full", "aug": 1, "val_acc": 0.9,
                 "val_acc_by_class": {"0": {"acc": 2, "n": 5}}}).encode(),
     "val_acc_by_class={'0': {'acc': 2, 'n': 5}}, expected {name: "),
])
def test_malformed_results_are_listed_as_unreadable_and_skipped(content, reason, sweep,
                                                                capsys):
    root, vals = sweep
    bad = fake_run(root, "tampered", binarize="full", aug=1)
    (bad / "results.json").write_bytes(content)
    assert report_main([str(root)]) == 0
    printed = capsys.readouterr().out
    assert f"{sum(map(len, vals.values()))} finished runs in {len(vals)} groups" in printed
    (line,) = [line for line in printed.splitlines() if str(bad) in line]
    assert line.startswith(f"not averaged (unreadable): {bad} - {bad / 'results.json'}: ")
    assert reason in line


def test_other_tools_folders_are_not_runs(sweep, capsys):
    """An evaluate output folder (.hydra with task_name evaluate) is not an incomplete run."""
    root, _ = sweep
    ev = root / "evaluate" / "2026-01-01_00-00-00"
    (ev / ".hydra").mkdir(parents=True)
    (ev / ".hydra" / "config.yaml").write_text("task_name: evaluate\nckpt_path: x\n")
    (ev / "ber_curve.csv").write_text("variant\n")
    report = make_report(root)
    assert all("evaluate" not in str(r.path) for r in report["runs"])


def test_a_sweep_folder_named_wandb_is_reported(tmp_path, capsys):
    """Only W&B's own run folders (``wandb/run-*``, with a config.yaml once synced) are
    skipped, not the runs of a sweep folder a user named ``wandb``."""
    sweep = tmp_path / "wandb"
    sweep.mkdir()
    for fold, acc in enumerate((0.9, 0.8)):
        run = fake_run(sweep, f"fold{fold}", fold=fold, val=acc)
        synced = run / "wandb" / "run-20261206_000000-abc" / "files"
        synced.mkdir(parents=True)
        (synced / "config.yaml").write_text("_wandb:\n  value: {}\n")
    assert report_main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "2 finished runs in 1 groups" in printed and "not averaged" not in printed
    assert "| ECG | 85.0 ± 7.1% (1x, n=2) |" in printed


@pytest.mark.parametrize(("data", "reason"), [
    ({"split_sizes": {"train": "640", "val": 160}}, "split_sizes={'train': '640', 'val': 160}"),
    ({"class_counts": [1, 2]}, "class_counts=[1, 2], expected a mapping to counts >= 0"),
    ({"n_trials": 1.5}, "n_trials=1.5, expected an integer"),
])
def test_a_malformed_data_json_is_listed_as_unreadable(data, reason, tmp_path, capsys):
    fake_run(tmp_path, "good", fold=0)
    bad = fake_run(tmp_path, "bad", fold=1)
    (bad / "data.json").write_text(json.dumps({"source": "synthetic", **data}))
    assert report_main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "1 finished runs in 1 groups" in printed
    (line,) = [line for line in printed.splitlines() if str(bad) in line]
    assert line.startswith(f"not averaged (unreadable): {bad} - {bad / 'data.json'}: ")
    assert reason in line
