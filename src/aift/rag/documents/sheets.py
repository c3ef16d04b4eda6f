"""Spreadsheets (.xlsx) and CSV files as tables: each sheet's used cells (values, not
formulas) in pages of ROWS_PER_PAGE rows, each page a Markdown table under the sheet's
name that repeats the header row, so no page — and no chunk — holds a row cut in two or
rows without their header."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from aift.rag.documents.tables import markdown_table, trimmed
from aift.rag.extract import PageText

ROWS_PER_PAGE = 50
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
    return _table_pages(path.name, trimmed(rows), first=1)


def _table_pages(title: str, rows: list[list[Any]], first: int) -> list[PageText]:
    """A table in pages of ROWS_PER_PAGE body rows, each with the header row."""
    if not rows:
        return [PageText(first, f"## {title}\n\n(empty)", False)]
    header, body = rows[0], rows[1:]
    if not body:
        return [PageText(first, f"## {title}\n\n{markdown_table([header])}", False)]
    pages: list[PageText] = []
    for start in range(0, len(body), ROWS_PER_PAGE):
        group = body[start : start + ROWS_PER_PAGE]
        span = f" (rows {start + 2}–{start + 1 + len(group)})" if len(body) > ROWS_PER_PAGE else ""
        text = f"## {title}{span}\n\n{markdown_table([header, *group])}"
        pages.append(PageText(first + len(pages), text, False))
    return pages
