"""Imports point downwards only, siblings stay apart, and nothing imports itself back.

Layers, bottom to top: the foundation (settings, errors, workspace, store, the
vocabulary of long work…); the platform (jobs, models, auth, native code); the weight
operations serving, training and export share; the capabilities (inference, training,
rag, export…); `runtime` (the composition root); the job tasks; the entry points (api,
cli, web). Every import counts, type-only ones (`if TYPE_CHECKING:`) included. A package
may import a sibling of its own layer only where `SIBLINGS` names the pair (the
architecture's allowed arrows). A process entry point below the top (the job process's
`jobs.child`, the job fork server's `jobs.preload`) may build the Runtime and register
the tasks.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "aift"

FOUNDATION = 0
PLATFORM = 1
WEIGHTS = 2
CAPABILITIES = 3
COMPOSITION = 4
TASKS = 5
ENTRY = 6
LAYERS: dict[str, int] = {
    "__init__": FOUNDATION,
    "errors": FOUNDATION,
    "answer_match": FOUNDATION,
    "config": FOUNDATION,
    "keepalive": FOUNDATION,
    "workspace": FOUNDATION,
    "procutil": FOUNDATION,
    "allocator": FOUNDATION,
    "threads": FOUNDATION,
    "monitoring": FOUNDATION,
    "store": FOUNDATION,
    "work": FOUNDATION,
    "jobs": PLATFORM,
    "auth": PLATFORM,
    "models": PLATFORM,
    "native": PLATFORM,
    "weights": WEIGHTS,
    "inference": CAPABILITIES,
    "training": CAPABILITIES,
    "export": CAPABILITIES,
    "backup": CAPABILITIES,
    "rag": CAPABILITIES,
    "conversations": CAPABILITIES,
    "doctor": CAPABILITIES,
    "evaluation": CAPABILITIES,
    "runtime": COMPOSITION,
    "client": COMPOSITION,
    "tasks": TASKS,
    "api": ENTRY,
    "cli": ENTRY,
    "web": ENTRY,
    "mcp_server": ENTRY,
}
# Imports between packages of one layer above the foundation that the architecture names
# (docs/architecture.md); every other sibling import is a design error.
SIBLINGS: set[tuple[str, str]] = {
    ("native", "models"),  # llama.cpp's backend reads a model's GGUF facts
    ("rag", "inference"),  # answers are generated and passages embedded by serving
    ("doctor", "rag"),  # the health check asks which OCR languages are installed
    ("evaluation", "training"),  # the questions come from training datasets
    ("training", "rag"),  # datasets are written from a knowledge base's passages
    ("evaluation", "rag"),  # a knowledge base's answer evaluations are listed with the rest
    ("cli", "api"),  # `aift serve` starts the API server
    ("api", "web"),  # the app mounts the web UI's templates and static files
    ("api", "mcp_server"),  # the app serves MCP at /mcp
    ("cli", "mcp_server"),  # `aift mcp` serves it on stdio
}
# Modules that start a process of their own and so wire it up like the CLI does.
ENTRY_POINTS = {"aift.jobs.child", "aift.jobs.preload"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("aift", *parts)).removesuffix(".__init__")


def _imports(path: Path) -> list[tuple[str, int]]:
    """aift modules imported by `path`, anywhere in it (type-only imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aift"):
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("aift")]
    return found


def _graph() -> dict[str, list[tuple[str, int]]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _top(module: str) -> str:
    top = module.split(".")[1] if "." in module else "__init__"
    assert top in LAYERS, f"{top!r} has no layer: add it to LAYERS in {__file__}"
    return top


def _layer(module: str) -> int:
    return LAYERS[_top(module)]


def _sibling_violation(module: str, target: str) -> bool:
    """`module` imports another package of its own layer (above the foundation) that
    the architecture does not name."""
    source, other = _top(module), _top(target)
    same_layer = LAYERS[source] == LAYERS[other] != FOUNDATION
    return same_layer and source != other and (source, other) not in SIBLINGS


def test_every_import_points_downwards() -> None:
    upward = [
        f"{module}:{line} imports {target}"
        for module, imports in _graph().items()
        if module not in ENTRY_POINTS
        for target, line in imports
        if _layer(target) > _layer(module)
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_siblings_import_each_other_only_where_named() -> None:
    crossing = [
        f"{module}:{line} imports {target}"
        for module, imports in _graph().items()
        if module not in ENTRY_POINTS
        for target, line in imports
        if _sibling_violation(module, target)
    ]
    assert not crossing, "imports between sibling packages:\n" + "\n".join(crossing)


def test_named_siblings_exist() -> None:
    """Every allowed pair is still used (an unused allowance is a stale rule)."""
    used = {
        (_top(module), _top(target))
        for module, imports in _graph().items()
        for target, _ in imports
    }
    assert SIBLINGS <= used, f"allowed but unused: {SIBLINGS - used}"


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
    """The checker sees upward imports, type-only ones too, and unnamed siblings."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "from aift.runtime import Runtime\n"
        "if TYPE_CHECKING:\n"
        "    from aift.api.app import create_app\n"
        "def f():\n"
        "    import aift.cli\n"
    )
    assert sorted(name for name, _ in _imports(sample)) == [
        "aift.api.app",
        "aift.cli",
        "aift.runtime",
    ]
    assert _layer("aift.runtime") > _layer("aift.jobs.worker")
    assert _sibling_violation("aift.export.service", "aift.training.datasets")
    assert not _sibling_violation("aift.rag.answering", "aift.inference.service")
    assert not _sibling_violation("aift.config", "aift.errors")
