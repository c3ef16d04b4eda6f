from pathlib import Path

import pytest

from aift.errors import InvalidInput
from aift.workspace import SUBDIRS, Workspace, safe_name


def test_ensure_creates_the_layout(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    for name in SUBDIRS:
        assert (ws.root / name).is_dir()
    assert ws.job_log("abc").parent.is_dir()
    Workspace(tmp_path / "ws").ensure()  # idempotent


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "etc_passwd"),
        ("a/b\\c", "a_b_c"),
        ("..hidden", "hidden"),
        ("名前 file", "名前_file"),
    ],
)
def test_safe_name_removes_path_tricks(given: str, expected: str) -> None:
    assert safe_name(given) == expected


@pytest.mark.parametrize("given", ["", "..", "/", "???"])
def test_safe_name_rejects_empty_results(given: str) -> None:
    with pytest.raises(InvalidInput):
        safe_name(given)


def test_inside_refuses_escapes(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    assert ws.inside(ws.data / "x.txt") == (ws.data / "x.txt").resolve()
    with pytest.raises(InvalidInput):
        ws.inside(ws.data / ".." / ".." / "elsewhere")
