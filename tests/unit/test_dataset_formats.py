import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aift.errors import InvalidInput
from aift.training.datasets import split
from aift.training.formats import detect_format, normalise, read_rows, sniff_kind
from aift.training.schemas import DatasetFormat

ALPACA = [
    {"instruction": "Add", "input": "2 and 3", "output": "5"},
    {"instruction": "Greet", "output": "Hello!", "system": "Be kind."},
]
CHAT = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]}]
SHAREGPT = [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_file_kinds_are_sniffed_by_content(tmp_path: Path) -> None:
    rows = [{"text": "a"}, {"text": "b"}]
    jsonl = write(tmp_path / "x.csv", "\n".join(json.dumps(r) for r in rows))  # lying name
    assert read_rows(jsonl) == rows
    assert read_rows(write(tmp_path / "a.json", json.dumps(rows, indent=2))) == rows
    assert read_rows(write(tmp_path / "b.json", json.dumps({"data": rows}))) == rows
    csv_rows = read_rows(write(tmp_path / "c.txt", "instruction,output\nAdd,5\nSay hi,hi\n"))
    assert csv_rows == [
        {"instruction": "Add", "output": "5"},
        {"instruction": "Say hi", "output": "hi"},
    ]
    parquet = tmp_path / "d.jsonl"
    pq.write_table(pa.Table.from_pylist(ALPACA), parquet)
    assert read_rows(parquet)[0]["instruction"] == "Add"
    assert sniff_kind(b"PAR1....") == "parquet"


@pytest.mark.parametrize("content", [b"", b"   \n", b"\x00\x01\x02binary"])
def test_empty_and_binary_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(InvalidInput):
        read_rows(path)


def test_broken_json_lines_name_their_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "x.jsonl", '{"text": "ok"}\n{"text": oops}\n{"text": "fine"}\n{bad\n')
    with pytest.raises(InvalidInput) as err:
        read_rows(path)
    assert "line 2" in err.value.message and "line 4" in err.value.message


@pytest.mark.parametrize(
    ("rows", "fmt"),
    [(ALPACA, "alpaca"), (CHAT, "chat"), (SHAREGPT, "sharegpt"), ([{"text": "x"}], "text")],
)
def test_format_detection(rows: list, fmt: str) -> None:
    assert detect_format(rows) == DatasetFormat(fmt)


def test_unknown_format_says_which_keys_are_expected() -> None:
    with pytest.raises(InvalidInput, match="instruction"):
        detect_format([{"query": "q", "response": "a"}])


def test_rows_become_conversations() -> None:
    examples, errors = normalise(ALPACA, DatasetFormat.alpaca)
    assert not errors
    assert examples[0]["messages"] == [
        {"role": "user", "content": "Add\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]
    assert examples[1]["messages"][0] == {"role": "system", "content": "Be kind."}
    shared, _ = normalise(SHAREGPT, DatasetFormat.sharegpt)
    assert shared[0]["messages"][1] == {"role": "assistant", "content": "Yo"}
    csv_chat, _ = normalise([{"messages": json.dumps(CHAT[0]["messages"])}], DatasetFormat.chat)
    assert csv_chat[0]["messages"][1]["content"] == "Hey"


@pytest.mark.parametrize(
    ("row", "fmt", "reason"),
    [
        ({"instruction": "", "output": "x"}, "alpaca", "empty `instruction`"),
        ({"instruction": "x", "output": None}, "alpaca", "empty `output`"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "chat", "no assistant turn"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "chat", "role 'wizard'"),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                ]
            },
            "chat",
            "end with an assistant",
        ),
        ({"messages": "not json"}, "chat", "not a list"),
        ({"conversations": [{"from": "alien", "value": "x"}]}, "sharegpt", "from='alien'"),
        ({"text": "   "}, "text", "no `text`"),
        (["a", "list"], "text", "not an object"),
    ],
)
def test_bad_rows_get_numbered_reasons(row: object, fmt: str, reason: str) -> None:
    examples, errors = normalise(
        [{"text": "fine"} if fmt == "text" else ALPACA[0], row]
        if fmt in ("text", "alpaca")
        else [row],
        DatasetFormat(fmt),
    )
    assert errors and reason in errors[-1].reason
    assert errors[-1].row == (2 if fmt in ("text", "alpaca") else 1)


def test_split_is_seeded_and_refuses_too_small_sets() -> None:
    examples = [{"text": str(i)} for i in range(20)]
    train, val = split(examples, 0.25, seed=1)
    assert len(val) == 5 and len(train) == 15
    assert split(examples, 0.25, seed=1) == (train, val)
    assert split(examples, 0.25, seed=2) != (train, val)
    assert {e["text"] for e in train} | {e["text"] for e in val} == {str(i) for i in range(20)}
    with pytest.raises(InvalidInput, match="too few"):
        split(examples[:3], 0.1, seed=1)
    assert split(examples[:3], 0.0, seed=1) == (examples[:3], [])
