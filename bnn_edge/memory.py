"""``python -m bnn_edge.memory``: the same as ``bnn-edge memory`` (bnn_edge/cli/memory.py)."""

from bnn_edge.cli.memory import main

if __name__ == "__main__":
    raise SystemExit(main())
