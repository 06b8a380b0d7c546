"""The report: finding runs, aggregating folds, Table III and Fig. 7."""

from __future__ import annotations

import csv
import json
import statistics

import pytest

from bnn_edge.cli.report import main as report_main
from bnn_edge.experiment.tables import make_report
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
    assert md.splitlines()[0].startswith("| task | real weights (ours) | real weights (paper)")
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
])
def test_cli_rejects_bad_arguments(argv, message, capsys, tmp_path):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert report_main(argv) == 2
    assert capsys.readouterr().err.strip().startswith(message)


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
