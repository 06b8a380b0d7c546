"""``bnn-edge <command> [options]``: one console command for every entry point.

``bnn-edge train model=ecg binarize=classifier aug=7`` is ``python -m bnn_edge.train ...``;
the commands are train, evaluate, memory, export, report and cost.
"""

from __future__ import annotations

import sys
from importlib import import_module

COMMANDS = {
    "train": "train a model (Hydra options: model=, binarize=, aug=, data.*, trainer.*)",
    "evaluate": "accuracy of checkpoints under RRAM bit errors",
    "memory": "Table IV memory and the mapping onto 2T2R arrays",
    "export": "export binary layers (native, onnx, qonnx)",
    "report": "Table III and Fig. 7 from a folder of runs",
    "cost": "energy, latency and area of the in-memory implementation",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: bnn-edge <command> [options]   (bnn-edge <command> --help)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int | None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: {command!r} is not a bnn-edge command: expected one of "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    sys.argv = [f"bnn-edge {command}", *rest]
    return import_module(f"bnn_edge.cli.{command}").main()


if __name__ == "__main__":
    raise SystemExit(main())
