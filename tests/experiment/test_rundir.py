"""A run folder is untrusted input: nothing read from it is called, interpolated or unpickled.

Every attack below tries to make a reader (evaluate, export, the report) call a function
named in the folder; the function would create a marker file, which must never appear.
The refused folder gets one ``error:`` line naming the file and the offending key.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from bnn_edge.errors import DataError, RunLocked
from bnn_edge.experiment.rundir import (
    RunDir,
    check_results,
    load_module,
    option_differences,
    read_checkpoint,
)
from tests.conftest import ROOT, run_cli
from tests.helpers.runs import copy_run, train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory, cache_dir) -> Path:
    """One tiny trained ECG run (binarized classifier) for every test to copy."""
    path = tmp_path_factory.mktemp("trusted") / "run"
    train_tiny_run(path, "binarize=classifier", f"data.cache_dir={cache_dir}")
    return path


def tamper(run: Path, dest: Path, edit) -> Path:
    """A copy of ``run`` whose config.yaml went through ``edit(config_dict)``."""
    copy = copy_run(run, dest)
    cfg = yaml.safe_load((copy / "config.yaml").read_text())
    edit(cfg)
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    return copy


def touch_target(marker: Path) -> dict:
    return {"_target_": "pathlib.Path.touch", "self": str(marker)}


ATTACKS = {
    # the data module replaced by any callable
    "top_level_target": lambda cfg, m: cfg.update(data=touch_target(m)),
    # the real data module kept, a callable nested in one of its options (Hydra is recursive)
    "nested_target": lambda cfg, m: cfg["data"].update(cache_dir=touch_target(m)),
    # a dotted path that starts like a data module but names numpy's save through it
    "prefix_lookalike": lambda cfg, m: cfg.update(data={
        "_target_": "bnn_edge.data.ecg.np.save", "file": str(m), "arr": [1, 2]}),
    "partial": lambda cfg, m: cfg["data"].update(_partial_=True),
    "args": lambda cfg, m: cfg["data"].update(_args_=[str(m)]),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_readers_refuse_a_folder_that_names_functions(attack, run, tmp_path):
    marker = tmp_path / "PWNED"
    bad = tamper(run, tmp_path / "bad", lambda cfg: ATTACKS[attack](cfg, marker))
    with pytest.raises(DataError, match=rf"^{bad / 'config.yaml'}: data"):
        RunDir(bad).datamodule()
    with pytest.raises(DataError):
        RunDir(bad).data_config()
    assert not marker.exists()


def test_interpolations_are_refused_and_never_resolved(run, tmp_path, monkeypatch):
    monkeypatch.setenv("BNN_EDGE_TEST_SECRET", "s3cr3t-value")
    bad = tamper(run, tmp_path / "bad",
                 lambda cfg: cfg["data"].update(root="${oc.env:BNN_EDGE_TEST_SECRET}"))
    with pytest.raises(DataError, match=r"data\.root='\$\{oc\.env:BNN_EDGE_TEST_SECRET\}' is an "
                                        r"interpolation") as info:
        RunDir(bad).datamodule()
    assert "s3cr3t" not in str(info.value)


@pytest.mark.parametrize("app", ["evaluate", "export"])
def test_commands_refuse_tampered_folders_in_one_line(app, run, tmp_path):
    """The two readers end with exit 2 and one line naming the file and the key; the
    marker is not created, and nothing else is (no evaluate output folder, no export)."""
    for attack in ("top_level_target", "nested_target"):
        marker = tmp_path / f"PWNED_{attack}"
        bad = tamper(run, tmp_path / f"bad_{attack}", lambda cfg, a=attack, m=marker:
                     ATTACKS[a](cfg, m))
        ckpt = bad / "checkpoints" / "last.ckpt"
        out = tmp_path / f"out_{app}_{attack}"
        args = ([f"ckpt_path={ckpt}", f"hydra.run.dir={out}", "bit_errors.draws=1"]
                if app == "evaluate" else [f"ckpt_path={ckpt}", f"out={out}"])
        proc = run_cli(f"bnn_edge.{app}", *args)
        assert proc.returncode == 2, proc.stderr[-2000:]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {bad / 'config.yaml'}: data")
        key = "data._target_" if attack == "top_level_target" else "data.cache_dir._target_"
        assert key in lines[0]
        assert not marker.exists()
        assert not out.exists()


@pytest.mark.parametrize(("text", "message"), [
    ("data: [1, 2\n", r"not valid YAML \(line 2\)"),
    ("- a\n- b\n", r"the top level is a list, expected a mapping"),
    ("model: {name: ecg}\n", r"data is missing"),
    ("data: null\n", r"data is empty, expected the data module's options"),
    ("data: !!python/object/apply:os.system ['touch PWNED']\n", r"not valid YAML"),
    ("a: &x [*x]\ndata: {}\n", r"a\[0\] refers back to itself"),
])
def test_malformed_run_configs_are_named(text, message, run, tmp_path):
    bad = copy_run(run, tmp_path / "bad")
    (bad / "config.yaml").write_text(text)
    with pytest.raises(DataError, match=rf"^{bad / 'config.yaml'}: {message}"):
        RunDir(bad).datamodule()


def test_malformed_run_config_is_one_line_in_both_readers(run, tmp_path):
    bad = copy_run(run, tmp_path / "bad")
    (bad / "config.yaml").write_text("- not\n- a mapping\n")
    ckpt = bad / "checkpoints" / "last.ckpt"
    for app, args in (("evaluate", [f"hydra.run.dir={tmp_path / 'ev'}"]),
                      ("export", [f"out={tmp_path / 'ex'}"])):
        proc = run_cli(f"bnn_edge.{app}", f"ckpt_path={ckpt}", *args)
        assert proc.returncode == 2
        assert proc.stderr.strip() == (f"error: {bad / 'config.yaml'}: the top level is a "
                                       f"list, expected a mapping")


def test_the_trusted_folder_rebuilds_its_data(run):
    dm = RunDir(run).datamodule()
    dm.setup("test")
    assert len(dm.test_dataloader().dataset) == 8
    assert dm.num_workers == 0  # the stored option is not used by readers


def evil_checkpoint(run: Path, dest: Path, edit) -> Path:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, dest)
    return dest


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c["hyper_parameters"].update(_instantiator="os.system"),
     r"hyper_parameters\._instantiator is not an argument of BNNClassifier"),
    (lambda c: c["hyper_parameters"].update(network={"_target_": "os.system"}),
     r"hyper_parameters\.network\._target_ is not allowed here"),
    (lambda c: c["hyper_parameters"].update(extra=1),
     r"hyper_parameters\.extra is not an argument of BNNClassifier"),
    (lambda c: c["hyper_parameters"].update(aug=5000),
     r"its weights do not fit its hyper-parameters \(ecg binarize=classifier aug=5000 "
     r"num_classes=2\): .* of another shape"),
    (lambda c: c["hyper_parameters"].update(network="resnet"),
     r"hyper-parameters resnet binarize=classifier .* are not valid"),
    (lambda c: c.pop("hyper_parameters"), r"no hyper_parameters"),
])
def test_checkpoint_hyper_parameters_are_checked(edit, message, run, tmp_path):
    bad = evil_checkpoint(run, tmp_path / "bad.ckpt", edit)
    with pytest.raises(DataError, match=rf"^{bad}: .*{message}"):
        load_module(bad)


def test_weights_that_do_not_fit_are_one_line_in_evaluate(run, tmp_path):
    """Hyper-parameters saying aug=2 while the weights are those of aug=1."""
    bad_run = copy_run(run, tmp_path / "bad")
    ckpt = bad_run / "checkpoints" / "last.ckpt"
    evil_checkpoint(run, ckpt, lambda c: c["hyper_parameters"].update(aug=2))
    proc = run_cli("bnn_edge.evaluate", f"ckpt_path={ckpt}",
                   f"hydra.run.dir={tmp_path / 'ev'}")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {ckpt}: its weights do not fit its hyper-parameters "
                           f"(ecg binarize=classifier aug=2 num_classes=2)")


def test_empty_and_foreign_files_are_not_checkpoints(tmp_path):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=rf"^{empty}: an empty file"):
        read_checkpoint(empty)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(DataError, match=rf"^{foreign}: not a bnn_edge checkpoint \(no "
                                        r"state_dict\)"):
        read_checkpoint(foreign)


@pytest.mark.parametrize(("results", "message"), [
    ({"model": "ecg", "binarize": "quarter", "aug": 1, "val_acc": 0.5},
     r"binarize='quarter', expected one of none, classifier, full"),
    ({"model": "ecg", "binarize": "full", "aug": "seven", "val_acc": 0.5},
     r"aug='seven', expected an integer >= 1"),
    ({"binarize": "full", "aug": 1, "val_acc": 0.5}, r"model is missing"),
    ({"model": "ecg", "binarize": "full", "aug": 1, "val_acc": "high"},
     r"val_acc='high', expected a number in \[0, 1\] or null"),
    ({"model": "ecg", "binarize": "full", "aug": 1, "val_acc": 1.5},
     r"val_acc=1.5, expected a number in \[0, 1\]"),
    ({"status": "weird"}, r"status='weird', expected done or failed"),
])
def test_results_are_checked_field_by_field(results, message, tmp_path):
    with pytest.raises(DataError, match=rf"^{tmp_path}: {message}"):
        check_results(results, tmp_path)


def test_status_of_malformed_results_is_unreadable(run, tmp_path):
    copy = copy_run(run, tmp_path / "copy")
    assert RunDir(copy).status()[0] == "done"
    for text in ("[1, 2]", "{not json", json.dumps({"model": "ecg"})):
        (copy / "results.json").write_text(text)
        status, _, reason = RunDir(copy).status()
        assert status == "unreadable" and reason.startswith(str(copy / "results.json"))
    (copy / "results.json").write_bytes(b"\xff\xfe\x00binary")
    assert RunDir(copy).status()[0] == "unreadable"


def test_option_differences_leave_out_what_may_change():
    stored = {"model": {"name": "ecg"}, "aug": 1, "trainer": {"max_epochs": 10},
              "paths": {"output_dir": "/a"}, "data": {"num_workers": 0, "fold": 0}}
    current = {"model": {"name": "eeg"}, "aug": 1, "trainer": {"max_epochs": 20},
               "paths": {"output_dir": "/b"}, "data": {"num_workers": 4, "fold": 1}}
    assert option_differences(stored, current) == ["model.name='ecg' (now 'eeg')",
                                                   "data.fold=0 (now 1)"]


def test_a_fault_model_stored_by_name_is_the_same_option_as_its_mapping():
    """Runs written before the fault_model group stored ``bit_errors.fault_model: bitflip``;
    they resume under the group's ``{name: bitflip}``, and another model is a difference."""
    old = {"bit_errors": {"fault_model": "bitflip", "train_ber": 0.01}}
    assert option_differences(old, {"bit_errors": {"fault_model": {"name": "bitflip"},
                                                   "train_ber": 0.01}}) == []
    assert option_differences(old, {"bit_errors": {"fault_model": {
        "name": "stuck", "fraction": 0.1}, "train_ber": 0.01}}) == [
        "bit_errors.fault_model.fraction='<absent>' (now 0.1)",
        "bit_errors.fault_model.name='bitflip' (now 'stuck')"]


