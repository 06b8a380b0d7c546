"""The command line is checked before any work: one ``error:`` line, exit 2, nothing left.

Unknown keys get the close matches; any ``lightning.pytorch.Trainer`` argument is accepted
as ``trainer.<name>``; missing mandatory values, bad seeds and output places that cannot be
written are refused before Hydra creates a folder or any data is generated.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from omegaconf import OmegaConf

from bnn_edge.cli.app import check_keys, precheck
from bnn_edge.errors import BnnEdgeError, ConfigError
from bnn_edge.hardware.memory import memory_report
from tests.conftest import run_cli

TINY = ["data.n_trials=40", "trainer.max_epochs=1", "callbacks.rich_progress_bar=null"]


def one_error_line(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(("app", "args", "expected"), [
    ("train", ["data.batchsize=3"], "error: data.batchsize is not an option (did you mean "
                                    "data.batch_size?)"),
    ("train", ["trainer.max_stepz=2"], "error: trainer.max_stepz is not an option (did you "
                                       "mean trainer.max_steps or trainer.max_time or "
                                       "trainer.min_steps?)"),
    ("train", ["model.lrate=0.1"], "error: model.lrate is not an option (did you mean "
                                   "model.lr?)"),
    ("train", ["+data.batch_size=3"], "error: +data.batch_size: data.batch_size is already an "
                                      "option; set it without the +"),
    ("memory", ["extra=1"], "error: extra is not an option (the options here are "
                            "array_size, aug, binarize, format, model)"),
    ("evaluate", ["ckpt_path=x", "bit_errors.drawz=3"],
     "error: bit_errors.drawz is not an option (did you mean bit_errors.draws?)"),
    ("export", ["ckpt_path=x"], "error: out is required: set out=..."),
    ("export", ["out=x"], "error: ckpt_path is required: set ckpt_path=..."),
    ("train", ["aug=[1"], "error: cannot read the override 'aug=[1': no viable alternative at "
                          "input '[1'"),
])
def test_precheck_messages(app, args, expected, tmp_path):
    with pytest.raises(BnnEdgeError) as info:
        precheck(app, args + [f"hydra.run.dir={tmp_path / 'run'}"] * (app != "export"))
    assert f"error: {info.value}" == expected


def test_key_checks_do_not_read_hydras_wording(tmp_path, monkeypatch):
    from hydra._internal import config_loader_impl
    from hydra.errors import ConfigCompositionException

    class Reworded(ConfigCompositionException):
        def __init__(self, message: str) -> None:
            super().__init__("composition failed")

    monkeypatch.setattr(config_loader_impl, "ConfigCompositionException", Reworded)
    run = f"hydra.run.dir={tmp_path / 'run'}"
    with pytest.raises(BnnEdgeError) as info:
        precheck("train", ["data.batchsize=3", run])
    assert str(info.value) == "data.batchsize is not an option (did you mean data.batch_size?)"
    with pytest.raises(BnnEdgeError) as info:
        precheck("train", ["+data.batch_size=3", run])
    assert str(info.value) == ("+data.batch_size: data.batch_size is already an option; set "
                               "it without the +")
    assert precheck("train", ["trainer.max_steps=1", run], output_dir=False) == [
        "+trainer.max_steps=1", run]


def test_check_keys_follows_hydras_rules_on_a_config():
    cfg = OmegaConf.create({"a": {"b": 1, "c": "???"}, "d": None, "e": [1, 2]})
    OmegaConf.set_struct(cfg, True)
    assert check_keys(cfg, ["a.b=2", "a.c=3", "+d=4", "++a.f=5", "a.f=6", "~a.b", "e.0=7"]) == [
        "a.b=2", "a.c=3", "+d=4", "++a.f=5", "a.f=6", "~a.b", "e.0=7"]
    assert OmegaConf.to_container(cfg) == {"a": {"c": 3, "f": 6}, "d": 4, "e": [7, 2]}
    assert check_keys(cfg, ["a.g=1"], lambda parent: {"g"} if parent == "a" else set()) == [
        "+a.g=1"]
    assert cfg.a.g == 1
    for overrides, message in [
            (["a.x=1"], "a.x is not an option (the options of a are c, f, g)"),
            (["a.cc=1"], "a.cc is not an option (did you mean a.c?)"),
            (["~a.b"], "a.b is not an option (the options of a are c, f, g)"),
            (["d.x=1"], "d.x is not an option (d has no such option)"),
            (["zz=1"], "zz is not an option (the options here are a, d, e)"),
            (["+a.c=1"], "+a.c: a.c is already an option; set it without the +")]:
        with pytest.raises(BnnEdgeError) as info:
            check_keys(cfg, overrides)
        assert str(info.value) == message


def test_unknown_keys_are_one_line_and_leave_nothing(tmp_path):
    run_dir = tmp_path / "run"
    line = one_error_line(run_cli("bnn_edge.train", "data.batchsize=3",
                                  f"hydra.run.dir={run_dir}"))
    assert line == "error: data.batchsize is not an option (did you mean data.batch_size?)"
    assert not run_dir.exists()
    line = one_error_line(run_cli("bnn_edge.memory", "extra=1"))
    assert line.startswith("error: extra is not an option")


def test_any_trainer_argument_is_accepted_without_a_plus(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("bnn_edge.train", *TINY, "data.n_trials=100", "trainer.max_steps=1",
                   "trainer.limit_train_batches=0.5", "trainer.gradient_clip_val=1",
                   f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stored = (run_dir / "config.yaml").read_text()
    assert "max_steps: 1" in stored and "gradient_clip_val: 1" in stored
    assert "limit_train_batches: 0.5" in stored
    assert precheck("train", ["trainer.max_steps=1", "-m", "aug=1,2"]) == [
        "+trainer.max_steps=1", "-m", "aug=1,2"]


def test_no_cloud_logger_advertisement(tmp_path):
    proc = run_cli("bnn_edge.train", *TINY, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Tip:" not in proc.stdout + proc.stderr
    assert "pypi.org/project/litlogger" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5"])
def test_seeds_outside_numpys_range_are_refused_before_the_run(seed, tmp_path):
    run_dir = tmp_path / "run"
    line = one_error_line(run_cli("bnn_edge.train", *TINY, f"seed={seed}",
                                  f"hydra.run.dir={run_dir}"))
    assert line == f"error: seed={seed} is not allowed: expected an integer in [0, 4294967295]"
    assert not run_dir.exists()


def test_output_places_that_are_files_are_refused(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cache = tmp_path / "cache_never_made"
    env = {"BNN_EDGE_CACHE": str(cache)}
    line = one_error_line(run_cli("bnn_edge.train", *TINY, f"hydra.run.dir={a_file}",
                                  env=env))
    assert line == (f"error: hydra.run.dir='{a_file}' is not allowed: expected a folder "
                    f"(this path is a file)")
    line = one_error_line(run_cli("bnn_edge.train", *TINY, "-m", "aug=1,2",
                                  f"hydra.sweep.dir={a_file}/sub", env=env))
    assert line == (f"error: hydra.sweep.dir='{a_file}/sub' is not allowed: expected a "
                    f"folder path ({a_file} is a file)")
    run_dir = tmp_path / "run"
    line = one_error_line(run_cli("bnn_edge.train", *TINY, f"data.cache_dir={a_file}",
                                  f"hydra.run.dir={run_dir}", env=env))
    assert line.startswith("error: data.cache_dir=") and "this path is a file" in line
    line = one_error_line(run_cli("bnn_edge.train", *TINY, "data.cache_dir=''",
                                  f"hydra.run.dir={run_dir}", env=env))
    assert line == ("error: data.cache_dir='' is not allowed: expected a folder path, or null "
                    "(the default cache)")
    assert not run_dir.exists() and not cache.exists()  # nothing generated
    line = one_error_line(run_cli("bnn_edge.report", str(tmp_path), f"out={a_file}"))
    assert line.startswith("error: out=") and "this path is a file" in line


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder this process cannot write in: mode 555, and for root (who may write there
    anyway) also the immutable attribute."""
    path = tmp_path / "locked"
    path.mkdir()
    path.chmod(0o555)
    immutable = hasattr(os, "geteuid") and os.geteuid() == 0
    if immutable and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("cannot make a folder read-only for root here (chattr +i)")
    yield path
    if immutable:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    path.chmod(0o755)


