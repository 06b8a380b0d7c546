"""Tests of bnn_edge.nn."""
