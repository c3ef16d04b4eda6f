"""Logging, system stats (CPU/RAM/GPU) and metrics."""
