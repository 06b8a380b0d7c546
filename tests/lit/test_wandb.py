"""W&B without a network: the config a run logs, settings passed through or refused, where
offline runs went and the command that uploads them."""

from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from bnn_edge.errors import ConfigError
from bnn_edge.hardware.memory import memory_report
from bnn_edge.lit.tracking import (
    recorded_settings,
    start_run,
    sync_command,
    sync_line,
    wandb_logger,
)
from bnn_edge.lit.wandb_panels import ber_rows, ber_table, run_config
from tests.helpers.runs import compose_app


def test_run_config_has_the_run_flat_and_the_groups_nested(tmp_path):
    cfg = compose_app("train", "logger=wandb", "aug=2", "seed=7", "data.fold=3",
                      "trainer.max_epochs=5", f"paths.output_dir={tmp_path}")
    config = run_config(OmegaConf.to_container(cfg, resolve=True), 2)
    assert {k: config[k] for k in ("model", "binarize", "aug", "fold", "seed")} == {
        "model": "ecg", "binarize": "classifier", "aug": 2, "fold": 3, "seed": 7}
    assert config["lr"] == 1e-3 and config["num_classes"] == 2  # the model's options, flat
    assert config["data"]["n_trials"] == 1000 and config["trainer"]["max_epochs"] == 5
    assert config["bit_errors"]["draws"] == 20 and config["logger"]["wandb"]["job_type"] == "train"
    assert "hydra" not in config
    table4 = memory_report("ecg", "classifier", 2, num_classes=2)
    assert config["params"] == {"total": table4["configured_params"],
                                "binary": table4["binary_params"],
                                "real": table4["configured_params"] - table4["binary_params"],
                                "classifier": table4["classifier_params"],
                                "conv": table4["conv_params"]}
    assert config["memory"]["bytes_mixed_fp32"] == table4["bytes_mixed_fp32"]
    assert config["memory"]["saving_vs_fp32_pct"] == table4["saving_vs_fp32_pct"]
    assert config["memory"]["arrays"] == table4["arrays"]["total_arrays"] > 0


def test_any_wandb_setting_passes_through(tmp_path):
    logger = wandb_logger(save_dir=str(tmp_path), entity="lab", notes="first try",
                          tags=["a"], save_code=True, mode="offline", id="abc123")
    init = logger._wandb_init
    assert (init["entity"], init["notes"], init["save_code"], init["id"]) == (
        "lab", "first try", True, "abc123")
    assert (init["job_type"], init["mode"], init["tags"]) == ("train", "offline", ["a"])
    assert init["project"] == "bnn_edge"  # project=null (the config's default)
    assert wandb_logger(save_dir=str(tmp_path), project="mine", mode="offline"
                        )._wandb_init["project"] == "mine"


def test_training_logs_to_the_project_bnn_edge_by_default(tmp_path):
    from hydra.utils import instantiate

    cfg = compose_app("train", "logger=wandb", "logger.wandb.mode=offline",
                      f"paths.output_dir={tmp_path}")
    assert instantiate(cfg.logger.wandb)._wandb_init["project"] == "bnn_edge"


@pytest.mark.parametrize("setting", [{"prefix": "x"}, {"checkpoint_name": "best"},
                                     {"version": "abc"}])
def test_settings_only_wandb_logger_takes_are_refused_by_evaluate_and_report(setting,
                                                                            tmp_path):
    """Training's WandbLogger takes them; the runs of evaluate and report are wandb.init's,
    which would stop with a TypeError traceback: one ConfigError line instead."""
    (name, value), = setting.items()
    assert wandb_logger(save_dir=str(tmp_path), mode="offline", **setting)
    with pytest.raises(ConfigError, match=re.escape(
            f"logger.wandb.{name}={value!r} is not allowed: expected a setting of wandb.init "
            f"(entity, notes,")):
        start_run(tmp_path / "eval", "evaluate", {"mode": "offline", **setting}, "logger.wandb")


@pytest.mark.parametrize(("settings", "message"), [
    ({"colour": "red"}, "logger.wandb.colour='red' is not allowed: expected a setting of "
                        "wandb.init or WandbLogger"),
    ({"mode": "sometimes"}, "logger.wandb.mode='sometimes' is not allowed: expected one of "
                            "online, offline, disabled, shared, or null"),
    ({"mode": "offline", "log_model": True},
     "logger.wandb.log_model=True is not allowed: expected false in offline mode"),
])
def test_settings_wandb_does_not_take_are_refused(settings, message, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(message)):
        wandb_logger(save_dir=str(tmp_path), **settings)


