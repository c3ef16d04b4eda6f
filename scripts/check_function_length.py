"""Fail when a function in the given folders is longer than 80 lines (make lint).

Long functions hide several jobs; each step gets a name of its own instead.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LIMIT = 80


def long_functions(root: Path) -> list[str]:
    """`path:line name (N lines)` for each function of `root` over the limit."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LIMIT:
                    found.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    return found


def main(folders: list[str]) -> int:
    problems = [line for folder in folders for line in long_functions(Path(folder))]
    for line in problems:
        print(f"over {LIMIT} lines: {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["src"]))
