"""W&B from the command line, offline: a sweep, an evaluate and a report read back from their
``.wandb`` records; descriptive sweep groups; wandb settings given as options."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from bnn_edge.cli.app import precheck, sweep_group
from bnn_edge.errors import BnnEdgeError
from tests.conftest import run_cli
from tests.helpers.runs import compose_app
from tests.helpers.wandb_records import offline_runs

TINY = ["data.n_trials=40", "trainer.max_epochs=1", "callbacks.rich_progress_bar=null",
        "callbacks.rich_model_summary=null", "trainer.enable_model_summary=false"]


def test_sweep_groups_name_what_was_swept(tmp_path):
    sweep = tmp_path / "2026-12-05_20-56-26"
    sweep.mkdir()
    OmegaConf.save({"hydra": {"overrides": {"task": ["binarize=none,full", "aug=1,2",
                                                     "trainer.max_epochs=1"]},
                              "sweeper": {"params": {"data.fold": "0,1"}}}},
                   sweep / "multirun.yaml")
    assert sweep_group(sweep, None, "ecg") == \
        "ecg: data.fold x binarize x aug (2026-12-05_20-56-26)"
    assert sweep_group(sweep, "fig7_ecg", "ecg").startswith("fig7_ecg: data.fold x ")
    assert sweep_group(tmp_path / "elsewhere", None, "eeg") == "eeg (elsewhere)"


def test_wandb_settings_are_options_of_the_commands():
    argv = precheck("train", ["logger=wandb", "logger.wandb.entity=lab",
                              "logger.wandb.save_code=true"], output_dir=False)
    assert argv == ["logger=wandb", "logger.wandb.entity=lab", "+logger.wandb.save_code=true"]
    assert precheck("evaluate", ["ckpt_path=x", "logger=wandb", "logger.wandb.save_code=true"],
                    output_dir=False)[-1] == "+logger.wandb.save_code=true"
    with pytest.raises(BnnEdgeError, match=r"logger\.wandb\.save_code is not an option"):
        precheck("train", ["logger.wandb.save_code=true"], output_dir=False)  # logger=csv
    with pytest.raises(BnnEdgeError, match=r"not an option \(did you mean logger\.wandb\.entity "):
        precheck("train", ["logger=wandb", "logger.wandb.entitty=lab"], output_dir=False)


def _table(run, key: str) -> list[dict]:
    """The rows of a table an offline run logged, from its file in the run's folder."""
    record = run.tables()[key]
    data = json.loads((run.folder / "files" / record["path"]).read_text())
    return [dict(zip(data["columns"], row, strict=True)) for row in data["data"]]


