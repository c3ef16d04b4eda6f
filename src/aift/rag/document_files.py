"""The files kept beside an uploaded document: its extracted page texts and, until the
PDF has been read, the password it was given. Named here once for ingestion, the page
viewer and the knowledge service (upload, delete)."""

from __future__ import annotations

from pathlib import Path

from aift.store.tables import DocumentRow


def pages_file(document: DocumentRow) -> Path:
    """Where a document's extracted page texts are kept (re-index reads them)."""
    return Path(document.path).with_suffix(".pages.json")


def password_file(document: DocumentRow) -> Path:
    """A password given for an encrypted PDF, kept only until the PDF has been read."""
    return Path(document.path).with_suffix(".password")
