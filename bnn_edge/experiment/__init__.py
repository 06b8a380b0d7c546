"""Experiments: the run folder, training, cross-validation, tables and figures."""
