"""Tests of bnn_edge.models."""
