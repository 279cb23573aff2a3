"""Data sources: built-in 2-D sets, user files, and normalization."""
