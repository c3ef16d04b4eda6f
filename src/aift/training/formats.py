"""Reading training files and turning each row into one canonical example.

Files: JSONL, JSON (a list of rows), CSV, Parquet — recognised by content, not name.
Row formats: alpaca (`instruction`/`input`/`output`), chat (`messages` with roles),
ShareGPT (`conversations` with `from`/`value`), raw text (`text`). Every row becomes
either `{"messages": [...]}` or `{"text": "..."}`; a row that cannot becomes a RowError
with its number and the reason. Preference, KTO and prompt rows are read by
`preference_formats`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from aift.errors import InvalidInput
from aift.training import preference_formats
from aift.training.cells import ROLES, SHAREGPT_ROLES, cell_text
from aift.training.schemas import DatasetFormat, RowError

MAX_ROWS = 2_000_000
MAX_PARQUET_DECODED_BYTES = 2 * 1024**3


def sniff_kind(head: bytes) -> str:
    """File kind from its first bytes: parquet, json, jsonl or csv."""
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text:
        raise InvalidInput("The file is empty.")
    if b"\x00" in head:
        raise InvalidInput("This is a binary file, not JSONL, JSON, CSV or Parquet.")
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        first_line = text.split(b"\n", 1)[0].strip()
        try:
            json.loads(first_line)
            return "jsonl"
        except ValueError:
            return "json"  # one pretty-printed object
    return "csv"


def read_rows(path: Path) -> list[Any]:
    """Rows of a JSONL, JSON, CSV or Parquet file (by content); per-line JSON errors fail."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    kind = sniff_kind(head)
    if kind == "parquet":
        return _parquet_rows(path)
    text = path.read_bytes().decode("utf-8-sig", errors="strict")
    if kind == "jsonl":
        rows: list[Any] = []
        errors: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if len(rows) >= MAX_ROWS:
                raise _too_many_rows(f"more than {MAX_ROWS}")
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                errors.append(f"line {number}: {exc.msg}")
        if errors:
            shown = "; ".join(errors[:5]) + (
                f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            )
            raise InvalidInput(f"Invalid JSON lines — {shown}", details=errors[:100])
        return _unwrap(rows[0]) if len(rows) == 1 else rows
    if kind == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"Invalid JSON at line {exc.lineno}: {exc.msg}") from None
        return _unwrap(data) if isinstance(data, dict) else list(data)
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames or len(reader.fieldnames) < 1:
        raise InvalidInput("The CSV file has no header row.")
    table: list[Any] = []
    for row in reader:
        if len(table) >= MAX_ROWS:
            raise _too_many_rows(f"more than {MAX_ROWS}")
        table.append(row)
    return table


def _too_many_rows(count: str) -> InvalidInput:
    return InvalidInput(f"The file has {count} rows; at most {MAX_ROWS} are accepted.")


