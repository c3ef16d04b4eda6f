"""Opening a citation: the cited page's image and where the passage sits on it.

The work happens in a short-lived child process (`aift.rag.page_view`) under the parser's
time limit; answers are cached next to the document, so the second click is a file read.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from aift.config import Settings
from aift.errors import InvalidInput, NotFound
from aift.procutil import die_with_parent
from aift.rag import filetypes
from aift.rag.chunking import join_pages
from aift.rag.document_files import pages_file
from aift.rag.schemas import DocumentStatus, PageView
from aift.rag.store import KnowledgeStore
from aift.store.tables import DocumentRow


def views_folder(document: DocumentRow) -> Path:
    """Where a document's rendered pages and located passages are cached."""
    return Path(document.path).with_suffix(".views")


class PageViews:
    """Page images and passage boxes of a knowledge base's documents."""

    def __init__(self, store: KnowledgeStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def view(self, kb_id: str, doc_id: str, page: int, chunk_id: str | None) -> PageView:
        """The page as a citation shows it; with `chunk_id`, the chunk's passage boxed."""
        document = self._readable(kb_id, doc_id, page)
        passage = self._passage(document, page, chunk_id) if chunk_id else ""
        base = PageView(
            document_id=document.id,
            document=document.name,
            page=page,
            pages=document.pages,
            chunk_id=chunk_id,
            passage=passage,
            source="text",
        )
        if document.content_type != filetypes.PDF:
            return base
        located = self._locate(document, page, passage)
        return base.model_copy(
            update={
                "image_url": f"/api/v1/kb/{kb_id}/documents/{doc_id}/pages/{page}/image",
                "width": located["width"],
                "height": located["height"],
                "boxes": [tuple(box) for box in located["boxes"]],
                "source": located["source"],
            }
        )

    def image(self, kb_id: str, doc_id: str, page: int) -> Path:
        """The PNG of a PDF page (rendered on first use)."""
        document = self._readable(kb_id, doc_id, page)
        if document.content_type != filetypes.PDF:
            raise InvalidInput(f"{document.name} is a text file; it has no page images.")
        image = views_folder(document) / f"page-{page}.png"
        if not image.is_file():
            self._locate(document, page, "")
        return image

    # -- helpers ---------------------------------------------------------------------
    def _readable(self, kb_id: str, doc_id: str, page: int) -> DocumentRow:
        document = self.store.document(doc_id, kb_id)
        if document.status != DocumentStatus.indexed.value or not document.pages:
            raise InvalidInput(
                f"{document.name} is {document.status}; pages can be shown once it is indexed."
            )
        if not 1 <= page <= document.pages:
            raise NotFound(
                f"{document.name} has {document.pages} page(s); there is no page {page}."
            )
        return document

    def _passage(self, document: DocumentRow, page: int, chunk_id: str) -> str:
        """The part of the chunk that lies on `page` (chunks can span pages)."""
        chunk = self.store.chunk(chunk_id, document.id)
        if not chunk.page_start <= page <= chunk.page_end:
            raise InvalidInput(
                f"That passage is on pages {chunk.page_start}–{chunk.page_end}, not page {page}."
            )
        texts = json.loads(pages_file(document).read_text(encoding="utf-8"))
        _, starts = join_pages(texts)
        start = starts[page - 1]
        end = start + len(texts[page - 1])
        return texts[page - 1][
            max(chunk.char_start, start) - start : min(chunk.char_end, end) - start
        ]

    def _locate(self, document: DocumentRow, page: int, passage: str) -> dict:
        folder = views_folder(document)
        folder.mkdir(exist_ok=True)
        digest = hashlib.sha256(passage.encode()).hexdigest()[:16]
        cached = folder / f"page-{page}-{digest}.json"
        if cached.is_file():
            return json.loads(cached.read_text())
        request = {
            "path": document.path,
            "page": page,
            "passage": passage,
            "image": str(folder / f"page-{page}.png"),
            "ocr_engine": self.settings.ocr_engine,
            "ocr_languages": self.settings.ocr_languages,
        }
        try:
            done = subprocess.run(
                [sys.executable, "-m", "aift.rag.page_view"],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                timeout=self.settings.parse_page_timeout_seconds,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
                check=False,
                preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509 - prctl only
            )
        except subprocess.TimeoutExpired:
            raise InvalidInput(
                f"Rendering page {page} of {document.name} took longer than "
                f"{self.settings.parse_page_timeout_seconds:.0f} s and was stopped."
            ) from None
        try:
            answer = json.loads(done.stdout)
        except json.JSONDecodeError:
            raise InvalidInput(
                f"Page {page} of {document.name} could not be rendered "
                f"(exit code {done.returncode})."
            ) from None
        if "error" in answer:
            if "encrypted" in answer["error"]:
                raise InvalidInput(
                    f"{document.name} is an encrypted PDF and its password is not kept, so "
                    "its pages cannot be shown; the cited text is in the citation itself."
                )
            raise InvalidInput(f"Page {page} of {document.name}: {answer['error']}")
        cached.write_text(json.dumps(answer))
        return answer
