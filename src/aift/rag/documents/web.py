"""Web pages (HTML) and e-books (EPUB, whose chapters are XHTML): headings, paragraphs,
list items and tables in document order, without scripts, styles, navigation, headers
and footers; an HTML page is cut into pages at its top heading level, an e-book first
into its chapters (the spine's order)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aift.rag.documents.outline import Block, pages_of
from aift.rag.documents.tables import markdown_table
from aift.rag.extract import PageText

SKIP = {
    "head", "script", "style", "noscript", "template", "nav", "footer", "header", "aside",
    "form", "svg", "iframe", "object", "button", "select",
}  # fmt: skip
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
TEXT_BLOCKS = {"p", "pre", "blockquote", "dd", "dt", "figcaption", "address", "caption", "li"}
INLINE = {
    "a", "abbr", "b", "bdi", "bdo", "br", "cite", "code", "data", "del", "dfn", "em", "i",
    "img", "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strong", "sub",
    "sup", "time", "u", "var", "wbr",
}  # fmt: skip
MAX_SPAN = 50  # a colspan beyond this is hostile or a layout trick


def html_pages(path: Path) -> list[PageText]:
    return pages_of(html_blocks(path.read_bytes()))


def epub_pages(path: Path) -> list[PageText]:
    import ebooklib
    from ebooklib import epub

    book = epub.read_epub(str(path), options={"ignore_ncx": True})
    pages: list[PageText] = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        for page in pages_of(html_blocks(item.get_content())):
            pages.append(PageText(len(pages) + 1, page.text, False))
    return pages


def html_blocks(markup: bytes) -> list[Block]:
    """The blocks of an HTML or XHTML document, in reading order."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    blocks: list[Block] = []
    _walk(soup.body or soup, blocks)
    return blocks


def _text(node: Any) -> str:
    return " ".join(node.get_text(" ", strip=True).split())


def _walk(node: Any, blocks: list[Block]) -> None:
    """Add `node`'s children as blocks; a run of inline content becomes one paragraph."""
    from bs4 import Comment, NavigableString, Tag

    run: list[str] = []

    def flush() -> None:
        text = " ".join(" ".join(run).split())
        if text:
            blocks.append(Block(text))
        run.clear()

    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            run.append(str(child))
        elif isinstance(child, Tag) and child.name not in SKIP:
            if child.name in INLINE:
                run.append(_text(child))
                continue
            flush()
            _block(child, blocks)
    flush()


def _block(tag: Any, blocks: list[Block]) -> None:
    if tag.name in HEADINGS:
        blocks.append(Block(_text(tag), level=int(tag.name[1])))
    elif tag.name == "table":
        blocks.append(Block(markdown_table(_rows(tag)), table=True))
    elif tag.name in TEXT_BLOCKS:
        text = _text(tag)
        blocks.append(Block(f"- {text}" if tag.name == "li" and text else text))
    else:
        _walk(tag, blocks)


def _rows(table: Any) -> list[list[str]]:
    """A table's rows (its own, not nested tables'); a cell spanning columns stands in
    each of them."""
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue
        row: list[str] = []
        for cell in tr.find_all(["th", "td"], recursive=False):
            span = cell.get("colspan", "1")
            repeat = min(MAX_SPAN, int(span)) if str(span).isdigit() and int(span) > 0 else 1
            row.extend([_text(cell)] * repeat)
        rows.append(row)
    return rows
