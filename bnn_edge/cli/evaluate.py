"""``python -m bnn_edge.evaluate ckpt_path=PATH``: :data:`ABOUT`."""

from __future__ import annotations

from omegaconf import DictConfig

from bnn_edge.cli.app import fail, run_app
from bnn_edge.cli.help import app_help
from bnn_edge.errors import BnnEdgeError

ABOUT = """\
Accuracy of trained checkpoints under RRAM bit errors. Each checkpoint (or run folder: its
best checkpoint) is evaluated on its run's test split (split=val: its validation fold) at
every error rate of bit_errors.ber, or at the device model's rate for bit_errors.cell after
each of bit_errors.cycles, over bit_errors.draws Monte-Carlo fault draws (one at rate 0).
Other faults come from the fault_model group (stuck devices, failed array columns and rows
with spares, asymmetric errors, retention, 1T1R with a Hamming code): the numeric parameter
given as a list (bit_errors.fault_model.fraction=[0,0.01,0.1]) is swept instead, with the
accuracy under read errors alone at the 1T1R/2T2R operating points for comparison.
It prints a table (rate or value, mean and spread of the accuracy over draws) and writes
ber_curve.csv and ber_curve.png (1T1R and 2T2R operating points marked) into
logs/evaluate/runs/<time>/.

engine=auto runs the binary layers as packed bits on the XNOR-popcount engine wherever
that gives the same table as PyTorch (real weights kept exact, on the CPU), else PyTorch,
saying why in one line."""
#: what the command line holds, for the usage line
ARGS = "ckpt_path=PATH [option=value ...]"


def _main(cfg: DictConfig) -> None:
    from bnn_edge.experiment.robustness import evaluate

    try:
        evaluate(cfg)
    except BnnEdgeError as e:
        fail(e, cfg.paths.output_dir)


def main() -> None:
    run_app("evaluate", _main, ABOUT, ARGS, render_help=app_help)


if __name__ == "__main__":
    main()
