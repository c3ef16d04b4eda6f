"""Imports point downwards only, and no module imports itself back through others.

Layers, bottom to top: the foundation (settings, errors, workspace, store…), then jobs
and models, then the services (inference, training, rag), then `runtime` (the one
wiring point), then the entry points (api, cli, web). Imports under `TYPE_CHECKING`
are annotations only and do not count. A process entry point below the top (the job
process's `jobs.child`) may build the Runtime.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "aift"

LAYERS: dict[str, int] = {
    "__init__": 0,
    "errors": 0,
    "config": 0,
    "keepalive": 0,
    "workspace": 0,
    "procutil": 0,
    "threads": 0,
    "monitoring": 0,
    "store": 0,
    "jobs": 1,
    "auth": 1,
    "models": 1,
    "native": 1,
    "inference": 2,
    "training": 2,
    "export": 2,
    "backup": 2,
    "rag": 2,
    "conversations": 2,
    "doctor": 2,
    "runtime": 3,
    "client": 3,
    "api": 4,
    "cli": 4,
    "web": 4,
}
# Modules that start a process of their own and so wire it up like the CLI does.
ENTRY_POINTS = {"aift.jobs.child"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("aift", *parts)).removesuffix(".__init__")


def _runtime_imports(path: Path) -> list[tuple[str, int]]:
    """aift modules imported by `path`, outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    annotation_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            annotation_only |= {id(inner) for inner in ast.walk(node)}
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if id(node) in annotation_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aift"):
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("aift")]
    return found


def _graph() -> dict[str, list[tuple[str, int]]]:
    return {_module_name(p): _runtime_imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    assert top in LAYERS, f"{top!r} has no layer: add it to LAYERS in {__file__}"
    return LAYERS[top]


def test_every_import_points_downwards() -> None:
    upward = [
        f"{module}:{line} imports {target}"
        for module, imports in _graph().items()
        if module not in ENTRY_POINTS
        for target, line in imports
        if _layer(target) > _layer(module)
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    graph = _graph()
    modules = set(graph)

    def resolve(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    edges: dict[str, set[str]] = defaultdict(set)
    for module, imports in graph.items():
        edges[module] |= {resolve(t) for t, _ in imports} - {module}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(modules):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """The checker sees an upward import and ignores a TYPE_CHECKING one."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "from aift.runtime import Runtime\n"
        "if TYPE_CHECKING:\n"
        "    from aift.api.app import create_app\n"
        "def f():\n"
        "    import aift.cli\n"
    )
    assert [name for name, _ in _runtime_imports(sample)] == ["aift.runtime", "aift.cli"]
    assert _layer("aift.runtime") > _layer("aift.jobs.worker")
