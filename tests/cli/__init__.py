"""Tests of bnn_edge.cli."""
