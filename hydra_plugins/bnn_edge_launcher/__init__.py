"""bnn_edge's Hydra plugins: the launcher ``hydra/launcher=parallel`` (bnn_edge/cli/sweep.py)
and the search path of tasks from other packages (task_configs.py)."""