#: a process that takes a run folder's lock, says so, and holds it until its stdin closes
HOLD = ("import sys; from bnn_edge.experiment.rundir import RunDir; "
        "RunDir(sys.argv[1]).lock(); print('locked', flush=True); sys.stdin.read()")


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path):
    """One holder at a time; the next learns who (pid, host, user, since, command); the OS
    drops a killed holder's lock, and its stale lock file is no obstacle."""
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(RunLocked) as refused:
            RunDir(folder).lock()
        record = json.loads((folder / ".lock").read_text())
        assert record["pid"] == holder.pid and record["host"] == socket.gethostname()
        assert "RunDir(sys.argv[1]).lock()" in record["command"]
        message = str(refused.value)
        assert message.startswith(f"run folder {folder} is in use by pid {holder.pid} on "
                                  f"{record['host']} (user {record['user']}) since "
                                  f"{record['since']}: ")
        assert "\n" not in message and message.endswith("wait for it to end or stop it")
    finally:
        holder.kill()
        holder.wait()
    run = RunDir(folder)
    assert run.lock_file.exists() and run.lock() is True
    assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()
    assert run.lock() is False  # held already: a nested train() of this process goes on
    with run.locked():
        pass
    assert run.lock_file.exists()  # the block did not take it, so it did not give it back
    run.release()
    assert not run.lock_file.exists() and folder.is_dir()


def test_a_lock_takes_back_the_folder_it_made_and_other_ranks_take_none(tmp_path,
                                                                          monkeypatch, capsys):
    folder = tmp_path / "new" / "run"
    with RunDir(folder).locked():
        assert (folder / ".lock").is_file()
    assert not folder.exists()
    monkeypatch.setenv("LOCAL_RANK", "1")  # a DDP process works under rank 0's lock
    assert RunDir(folder).lock() is False and not folder.exists()
    monkeypatch.delenv("LOCAL_RANK")

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)  # a file system without locks: train
    assert RunDir(folder).lock() is False
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"warning: {folder / '.lock'}: cannot lock it (")
