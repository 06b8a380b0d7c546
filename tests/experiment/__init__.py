"""Tests of bnn_edge.experiment."""
