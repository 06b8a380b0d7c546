"""bnn_edge."""
