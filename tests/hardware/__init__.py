"""Tests of bnn_edge.hardware."""
