"""Spreadsheets (.xlsx) and CSV files as tables: each sheet's used cells (values, not
formulas) in pages of row groups, each page a Markdown table under the sheet's name that
repeats the header row. A group holds at most ROWS_PER_PAGE rows and about PAGE_CHARS
characters — well within one chunk of an embedding model (tables take about one token
per two characters) — and chunks end
where a page's heading begins, so no chunk holds a row cut in two or rows without their
header."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from aift.rag.documents.tables import markdown_table, row_length, trimmed
from aift.rag.extract import PageText

ROWS_PER_PAGE = 50
PAGE_CHARS = 600
SNIFF_BYTES = 64 * 1024


def xlsx_pages(path: Path) -> list[PageText]:
    from openpyxl import load_workbook

    handle = open(path, "rb")  # noqa: SIM115 - a file object: openpyxl judges paths by suffix
    book = load_workbook(handle, read_only=True, data_only=True)
    try:
        sheets = [
            (sheet.title, [list(row) for row in sheet.iter_rows(values_only=True)])
            for sheet in book.worksheets
        ]
    finally:
        book.close()
        handle.close()
    pages: list[PageText] = []
    for title, rows in sheets:
        pages.extend(_table_pages(f"Sheet: {title}", trimmed(rows), first=len(pages) + 1))
    return pages


def csv_pages(path: Path) -> list[PageText]:
    with open(path, encoding="utf-8", newline="") as handle:
        sample = handle.read(SNIFF_BYTES)
        handle.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        rows = [list(row) for row in csv.reader(handle, dialect)]
    return _table_pages("Table", trimmed(rows), first=1)  # the file is stored under an id


def _table_pages(title: str, rows: list[list[Any]], first: int) -> list[PageText]:
    """A table in pages of row groups (see the module docstring), each with the header."""
    if not rows:
        return [PageText(first, f"## {title}\n\n(empty)", False)]
    header, body = rows[0], rows[1:]
    groups = _row_groups(header, body)
    pages: list[PageText] = []
    for start, group in groups:
        span = f" (rows {start + 2}–{start + 1 + len(group)})" if len(groups) > 1 else ""
        text = f"## {title}{span}\n\n{markdown_table([header, *group])}"
        pages.append(PageText(first + len(pages), text, False))
    return pages


def _row_groups(header: list[Any], body: list[list[Any]]) -> list[tuple[int, list[list[Any]]]]:
    """(index of the first row, rows) of each page: rows are added while the page stays
    within PAGE_CHARS and ROWS_PER_PAGE (a page holds at least one row)."""
    if not body:
        return [(0, [])]
    size = len(markdown_table([header]))
    groups: list[tuple[int, list[list[Any]]]] = []
    current: list[list[Any]] = []
    start, used = 0, size
    for index, row in enumerate(body):
        length = row_length(row)
        if current and (used + length > PAGE_CHARS or len(current) >= ROWS_PER_PAGE):
            groups.append((start, current))
            start, current, used = index, [], size
        current.append(row)
        used += length
    groups.append((start, current))
    return groups
