"""``python -m bnn_edge.report``: the same as ``bnn-edge report`` (bnn_edge/cli/report.py)."""

from bnn_edge.cli.report import main

if __name__ == "__main__":
    raise SystemExit(main())
