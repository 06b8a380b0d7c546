"""Tests of bnn_edge.data."""
