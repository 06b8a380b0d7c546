"""``python -m bnn_edge.train``: the same as ``bnn-edge train`` (bnn_edge/cli/train.py)."""

from bnn_edge.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
