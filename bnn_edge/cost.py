"""``python -m bnn_edge.cost``: the same as ``bnn-edge cost`` (bnn_edge/cli/cost.py)."""

from bnn_edge.cli.cost import main

if __name__ == "__main__":
    raise SystemExit(main())
