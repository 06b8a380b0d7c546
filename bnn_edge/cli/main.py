"""``bnn-edge <command> [options]``: one console command for every entry point.

``bnn-edge train model=ecg binarize=classifier aug=7`` is ``python -m bnn_edge.train ...``;
the commands are train, evaluate, memory, export, report and cost.
"""

from __future__ import annotations

import sys
import textwrap
from importlib import import_module

from bnn_edge.cli.app import closed_pipe_ends_quietly

ABOUT = """\
Binarized neural networks for biomedical signals, co-designed with in-memory RRAM
hardware: train the paper's ECG, EEG and MobileNet networks with real, binary-classifier
or fully binary weights, measure their accuracy under RRAM bit errors, count their memory,
energy and area on 2T2R arrays, export them for hardware, and report the paper's tables
and figures from the runs."""

COMMANDS = {
    "train": "train a network (model=, binarize=, aug=, data.*, trainer.*; -m: a sweep)",
    "evaluate": "accuracy of checkpoints under RRAM bit errors",
    "memory": "Table IV memory and the mapping onto 2T2R arrays",
    "export": "export binary layers (native, onnx, qonnx) with their test vectors",
    "report": "Table III and Fig. 7 from a folder of runs",
    "cost": "energy, latency and area of the in-memory implementation",
}


def version() -> str:
    """The installed distribution's version (the package's own when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("bnn_edge")
    except PackageNotFoundError:
        from bnn_edge import __version__

        return __version__


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: bnn-edge <command> [options]   (bnn-edge <command> --help)",
             "       bnn-edge --version", "", textwrap.fill(" ".join(ABOUT.split()), 80), "",
             "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in COMMANDS.items()]
    lines += ["", "Each command is also python -m bnn_edge.<command>."]
    return "\n".join(lines)


@closed_pipe_ends_quietly
def main(argv: list[str] | None = None) -> int | None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"bnn-edge {version()}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: {command!r} is not a bnn-edge command: expected one of "
              f"{', '.join(COMMANDS)} (or --help, --version)", file=sys.stderr)
        return 2
    sys.argv = [f"bnn-edge {command}", *rest]
    return import_module(f"bnn_edge.cli.{command}").main()


if __name__ == "__main__":
    raise SystemExit(main())