def test_ber_table_puts_rate_zero_a_decade_left_of_the_smallest_rate():
    from bnn_edge.hardware.faults import SweepPoint

    points = [SweepPoint(0.0, [0.9]), SweepPoint(1e-3, [0.8, 0.6]), SweepPoint(0.1, [0.5, 0.5])]
    rows = ber_rows("ecg full aug1", points, "2T2R", (1.0, 1e6, 1e8))
    table = ber_table(rows)
    assert table.columns == ["variant", "rate", "log10_rate", "accuracy", "spread", "cell",
                             "cycles", "draws"]
    assert [r[2] for r in table.data] == [-4, pytest.approx(-3), pytest.approx(-1)]
    assert [r[3] for r in table.data] == [0.9, pytest.approx(0.7), 0.5]
    assert [r[4] for r in table.data] == [0.0, pytest.approx(0.2 / 2 ** 0.5), 0.0]  # s.d.
    assert [(r[5], r[6], r[7]) for r in table.data] == [("2T2R", 1.0, 1), ("2T2R", 1e6, 2),
                                                        ("2T2R", 1e8, 2)]


def test_ber_table_names_another_swept_parameter():
    """A sweep of hours since programming: its columns are hours and log10_hours, with no
    cell or cycles (only error rates come from a cell's cycles)."""
    from bnn_edge.hardware.faults import SweepPoint

    rows = ber_rows("ecg full aug1", [SweepPoint(0.0, [0.9]), SweepPoint(100.0, [0.7, 0.5])])
    table = ber_table(rows, "hours")
    assert table.columns == ["variant", "hours", "log10_hours", "accuracy", "spread", "draws"]
    assert [r[1:4] + r[5:] for r in table.data] == [[0.0, 1, 0.9, 1],
                                                    [100.0, pytest.approx(2), 0.6, 2]]


@pytest.mark.parametrize(("fault_model", "x", "title"), [
    ("bitflip", "log10_rate", "val accuracy against log10(bit error rate)"),
    ({"name": "stuck", "fraction": [0, 0.01]}, "log10_fraction",
     "val accuracy against log10(fraction of stuck devices)"),
    ({"name": "retention", "hours": [0, 1000]}, "log10_hours",
     "val accuracy against log10(hours since programming)"),
    ({"name": "array", "columns": 0.5, "spares": [0, 2]}, "log10_spares",
     "val accuracy against log10(spare columns per array)"),
])
def test_the_callback_charts_accuracy_against_the_swept_parameter(fault_model, x, title,
                                                                  monkeypatch):
    from bnn_edge.hardware.faults import SweepPoint
    from bnn_edge.lit import callbacks

    logged = []
    monkeypatch.setattr(callbacks, "wandb_runs", lambda loggers: [SimpleNamespace(
        log=logged.append)])
    callback = callbacks.RRAMBitErrors({"fault_model": fault_model, "draws": 1})
    module = SimpleNamespace(log=lambda *args, **kwargs: None, loggers=[], current_epoch=3)
    callback._log(module, "val", [SweepPoint(v, [0.9 - v / 1e4]) for v in
                                  callback.settings.rates])
    ((key, chart),) = logged[0].items()
    assert key == "ber/val_curve"
    assert (chart.spec.fields["x"], chart.spec.string_fields["title"]) == (x, title)
    assert chart.table.columns[1:3] == [x.removeprefix("log10_"), x]
    assert [row[1] for row in chart.table.data] == list(callback.settings.rates)


def test_recorded_settings_are_those_the_runs_agree_on():
    def config(group, project="bnn_edge"):
        return {"logger": {"wandb": {"project": project, "entity": None, "group": group}}}

    assert recorded_settings([config("g"), config("g")]) == {
        "project": "bnn_edge", "group": "g", "groups": 1}
    assert recorded_settings([config("g"), config("h", "other"), {"logger": {}}]) == {
        "groups": 2}


def _offline(folder, name):
    run = folder / "wandb" / f"offline-run-20261206_000000-{name}"
    run.mkdir(parents=True)
    (run / f"run-{name}.wandb").write_bytes(b"")


def test_sync_command_names_every_offline_run_for_wandb_sync(tmp_path):
    """A sweep's jobs, a cv=all job's folds and the report beside them, an online run left
    out: the printed command is what ``wandb sync`` (dry run) finds, all of it."""
    sweep = tmp_path / "my sweep"
    _offline(sweep / "0_ecg_none", "a")
    _offline(sweep / "1_ecg_full" / "repeat0_fold0", "b")
    _offline(sweep, "c")
    online = sweep / "2_ecg_full" / "wandb" / "run-20261206_000000-d"
    online.mkdir(parents=True)
    (online / "run-d.wandb").write_bytes(b"")
    command = sync_command(sweep)
    base = f"'{sweep}'"
    assert command == (f"wandb sync {base}/wandb/offline-run-* {base}/*/wandb/offline-run-* "
                       f"{base}/*/*/wandb/offline-run-*")
    assert sync_line(sweep) == f"W&B: 3 offline runs under {sweep}; upload with: {command}"
    assert sync_command(tmp_path / "my sweep" / "2_ecg_full") is None
    dry = command.replace("wandb sync", f"{sys.executable} -m wandb sync --dry-run", 1)
    proc = subprocess.run(["bash", "-c", dry], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert "Would sync 3 run(s)" in output, output
    assert all(f"run-{n}.wandb" in output for n in "abc") and "run-d" not in output
