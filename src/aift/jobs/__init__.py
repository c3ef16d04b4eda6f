"""Durable jobs: queue, workers, one process per job, progress, cancel, resume."""
