"""Long steps are never silent: a line when they start and one when they end outside a terminal."""

from __future__ import annotations

import re

from bnn_edge.data.ecg.sources.synthetic import generate_deepfake_ecgs
from bnn_edge.progress import steps, track


def test_track_outside_a_terminal_prints_a_line_at_the_start_and_at_the_end(capsys):
    seen = []
    for item in track([3, 1, 2], "Reading 3 things", total=3):
        seen.append((item, capsys.readouterr().out))
    assert [s[0] for s in seen] == [3, 1, 2]
    assert seen[0][1] == "Reading 3 things ...\n" and seen[1][1] == seen[2][1] == ""
    assert re.fullmatch(r"Reading 3 things: done in \d+ s\n", capsys.readouterr().out)
    assert list(track(range(4), "quiet", show=False)) == [0, 1, 2, 3]
    assert capsys.readouterr().out == ""


def test_steps_closes_with_its_line_however_many_steps_were_called(capsys):
    with steps("  5 fault draws", 5) as step:
        assert capsys.readouterr().out == "  5 fault draws ...\n"
        for _ in range(3):
            step()
        assert capsys.readouterr().out == ""
    assert re.fullmatch(r" {2}5 fault draws: done in \d+ s\n", capsys.readouterr().out)


def test_generating_synthetic_ecgs_says_so(capsys):
    """26 s of generation used to print nothing outside a terminal."""
    ecgs = generate_deepfake_ecgs(3, seed=1, batch_size=2)
    assert ecgs.shape == (3, 12, 5000)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Generating 3 synthetic ECGs (deepfake-ecg GAN) ..."
    assert re.fullmatch(r"Generating 3 synthetic ECGs \(deepfake-ecg GAN\): done in \d+ s",
                        lines[1]) and len(lines) == 2
