"""Data modules of the tasks and what they share (splits, cache, sources)."""
