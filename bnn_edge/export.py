"""``python -m bnn_edge.export``: the same as ``bnn-edge export`` (bnn_edge/cli/export.py)."""

from bnn_edge.cli.export import main

if __name__ == "__main__":
    raise SystemExit(main())
