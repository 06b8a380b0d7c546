"""Commands that explain themselves: --help, --version, a closed pipe, make run ARGS=.

Every command's ``--help`` says what it does and lists the options of its configuration
with their defaults (not Hydra's generic page), without importing torch; ``bnn-edge
--version`` answers; ``... | head`` ends without a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version

import pytest
from omegaconf import OmegaConf

from bnn_edge.cli.app import app_groups
from bnn_edge.cli.help import command_help, shown
from bnn_edge.cli.main import COMMANDS
from tests.conftest import ROOT, run_cli
from tests.helpers.runs import compose_app


def help_of(command: str) -> subprocess.CompletedProcess:
    """``python -X importtime -m bnn_edge.<command> --help``: the imports go to stderr."""
    return subprocess.run([sys.executable, "-X", "importtime", "-m", f"bnn_edge.{command}",
                           "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)


def imported(proc) -> set[str]:
    """The modules a ``-X importtime`` run imported."""
    return {line.rpartition("|")[2].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "report"])
def test_every_hydra_command_says_what_it_does_and_lists_its_options(command):
    proc = help_of(command)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    assert "torch" not in imported(proc) and "lightning" not in imported(proc)
    assert "Powered by Hydra" not in text and "== Configuration groups ==" not in text
    assert text.startswith(f"usage: bnn-edge {command} ")
    about = " ".join(__import__(f"bnn_edge.cli.{command}", fromlist=["ABOUT"]).ABOUT.split())
    assert about[:60] in " ".join(text.split())
    body = OmegaConf.to_container(compose_app(command), resolve=False)
    groups = app_groups(command)
    for key, value in body.items():
        if key in groups:
            continue
        if isinstance(value, dict):  # nested options, one line each
            assert re.search(rf"^ +{key}\.", text, re.M) or all(
                isinstance(v, dict) and "_target_" in v for v in value.values()), key
        else:  # the option with its default
            assert re.search(rf"^  {re.escape(key)}={re.escape(shown(value))}( |$)", text,
                             re.M), key
    for group in groups:  # each group with its choice and what it can be
        assert re.search(rf"^  {group}=\S+ +one of ", text, re.M), group
    if command in ("memory", "export", "cost"):  # not the groups they refuse
        assert not re.search(r"^ +(logger|trainer|callbacks)[=.]", text, re.M)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text == command_help(command)  # what docs/commands.md shows


def test_report_help_lists_its_options_without_backticks():
    from bnn_edge.cli.report import OPTIONS
    from bnn_edge.experiment.claims import MARGIN

    proc = help_of("report")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch" not in imported(proc)
    text = proc.stdout
    assert "``" not in text and text.startswith("usage: bnn-edge report DIR")
    assert "Table III and Fig. 7 of the paper from a folder of training runs" in text
    for name, (default, _) in OPTIONS.items():
        line = name if name == "DIR" else f"{name}={default}"
        assert re.search(rf"^  {re.escape(line)} ", text, re.M), name
    assert OPTIONS["margin"][0] == f"{MARGIN:g}"


def test_help_shows_the_options_a_choice_selects():
    ecg, eeg = command_help("train"), help_of_overrides("train", "model=eeg")
    assert "data.n_trials=1000" in ecg and "data.n_trials" not in eeg
    assert re.search(r"^  model=eeg ", eeg, re.M) and "data.subjects=" in eeg
    bad = run_cli("bnn_edge.memory", "model=cat", "--help")
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("error: model='cat' is not allowed: expected one of ecg, "
                                  "eeg, mobilenet")


def help_of_overrides(command: str, *overrides: str) -> str:
    proc = run_cli(f"bnn_edge.{command}", *overrides, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_bnn_edge_version_and_help():
    proc = run_cli("bnn_edge.cli.main", "--version")
    assert (proc.returncode, proc.stdout) == (0, f"bnn-edge {version('bnn_edge')}\n")
    proc = run_cli("bnn_edge.cli.main", "--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert re.search(rf"^  {command} +\S", proc.stdout, re.M)
    assert run_cli("bnn_edge.cli.main", "memory", "--help").stdout == command_help("memory")
    proc = run_cli("bnn_edge.cli.main", "--versoin")
    assert proc.returncode == 2 and proc.stderr.startswith("error: '--versoin' is not a")


@pytest.mark.parametrize("args", [["bnn_edge.memory", "format=json"],
                                  ["bnn_edge.memory"],
                                  ["bnn_edge.train", "--help"],
                                  ["bnn_edge.cli.main", "--help"],
                                  ["bnn_edge.report", "--help"]])
def test_a_closed_pipe_ends_a_command_without_a_traceback(args):
    """``memory format=json | head`` ended in a BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert err == ""


def test_make_run_passes_args():
    # run under `make test` too: the outer make's variables would add "Leaving directory"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    proc = subprocess.run(["make", "--no-print-directory", "-n", "run",
                           "ARGS=trainer.max_epochs=1 seed=3"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].endswith(
        "-m bnn_edge.train model=ecg binarize=classifier aug=7 trainer.max_epochs=1 seed=3")
