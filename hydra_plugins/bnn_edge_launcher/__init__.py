"""bnn_edge's Hydra launcher plugin: ``hydra/launcher=parallel`` (bnn_edge/cli/sweep.py)."""
