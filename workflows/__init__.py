"""Deterministic Temporal workflows: no I/O, no clocks, no randomness; effects go through activities."""