def test_read_only_folders_are_refused(read_only_dir, tmp_path):
    run_dir = read_only_dir / "run"
    line = one_error_line(run_cli("bnn_edge.train", *TINY, f"hydra.run.dir={run_dir}"))
    assert line == (f"error: hydra.run.dir='{run_dir}' is not allowed: expected a writable "
                    f"folder ({read_only_dir} is read-only)")
    line = one_error_line(run_cli("bnn_edge.train", *TINY, f"data.cache_dir={read_only_dir}",
                                  f"hydra.run.dir={tmp_path / 'run'}"))
    assert line.startswith(f"error: data.cache_dir='{read_only_dir}' is not allowed: expected "
                           f"a writable folder")
    line = one_error_line(run_cli("bnn_edge.report", str(tmp_path),
                                  f"out={read_only_dir / 'report'}"))
    assert "is read-only" in line
    assert list(read_only_dir.iterdir()) == [] and not (tmp_path / "run").exists()


def test_evaluate_device_must_be_a_mapping(tmp_path):
    from bnn_edge.experiment.robustness import settings_from_config
    from tests.helpers.runs import compose_app

    cfg = compose_app("evaluate", "ckpt_path=x", "bit_errors.device=5")
    with pytest.raises(ConfigError, match=r"^bit_errors\.device=5 is not allowed: expected a "
                                          r"mapping"):
        settings_from_config(cfg)


