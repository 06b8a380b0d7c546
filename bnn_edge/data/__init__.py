"""Data modules of the three tasks and what they share (splits, cache)."""
