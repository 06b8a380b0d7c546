"""A run, its evaluation and its report as W&B records, offline and in one process: the fast
variant of tests/cli/test_wandb.py's sweep (which is marked slow)."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers.runs import compose_app
from tests.helpers.wandb_records import offline_runs


def test_run_evaluate_and_report_log_what_they_are(tmp_path, monkeypatch, capsys):
    from bnn_edge.cli.report import main as report_main
    from bnn_edge.experiment.robustness import evaluate
    from bnn_edge.experiment.training import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("HOME", str(tmp_path))
    run_dir = tmp_path / "runs" / "r0"
    said = []
    cfg = compose_app("train", "data.n_trials=40", "trainer.max_epochs=1",
                      "callbacks.rich_progress_bar=null", "callbacks.rich_model_summary=null",
                      "trainer.enable_model_summary=false", "logger=wandb",
                      "logger.wandb.group=study", "callbacks=bit_errors",
                      "bit_errors.ber=[0,0.1]", "bit_errors.draws=1", "aug=2",
                      f"paths.output_dir={run_dir}")
    results = train(cfg, echo=said.append)
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    assert said[-1] == (f"W&B: offline run 'ecg_classifier_aug2_fold0_seed42' (group 'study') "
                        f"in {folder}; upload with: wandb sync {folder}")
    evaluate(compose_app("evaluate", f"ckpt_path={run_dir}", "logger=wandb", "engine=torch",
                         "bit_errors.ber=[0,0.1]", "bit_errors.draws=1",
                         f"paths.output_dir={tmp_path / 'runs' / 'eval'}"), echo=said.append)
    assert said[-1].startswith("W&B: offline run 'evaluate-eval' (group 'study') in ")
    assert report_main([str(tmp_path / "runs"), "wandb=true"]) == 0
    assert "(group 'study') in " in capsys.readouterr().out

    runs = {r.job_type: r for r in offline_runs(tmp_path / "runs")}
    assert {k: (r.project, r.group) for k, r in runs.items()} == {
        "train": ("bnn_edge", "study"), "evaluate": ("bnn_edge", "study"),
        "report": ("bnn_edge", "study")}
    train_run = runs["train"]
    assert {k: train_run.config[k] for k in ("model", "binarize", "aug", "fold", "seed")} == {
        "model": "ecg", "binarize": "classifier", "aug": 2, "fold": 0, "seed": 42}
    assert train_run.config["data"]["n_trials"] == 40
    assert train_run.config["params"]["total"] > train_run.config["params"]["binary"] > 0
    assert {"ber/val_curve_table", "ber/test_curve_table", "acc_by_category/test_table"} <= set(
        train_run.tables())
    assert train_run.history["test/acc"] == pytest.approx(results["test_acc"])
    assert runs["evaluate"].tables()["ber/curve_table"]["nrows"] == 2
    report = runs["report"]
    assert report.config["runs"] == 1
    assert {"table3", "fig7/ecg_table", "fig7/ecg_spread_table", "ber/curves_table"} <= set(
        report.tables())
    fig7 = json.loads((report.folder / "files" / report.tables()["fig7/ecg_table"]["path"])
                      .read_text())
    ours = [row for row in fig7["data"] if row[1] == "ours"]
    assert ours == [["binarized classifier", "ours", 2, pytest.approx(100 * results["val_acc"]),
                     0.0, 1]]


def test_evaluate_joins_the_runs_project_and_charts_the_swept_parameter(tmp_path,
                                                                         monkeypatch):
    """Runs trained with logger.wandb.project=foo get their evaluate run in foo, not in the
    default project; a sweep of the stuck fraction is charted against the fraction."""
    from bnn_edge.experiment.robustness import (
        Curve,
        log_to_wandb,
        plot_curves,
        run_settings,
        settings_from_config,
    )
    from bnn_edge.hardware.faults import SweepPoint

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))
    out = tmp_path / "eval"
    cfg = compose_app("evaluate", "logger=wandb", "fault_model=stuck",
                      "bit_errors.fault_model.fraction=[0,0.01,0.1]", f"paths.output_dir={out}")
    settings = settings_from_config(cfg)
    points = [SweepPoint(f, [a]) for f, a in zip(settings.rates, (0.9, 0.8, 0.5), strict=True)]
    curve = Curve("ecg full aug1", tmp_path / "last.ckpt", "ecg", "full", 1, "none", 2,
                  points=points)
    out.mkdir()
    plot_curves([curve], settings, out / "ber_curve.png")
    trained = {"logger": {"wandb": {"project": "foo", "entity": None, "group": "study"}}}
    line = log_to_wandb(cfg, [curve], settings, run_settings(cfg), [trained])
    assert line.startswith("W&B: offline run 'evaluate-eval' (group 'study') in ")
    (run,) = offline_runs(out)
    assert (run.project, run.group) == ("foo", "study")
    table = json.loads((run.folder / "files" / run.tables()["ber/curve_table"]["path"])
                       .read_text())
    assert table["columns"] == ["variant", "fraction", "log10_fraction", "accuracy", "spread",
                                "draws"]
    assert [row[1:4] for row in table["data"]] == [
        [0.0, -3, 0.9], [0.01, pytest.approx(-2), 0.8], [0.1, pytest.approx(-1), 0.5]]


@pytest.mark.parametrize("wandb_folder", ["run-20261206_000000-abc",
                                          "offline-run-20261206_000000-abc", "latest-run"])
def test_the_report_skips_wandb_run_folders(tmp_path, wandb_folder):
    """A synced W&B run writes ``files/config.yaml`` inside the run's ``wandb/`` folder: it
    is no run of the report's, not even an incomplete one."""
    from bnn_edge.experiment.tables import find_runs
    from tests.helpers.runs import fake_run

    run = fake_run(tmp_path, "r0", val=0.9)
    files = run / "wandb" / wandb_folder / "files"
    files.mkdir(parents=True)
    (files / "config.yaml").write_text("_wandb:\n  value: {}\nlr:\n  value: 0.001\n")
    assert [(r.path, r.status) for r in find_runs(tmp_path)] == [(run, "done")]


def test_evaluate_takes_logger_none_or_wandb(tmp_path):
    from bnn_edge.errors import ConfigError
    from bnn_edge.experiment.robustness import run_settings

    assert run_settings(compose_app("evaluate", "logger=none")) is None
    settings = run_settings(compose_app("evaluate", "logger=wandb", "logger.wandb.notes=n",
                                        f"paths.output_dir={tmp_path / 'eval'}"))
    # no project: the evaluated runs' (else bnn_edge) is taken when the run starts
    assert settings == {"name": "evaluate-eval", "job_type": "evaluate", "notes": "n",
                        "tags": ["task=evaluate"]}
    assert run_settings(compose_app("evaluate", "logger=wandb", "logger.wandb.project=mine",
                                    f"paths.output_dir={tmp_path}"))["project"] == "mine"
    with pytest.raises(ConfigError, match="logger='csv' is not allowed: expected none or "
                                          "wandb"):
        run_settings(compose_app("evaluate", "logger=csv"))
    # WandbLogger's own settings do not reach wandb.init: refused now, not a TypeError later
    for setting in ("prefix='x'", "checkpoint_name='x'", "version='x'"):
        with pytest.raises(ConfigError, match=re.escape(
                f"logger.wandb.{setting} is not allowed: expected a setting of wandb.init (")):
            run_settings(compose_app("evaluate", "logger=wandb", f"+logger.wandb.{setting}",
                                     f"paths.output_dir={tmp_path}"))
