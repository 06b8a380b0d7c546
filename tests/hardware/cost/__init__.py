"""Tests of bnn_edge.hardware.cost (params, model, report)."""
