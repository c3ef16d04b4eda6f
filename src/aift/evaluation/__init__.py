"""Evaluation: how a served model answers a dataset's held-out questions."""
