"""Backups of a workspace and restoring them (see backup/service.py)."""
