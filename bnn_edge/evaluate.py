"""``python -m bnn_edge.evaluate``: the same as ``bnn-edge evaluate`` (bnn_edge/cli/evaluate.py)."""

from bnn_edge.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
