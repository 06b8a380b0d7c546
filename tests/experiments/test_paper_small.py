"""experiments/paper_small.sh: its sizes are checked before anything runs, and a sweep that
does not finish stops the script with the sweep's exit status."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, stderr_lines

SCRIPT = ROOT / "experiments" / "paper_small.sh"


def run_script(out, **variables: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PY": sys.executable, **variables}
    return subprocess.run(["bash", str(SCRIPT), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(("variables", "line"), [
    ({"ECG_AUGS": "0"}, "ECG_AUGS='0' is not allowed: expected comma-separated integers >= 1 "
                        "with 1 among them (the bit errors are of aug 1), e.g. 1,2,4"),
    ({"ECG_AUGS": "2,4"}, "ECG_AUGS='2,4' is not allowed"),
    ({"EEG_AUGS": "1,x"}, "EEG_AUGS='1,x' is not allowed: expected comma-separated integers "
                          ">= 1, e.g. 1"),
    ({"FOLDS": "9"}, "FOLDS='9' is not allowed: expected comma-separated folds from 0 to 4 "
                     "(data.folds=5), e.g. 0,1,2"),
    ({"FOLDS": "0,5", "SWEEP_OPTIONS": "data.folds=3"}, "FOLDS='0,5' is not allowed: "
                                                         "expected comma-separated folds from "
                                                         "0 to 2 (data.folds=3)"),
    ({"DRAWS": "ten"}, "DRAWS='ten' is not allowed: expected an integer >= 1"),
    ({"ECG_SEEDS": "100,-1"}, "ECG_SEEDS='100,-1' is not allowed: expected comma-separated "
                              "integer seeds, e.g. 100,101"),
    ({"EEG_SEEDS": "1e2"}, "EEG_SEEDS='1e2' is not allowed"),
    ({"ECG_EPOCHS": "0"}, "ECG_EPOCHS='0' is not allowed: expected an integer >= 1"),
    ({"EEG_EPOCHS": "1.5"}, "EEG_EPOCHS='1.5' is not allowed: expected an integer >= 1"),
])
def test_bad_sizes_stop_before_anything_runs(tmp_path, variables, line):
    out = tmp_path / "out"
    proc = run_script(out, PY="false", **variables)  # reaching Python would exit 1
    assert proc.returncode == 2, proc.stderr
    (error,) = stderr_lines(proc)
    assert error.startswith(f"error: {line}"), error
    assert proc.stdout == "" and not out.exists()


def test_a_sweep_that_fails_stops_the_script_with_its_status(tmp_path):
    # every ECG job fails at once (Lightning refuses the precision), after the checks
    out = tmp_path / "out"
    proc = run_script(out, ECG_AUGS="1", FOLDS="0", ECG_SEEDS="100",
                      SWEEP_OPTIONS="trainer.precision=7")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: paper_small: the ECG sweep did not finish (exit status 1); nothing after it "
        "was run")
    assert "3 of 3 jobs did not finish" in proc.stderr
    assert "EEG:" not in proc.stdout and not (out / "eeg").exists()
    assert not (out / "bit_errors").exists()