def _parquet_rows(path: Path) -> list[Any]:
    """A Parquet file's rows, after its footer said how many there are and how large
    they are once decoded: a small file can expand to billions of rows, and that must
    be refused before anything is materialised."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
        decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    except Exception as exc:  # noqa: BLE001 - corrupt parquet of any kind
        raise InvalidInput(f"The Parquet file cannot be read: {exc}") from None
    if meta.num_rows > MAX_ROWS:
        raise _too_many_rows(f"{meta.num_rows:,}")
    if decoded > MAX_PARQUET_DECODED_BYTES:
        raise InvalidInput(
            f"The Parquet file decodes to {decoded / 1e9:.1f} GB; at most "
            f"{MAX_PARQUET_DECODED_BYTES / 1e9:.0f} GB are accepted."
        )
    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001 - corrupt parquet of any kind
        raise InvalidInput(f"The Parquet file cannot be read: {exc}") from None


ROW_KEYS = {"messages", "conversations", "instruction", "text", "chosen", "prompt", "question"}


def _unwrap(data: dict) -> list[Any]:
    """A single object holding the rows in a list ({"data": [...]}) → those rows."""
    if not ROW_KEYS & data.keys():
        for value in data.values():
            if isinstance(value, list):
                return list(value)
    return [data]


def detect_format(rows: list[Any]) -> DatasetFormat:
    """The row format most rows follow (by their keys)."""
    votes = {fmt: 0 for fmt in DatasetFormat}
    for row in rows[:200]:
        if not isinstance(row, dict):
            continue
        paired = preference_formats.detect(row)
        if paired is not None:
            votes[paired] += 1
        elif "messages" in row:
            votes[DatasetFormat.chat] += 1
        elif "conversations" in row:
            votes[DatasetFormat.sharegpt] += 1
        elif "instruction" in row and "output" in row:
            votes[DatasetFormat.alpaca] += 1
        elif "text" in row:
            votes[DatasetFormat.text] += 1
    best = max(votes, key=lambda fmt: votes[fmt])
    if votes[best] == 0:
        raise InvalidInput(
            "Cannot tell the format: rows need `instruction`+`output` (alpaca), `messages` "
            "(chat), `conversations` (ShareGPT), `text` (raw text), `chosen`+`rejected` "
            "(preference), `completion`+`label` (kto) or `prompt` (prompts). Name it with "
            "`format`."
        )
    return best


def _check_turns(messages: list[dict[str, str]]) -> str | None:
    """Why a conversation cannot train, or None."""
    if not any(m["role"] == "assistant" for m in messages):
        return "has no assistant turn to learn from"
    if not any(m["role"] == "user" for m in messages):
        return "has no user turn"
    if any(not m["content"].strip() for m in messages):
        return "has an empty message"
    if messages[-1]["role"] != "assistant":
        return "does not end with an assistant turn"
    return None


def to_example(row: Any, fmt: DatasetFormat) -> dict[str, Any] | str:
    """The canonical example of a row, or the reason it is unusable."""
    if not isinstance(row, dict):
        return f"is a {type(row).__name__}, not an object"
    if fmt in (DatasetFormat.preference, DatasetFormat.kto, DatasetFormat.prompts):
        return preference_formats.to_example(row, fmt)
    if fmt == DatasetFormat.text:
        text = cell_text(row.get("text"))
        return {"text": text} if text and text.strip() else "has no `text`"
    if fmt == DatasetFormat.alpaca:
        instruction, output = cell_text(row.get("instruction")), cell_text(row.get("output"))
        if not instruction or not instruction.strip():
            return "has an empty `instruction`"
        if not output or not output.strip():
            return "has an empty `output`"
        extra = cell_text(row.get("input"))
        user = instruction + (f"\n\n{extra}" if extra and extra.strip() else "")
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
        system = cell_text(row.get("system"))
        if system and system.strip():
            messages.insert(0, {"role": "system", "content": system})
        return {"messages": messages}
    key = "messages" if fmt == DatasetFormat.chat else "conversations"
    turns = row.get(key)
    if isinstance(turns, str):
        try:
            turns = json.loads(turns)  # CSV cells hold JSON
        except ValueError:
            return f"has a `{key}` that is not a list"
    if not isinstance(turns, list) or not turns:
        return f"has no `{key}` list"
    messages = []
    for index, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            return f"turn {index} is not an object"
        if fmt == DatasetFormat.chat:
            role, content = turn.get("role"), cell_text(turn.get("content"))
            if role not in ROLES:
                return f"turn {index} has role {role!r}; use system, user or assistant"
        else:
            role = SHAREGPT_ROLES.get(str(turn.get("from", "")).lower())
            content = cell_text(turn.get("value"))
            if role is None:
                return f"turn {index} has from={turn.get('from')!r}; use human, gpt or system"
        messages.append({"role": role, "content": content or ""})
    problem = _check_turns(messages)
    return problem if problem else {"messages": messages}


def normalise(rows: list[Any], fmt: DatasetFormat) -> tuple[list[dict[str, Any]], list[RowError]]:
    """Canonical examples of the usable rows, and an error for each unusable one."""
    if len(rows) > MAX_ROWS:
        raise _too_many_rows(f"{len(rows):,}")
    examples, errors = [], []
    for number, row in enumerate(rows, start=1):
        result = to_example(row, fmt)
        if isinstance(result, str):
            errors.append(RowError(row=number, reason=f"row {number} {result}"))
        else:
            examples.append(result)
    return examples, errors
