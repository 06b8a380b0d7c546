"""``bnn-edge cost`` (``python -m bnn_edge.cost``): files, printed tables, checkpoints, and
one-line errors that leave nothing written."""

from __future__ import annotations

import csv
import json

import pytest

from bnn_edge.hardware.cost.params import HardwareParams
from bnn_edge.hardware.cost.report import si
from tests.conftest import run_cli, stderr_lines
from tests.helpers.cost import ecg_report, preset


@pytest.mark.parametrize("arg, line", [
    ("hardware.pcsa_read_energy_j=-1",
     "error: hardware.pcsa_read_energy_j=-1 is not allowed: expected a number > 0"),
    ("hardware.read_time_s=nan",
     "error: hardware.read_time_s=nan is not allowed: expected a finite number"),
    ("hardware.pcsa_energy=1e-15", "error: hardware.pcsa_energy='1e-15' is not allowed"),
    ("hardware=rram_1t1r", "error: hardware='rram_1t1r' is not allowed: expected one of "
                           "rram_2t2r_130nm, rram_2t2r_45nm"),
    ("real_precision=fp16", "error: real_precision='fp16' is not allowed: expected one of "
                            "fp32, int8"),
    ("hardware.r_on_ohm=1e7", "error: hardware.r_on_ohm=10000000.0 is not allowed: expected a "
                              "value below hardware.r_off_ohm=900000.0"),
    ("overwrite=maybe", "error: overwrite='maybe' is not allowed: expected true or false"),
    ("aug=20000000", "error: aug=20000000 is not allowed: expected a network whose tensors "
                     "take fewer than 2**63 bytes each"),
])
def test_cli_rejects_a_bad_parameter_in_one_line(arg, line, tmp_path):
    proc = run_cli("bnn_edge.cost", arg, f"out={tmp_path}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), proc.stderr


def test_cli_report_files_and_variants(tmp_path):
    proc = run_cli("bnn_edge.cost", "model=ecg", "binarize=classifier", "aug=1",
                   f"out={tmp_path}", "hardware.mac_units=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Parameter set: rram_2t2r_130nm" in out
    for word in ("literature", "simulator default", "assumption", "command line", "derived"):
        assert word in out.lower()
    stem = tmp_path / "cost_ecg_aug1"  # the comparison holds the three variants
    with open(f"{stem}_variants.csv") as f:
        variants = list(csv.DictReader(f))
    assert len(variants) == 12
    by = {(v["binarize"], v["real_precision"], v["real_memory"]): v for v in variants}
    assert int(by["classifier", "fp32", "sram"]["arrays"]) == 486
    assert float(by["none", "fp32", "dram"]["energy_binary_j"]) == 0
    # real weights in DRAM cost more than in SRAM, fp32 more than int8
    energy = {key: float(v["energy_j"]) for key, v in by.items()}
    assert energy["none", "fp32", "dram"] > energy["none", "fp32", "sram"] > \
        energy["none", "int8", "sram"]
    with open(tmp_path / "cost_ecg_classifier_aug1_layers.csv") as f:
        layers = list(csv.DictReader(f))
    assert [r["kind"] for r in layers] == ["real"] * 5 + ["binary"] * 2
    with open(f"{stem}_variants.png", "rb") as f:
        png = f.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    js = run_cli("bnn_edge.cost", "model=eeg", "binarize=full",
                 f"out={tmp_path / 'eeg'}", "format=json", "hardware=rram_2t2r_45nm")
    assert js.returncode == 0, js.stderr[-3000:]
    report = json.loads(js.stdout)
    assert report["hardware"]["name"] == "rram_2t2r_45nm"
    assert report["totals"]["energy_j"] == pytest.approx(sum(r["energy_j"]
                                                             for r in report["layers"]))
    assert report["derived"]["pcsa_read_energy_j"] == pytest.approx(0.25 * (1 / 6e3 + 1 / 9e5)
                                                                    * 1e-8)


def test_the_command_is_bnn_edge_cost_like_the_others(tmp_path):
    """python -m bnn_edge.cost is the command and bnn-edge cost the same; the hardware layer
    is not a command (it would make hardware run cli)."""
    now = run_cli("bnn_edge.cost", "model=eeg", f"out={tmp_path / 'a'}", "format=json")
    same = run_cli("bnn_edge.cli.main", "cost", "model=eeg", f"out={tmp_path / 'b'}",
                   "format=json")
    assert now.returncode == same.returncode == 0, now.stderr + same.stderr
    a, b = json.loads(now.stdout), json.loads(same.stdout)
    assert a.pop("files") != b.pop("files") and a == b


@pytest.mark.parametrize("columns", [None, "80"])
def test_printed_tables_fit_the_terminal_and_fold_rather_than_cut(columns, tmp_path):
    """In 100 columns the tables cut values ("17… uJ"); now they fit 100 columns (the
    width of a log) whole, and in 80 they fold."""
    proc = run_cli("bnn_edge.cost", "model=ecg", "binarize=classifier", f"out={tmp_path}",
                   env={"COLUMNS": columns} if columns else {"COLUMNS": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    width = int(columns or 100)
    lines = proc.stdout.splitlines()
    assert "…" not in proc.stdout and max(map(len, lines)) <= width
    if columns is None:  # every value whole on its line
        report = ecg_report(HardwareParams.from_mapping(preset()))
        rows = [line.split() for line in lines]
        for v in report["variants"]:
            words = [v["binarize"], v["real_precision"], v["real_memory"], f"{v['arrays']:,}",
                     *si(v["energy_binary_j"], "J").split(),
                     *si(v["energy_real_j"], "J").split(), *si(v["energy_j"], "J").split()]
            assert words in [r[:len(words)] for r in rows], words
        for layer in report["layers"]:
            assert [layer["name"], layer["kind"], *si(layer["energy_j"], "J").split()] == [
                r[:2] + r[4:6] for r in rows if r[:1] == [layer["name"]]][1]


def test_cli_from_a_checkpoint(ecg_checkpoint, tmp_path):
    """The checkpoint decides; options that agree with it may be given."""
    proc = run_cli("bnn_edge.cost", f"ckpt_path={ecg_checkpoint}", f"out={tmp_path}",
                   "format=json", "model=ecg", "binarize=classifier", "aug=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert (report["model"], report["binarize"], report["aug"]) == ("ecg", "classifier", 1)
    assert report["checkpoint"] == str(ecg_checkpoint.resolve())
    assert report["totals"]["arrays"] == 486


def test_cli_refuses_options_that_contradict_the_checkpoint(ecg_checkpoint, tmp_path):
    """model=/binarize=/aug= that disagree with the checkpoint used to be ignored silently."""
    out = tmp_path / "out"
    proc = run_cli("bnn_edge.cost", f"ckpt_path={ecg_checkpoint}", f"out={out}",
                   "model=eeg", "binarize=none", "aug=1")
    assert proc.returncode == 2
    lines = stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(
        f"error: model=eeg, binarize=none on the command line contradict "
        f"ckpt_path={ecg_checkpoint}, a checkpoint of ecg binarize=classifier aug=1 "), proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("arg, named", [
    ("hardware.pcsa_read_energy_j=1e308", "hardware.pcsa_read_energy_j=1e+308"),
    ("hardware.read_time_s=1e300", "hardware.read_time_s=1e+300"),
])
def test_cli_stops_on_an_overflow_before_writing(tmp_path, arg, named):
    """An energy of 1e308 used to write inf into the CSVs (exit 0), a read time of 1e300 to
    end in a traceback in the chart after writing the CSVs."""
    out = tmp_path / "out"
    proc = run_cli("bnn_edge.cost", "model=ecg", arg, f"out={out}")
    assert proc.returncode == 2
    lines = stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(f"error: {named} is not allowed"), \
        proc.stderr
    assert not out.exists()


def test_cli_refuses_a_folder_with_files_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = run_cli("bnn_edge.cost", "model=ecg", f"out={out}", "format=markdown")
    assert proc.returncode == 2
    assert stderr_lines(proc) == [
        f"error: out='{out}' is not allowed: expected an empty or new folder (it holds files; "
        f"overwrite=true replaces the cost report's files in it)"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    stale = out / "cost_ecg_aug1_variants.csv"
    stale.write_text("old")
    proc = run_cli("bnn_edge.cost", "model=ecg", f"out={out}", "format=markdown",
                   "overwrite=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "cost_ecg_aug1_variants.csv", "cost_ecg_aug1_variants.png",
        "cost_ecg_classifier_aug1_layers.csv", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    with open(stale) as f:
        assert len(list(csv.DictReader(f))) == 12
