"""Metrics: pure functions of saved predictions (arrays in, numbers out)."""
