"""evaluate picks its engine: packed wherever it prints torch's table, else torch and why."""

from __future__ import annotations

import re

import pytest
import torch

from bnn_edge.experiment.robustness import (
    auto_engine,
    evaluate,
    plan_curves,
    settings_from_config,
)
from bnn_edge.experiment.rundir import RunDir
from bnn_edge.hardware.packed import kernels
from tests.helpers.runs import compose_app, train_tiny_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir) -> dict:
    """Tiny ECG runs (one epoch, 40 trials) with a binary classifier and with real weights."""
    import os

    os.environ["BNN_EDGE_CACHE"] = str(cache_dir)
    out = {}
    for binarize in ("classifier", "none"):
        out[binarize] = tmp_path_factory.mktemp(f"run_{binarize}")
        train_tiny_run(out[binarize], f"binarize={binarize}", "data.batch_size=3")
    return out


def run_evaluate(tmp_path, name: str, *overrides: str) -> tuple[list[str], str]:
    """(the lines evaluate echoed, its ber_curve.csv)."""
    lines: list[str] = []
    cfg = compose_app("evaluate", "bit_errors.ber=[0,0.01,0.3]", "bit_errors.draws=3",
                      *overrides, f"paths.output_dir={tmp_path / name}")
    evaluate(cfg, echo=lines.append)
    return lines, (tmp_path / name / "ber_curve.csv").read_text()


def test_the_default_engine_is_packed_where_it_gives_torchs_table(runs, tmp_path, capsys):
    """engine=torch was the default although engine=packed prints the same table."""
    auto, auto_csv = run_evaluate(tmp_path, "auto", f"ckpt_path={runs['classifier']}")
    sweep = capsys.readouterr().out
    torch_lines, torch_csv = run_evaluate(tmp_path, "torch", f"ckpt_path={runs['classifier']}",
                                          "engine=torch")
    (evaluating,) = [line for line in auto if line.startswith("Evaluating")]
    assert evaluating.endswith(f"with the packed engine ({kernels.isa()})")
    assert not any(line.startswith("engine=auto") for line in auto)
    table = next(line for line in auto if line.startswith("variant"))
    assert table == next(line for line in torch_lines if line.startswith("variant"))
    assert auto_csv == torch_csv and len(auto_csv.splitlines()) == 4
    # progress of the 7 passes (1 at rate 0, 3 draws at each other rate)
    assert re.search(r"^ {2}7 fault draws \.\.\.\n {2}7 fault draws: done in \d+ s$", sweep,
                     re.M)


@pytest.mark.parametrize(("run", "overrides", "why"), [
    ("classifier", ["bit_errors.real_format=[none,int8]"],
     "engine=auto: torch with bit_errors.real_format=int8: the packed engine keeps real "
     "weights exact (bit_errors.real_format=none)"),
    ("none", ["bit_errors.real_format=int8"],
     "engine=auto: torch for {ckpt}: it has no binary layers (binarize=none), the packed "
     "engine runs those"),
])
def test_the_default_falls_back_to_torch_with_one_line(runs, tmp_path, run, overrides, why):
    lines, _ = run_evaluate(tmp_path, run, f"ckpt_path={runs[run]}", *overrides)
    ckpt = RunDir.find_checkpoint(runs[run])
    assert [line for line in lines if line.startswith("engine=")] == [why.format(ckpt=ckpt)]
    evaluating = [line for line in lines if line.startswith("Evaluating")]
    assert evaluating and not any("packed engine" in line for line in evaluating)


def test_a_cuda_device_keeps_torch(runs):
    cfg = compose_app("evaluate", f"ckpt_path={runs['classifier']}", "paths.output_dir=x")
    settings = settings_from_config(cfg)
    plans = plan_curves([RunDir.find_checkpoint(runs["classifier"])], settings, "test")
    assert auto_engine(plans, settings, torch.device("cpu")) == ("packed", None)
    assert auto_engine(plans, settings, torch.device("cuda")) == (
        "torch", "engine=auto: torch on cuda (the packed engine runs on the CPU; device=cpu "
                 "for it)")


def test_a_sweep_of_another_fault_shows_the_operating_point_draws_too(runs, tmp_path, capsys):
    """A stuck-device sweep also evaluates read errors alone at the 1T1R/2T2R operating
    points (2 points x 3 draws); those ran without progress after the sweep's closing line."""
    lines: list[str] = []
    evaluate(compose_app("evaluate", f"ckpt_path={runs['classifier']}", "bit_errors.draws=3",
                         "fault_model=stuck", "bit_errors.fault_model.fraction=[0,0.1]",
                         f"paths.output_dir={tmp_path / 'stuck'}"), echo=lines.append)
    out = capsys.readouterr().out
    assert re.search(r"^ {2}4 fault draws: done in \d+ s\n {2}6 draws of read errors at the "
                     r"1T1R/2T2R operating points \.\.\.\n {2}6 draws of read errors at the "
                     r"1T1R/2T2R operating points: done in \d+ s$", out, re.M), out
    assert any(re.match(r"variant +fraction +draws", line) for line in lines), lines
