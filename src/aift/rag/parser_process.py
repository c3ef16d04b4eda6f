"""A separate process that extracts documents' pages, stopped when it takes too long.

pypdfium2 and the OCR engines are native code: a hostile or pathological file can hang
or crash them where Python cannot interrupt. The job talks to one long-lived parser
process (started once, reused for every document of the batch) and waits for each page
with a time limit; on a timeout or a crash the process is killed, the document fails
alone with a clear reason, and the next document gets a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aift.procutil import start_child
from aift.rag.extract import ExtractionError

if TYPE_CHECKING:
    from aift.rag.ocr import OcrEngine


@dataclass
class ParserOptions:
    ocr_engine: str
    ocr_languages: list[str]
    page_timeout_seconds: float
    max_pages: int = 5000


def _serve(receive: Connection, send: Connection, options: ParserOptions) -> None:
    """The parser process: answer parse requests until the pipe closes."""
    from aift.rag import extract
    from aift.rag.documents import document_pages
    from aift.rag.filetypes import PDF

    engine: OcrEngine | None = None

    def ocr() -> OcrEngine:
        """The OCR engine, loaded on the first scanned page only."""
        nonlocal engine
        if engine is None:
            from aift.rag.ocr import load_ocr

            engine = load_ocr(options.ocr_engine, options.ocr_languages)
        return engine

    while True:
        try:
            path, content_type, password = receive.recv()
        except EOFError:
            return
        try:
            if content_type == PDF:  # streamed: a long PDF is never held whole
                total = extract.page_count(Path(path), content_type, password)
                pages: Iterable[extract.PageText] = extract.pdf_pages(
                    Path(path), password, ocr, lambda: send.send(("read", None))
                )
            else:
                pages = document_pages(Path(path), content_type)
                total = len(pages)
            if total > options.max_pages:
                raise extract.ExtractionError(
                    "failed",
                    f"The document has {total:,} pages; at most {options.max_pages:,} are "
                    "ingested (AIFT_MAX_PDF_PAGES). Split it, or raise the limit.",
                )
            send.send(("pages", total))
            for page in pages:
                send.send(("page", page))
            send.send(("done", None))
        except ExtractionError as exc:
            send.send(("error", (exc.kind, str(exc))))
        except Exception as exc:  # noqa: BLE001 - reported per document, process goes on
            send.send(("error", ("failed", f"{type(exc).__name__}: {exc}")))


class ParserProcess:
    """The job's side of the parser process (`python -m aift.rag.parser_process`)."""

    def __init__(self, options: ParserOptions) -> None:
        self.options = options
        self._process: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._receive: Connection | None = None

    def _start(self) -> None:
        self._process, self._send, self._receive = start_child(
            "aift.rag.parser_process", json.dumps(asdict(self.options))
        )

    def parse(self, path: Path, content_type: str, password: str | None) -> Iterator[Any]:
        """Yields the page count (int), then each PageText; raises ExtractionError."""
        if self._process is None or self._process.poll() is not None:
            self._start()
        assert self._send is not None and self._receive is not None
        self._send.send((str(path), content_type, password))
        done_pages = 0
        while True:
            if not self._receive.poll(self.options.page_timeout_seconds):
                self.close()
                raise ExtractionError(
                    "timeout",
                    f"Parsing stopped: no progress for {self.options.page_timeout_seconds:.0f} s "
                    f"after page {done_pages} (AIFT_PARSE_PAGE_TIMEOUT_SECONDS). The file may be "
                    "malformed or hostile.",
                )
            try:
                kind, value = self._receive.recv()
            except (EOFError, OSError):
                code = self._process.wait(timeout=5) if self._process else None
                self.close()
                raise ExtractionError(
                    "crashed", f"The parser crashed on this file (exit code {code})."
                ) from None
            if kind == "read":  # a page read (given a few pages later): progress
                continue
            if kind == "pages":
                yield int(value)
            elif kind == "page":
                done_pages += 1
                yield value
            elif kind == "done":
                return
            else:
                raise ExtractionError(*value)

    def close(self) -> None:
        """Stop the parser process (killed: it may be stuck in native code)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        for conn in (self._send, self._receive):
            if conn is not None:
                conn.close()
        self._process = self._send = self._receive = None


def main(argv: list[str]) -> None:
    """Entry point of the parser process."""
    from aift.procutil import exit_with_parent

    exit_with_parent()
    receive = Connection(int(argv[0]), writable=False)
    send = Connection(int(argv[1]), readable=False)
    _serve(receive, send, ParserOptions(**json.loads(argv[2])))


if __name__ == "__main__":
    main(sys.argv[1:])