@pytest.mark.slow
def test_sweep_evaluate_and_report_say_what_they_are(tmp_path, monkeypatch, capsys):
    """A 2-job sweep with bit-error sweeps, evaluate and report, all offline: each run's
    config, job type and group, the bit-error, per-category, Table III, Fig. 7 and claims
    tables, and the printed ``wandb sync`` command finding every run (about 40 s; the
    fast variant is tests/experiment/test_wandb_runs.py)."""
    from bnn_edge.cli.report import main as report_main
    from bnn_edge.experiment.robustness import evaluate

    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb_dir"),
           "WANDB_SILENT": "true", "HOME": str(tmp_path), "BNN_EDGE_LOG_DIR": str(tmp_path)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    proc = run_cli("bnn_edge.train", "-m", "binarize=classifier,full", "logger=wandb",
                   "logger.wandb.notes=tiny", "callbacks=bit_errors", "bit_errors.ber=[0,0.1]",
                   "bit_errors.draws=1", *TINY, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    group = f"ecg: binarize ({sweep.name})"
    jobs = sorted(p.parent for p in sweep.glob("*/results.json"))
    assert [p.name for p in jobs] == ["0_ecg_classifier_aug1_fold0", "1_ecg_full_aug1_fold0"]
    # where things went: each job's folder, then the sweep's command for all of them
    for job in jobs:
        (offline,) = (job / "wandb").glob("offline-run-*")
        assert f"in {offline}; upload with: wandb sync {offline}" in proc.stdout
    command = f"wandb sync {sweep}/*/wandb/offline-run-*"
    assert f"W&B: 2 offline runs under {sweep}; upload with: {command}" in proc.stdout
    dry = subprocess.run(["bash", "-c", command.replace(
        "wandb sync", f"{sys.executable} -m wandb sync --dry-run", 1)],
        capture_output=True, text=True, timeout=120)
    assert "Would sync 2 run(s)" in dry.stdout + dry.stderr, dry.stdout + dry.stderr

    cfg = compose_app("evaluate", f"ckpt_path={jobs[1]}", "logger=wandb",
                      "bit_errors.ber=[0,0.1]", "bit_errors.draws=2", "engine=torch",
                      f"paths.output_dir={sweep / 'evaluate'}")
    said = []
    evaluate(cfg, echo=said.append)
    assert said[-1].startswith(f"W&B: offline run 'evaluate-evaluate' (group '{group}') in ")
    assert report_main([str(sweep), "wandb=true", "claims=true"]) == 0
    assert f"(group '{group}') in {sweep / 'wandb'}" in capsys.readouterr().out

    runs = {r.job_type + ("" if r.job_type != "train" else r.config["binarize"]): r
            for r in offline_runs(sweep)}
    assert sorted(runs) == ["evaluate", "report", "trainclassifier", "trainfull"]
    assert {r.group for r in runs.values()} == {group}  # the report joins the sweep's group
    for binarize, job in zip(("classifier", "full"), jobs, strict=True):
        run, results = runs["train" + binarize], json.loads((job / "results.json").read_text())
        assert run.name == f"ecg_{binarize}_aug1_fold0_seed42" and run.notes == "tiny"
        assert {k: run.config[k] for k in ("model", "binarize", "aug", "fold", "seed")} == {
            "model": "ecg", "binarize": binarize, "aug": 1, "fold": 0, "seed": 42}
        assert run.config["data"]["n_trials"] == 40 and run.config["trainer"]["max_epochs"] == 1
        assert run.config["bit_errors"]["ber"] == [0, 0.1]
        assert run.config["params"]["binary"] > 0 and run.config["memory"]["bytes_fp32"] > 0
        curve = _table(run, "ber/test_curve_table")
        assert [(r["rate"], r["draws"]) for r in curve] == [(0.0, 1), (0.1, 1)]
        assert curve[0]["accuracy"] == pytest.approx(results["test_acc"])
        by_type = {r["category"]: r["accuracy"] for r in _table(run, "acc_by_category/test_table")}
        assert by_type == {k: pytest.approx(v["acc"])
                           for k, v in results["test_acc_by_category"].items()}
        assert "ber/val_curve_table" in run.tables()

    run = runs["evaluate"]
    assert run.config["curves"][0]["binarize"] == "full" and run.config["split"] == "test"
    with open(sweep / "evaluate" / "ber_curve.csv", newline="") as f:
        written = [(float(r["ber"]), float(r["acc_mean"])) for r in csv.DictReader(f)]
    assert [(r["rate"], pytest.approx(r["accuracy"], abs=1e-6))
            for r in _table(run, "ber/curve_table")] == written

    run = runs["report"]
    assert run.config["runs"] == 2
    fig7 = _table(run, "fig7/ecg_table")
    ours = {(r["series"], r["aug"]): r["accuracy"] for r in fig7 if r["source"] == "ours"}
    val = {b: 100 * json.loads((j / "results.json").read_text())["val_acc"]
           for b, j in zip(("classifier", "full"), jobs, strict=True)}
    assert ours == {("binarized classifier", 1): pytest.approx(val["classifier"]),
                    ("all binarized", 1): pytest.approx(val["full"])}
    assert {"table3", "claims", "fig7/ecg_spread_table", "ber/curves_table"} <= set(run.tables())
    claims = _table(run, "claims")
    assert len(claims) > 5 and {c["verdict"] for c in claims} <= {
        "holds", "does not hold", "inconclusive", "not measured", "no verdict (at chance)",
        "inconsistent in the paper"}


@pytest.mark.slow
def test_cv_all_ends_with_the_command_that_syncs_every_fold(tmp_path):
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb_dir"),
           "HOME": str(tmp_path)}
    run = tmp_path / "cv"
    proc = run_cli("bnn_edge.train", "cv=all", "cv.folds=2", "logger=wandb", *TINY,
                   f"hydra.run.dir={run}", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last == (f"W&B: 2 offline runs under {run}; upload with: "
                    f"wandb sync {run}/*/wandb/offline-run-*")
    runs = offline_runs(run)
    assert {r.group for r in runs} == {"cv"}  # the folds share their run folder's name
    assert sorted(r.name for r in runs) == ["ecg_classifier_aug1_fold0_seed42",
                                            "ecg_classifier_aug1_fold1_seed42"]