def ecg_parameters(aug: int) -> int:
    """Table II's parameter count at ``aug``, by hand: conv and FC weights and biases, and
    the batch norms' scale and shift (input, five convs, two FC layers)."""
    f = 32 * aug
    conv = 12 * 13 * f + f + sum(f * f * k + f for k in (11, 9, 7, 5))
    fc = 161 * f * 75 + 75 + 75 * 2 + 2
    norms = 2 * 12 + 5 * 2 * f + 2 * 75 + 2 * 2
    return conv + fc + norms


def test_memory_counts_any_aug_without_building_weights():
    """aug=5000 would need about 1.1 TB of weights; the count takes none."""
    report = memory_report("ecg", "classifier", aug=5000)
    assert report["total_params"] == ecg_parameters(5000) > 2.5e11
    assert memory_report("ecg", "classifier", aug=1)["total_params"] == ecg_parameters(1)


def test_memory_cli_uses_and_checks_num_classes():
    proc = run_cli("bnn_edge.memory", "model=ecg", "aug=5000", "format=json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["total_params"] == ecg_parameters(5000)
    line = one_error_line(run_cli("bnn_edge.memory", "model.num_classes=0"))
    assert line == "error: model.num_classes=0 is not allowed: expected an integer >= 2"
    five = json.loads(run_cli("bnn_edge.memory", "model.num_classes=5", "format=json").stdout)
    assert five["layers"][-1]["shape"] == [5] and five["layers"][-2]["shape"] == [5, 75]


def test_trainer_options_lightning_rejects_at_fit_are_one_line(tmp_path):
    proc = run_cli("bnn_edge.train", *TINY, "trainer.limit_train_batches=0.5",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]  # Lightning's INFO lines come first
    assert [x for x in proc.stderr.splitlines() if x.startswith("error:")] == [line]
    assert line.startswith("error: trainer: MisconfigurationException: You requested to check "
                           "0.5 of the `train_dataloader`")
