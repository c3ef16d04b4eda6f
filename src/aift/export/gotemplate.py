"""A renderer for the part of Go's text/template that Ollama chat templates use.

Ollama renders a Modelfile's TEMPLATE with Go's text/template. To check, before a model
ships, that a translated TEMPLATE renders conversations exactly as the model's Jinja
chat template does, aift renders it here: text and `{{ }}` actions with `-` trim
markers, `if`/`else if`/`else`/`end`, `range` (with `$i, $m :=`), `with`, pipelines
with parentheses, fields (`.Role`, `$.System`), variables, string/number literals and
the functions eq, ne, lt, le, gt, ge, and, or, not, len, index, slice. Anything else is
an error, never a silent guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|:=|,|[^\s(),]+)')


class TemplateError(ValueError):
    """The template uses something this renderer does not implement, or is malformed."""


@dataclass
class _Node:
    kind: str  # text | output | if | range | with
    text: str = ""
    expr: list[str] = field(default_factory=list)
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def _lex(source: str) -> list[tuple[str, str]]:
    """('text', s) and ('action', s) items, with trim markers applied to the texts."""
    items: list[tuple[str, str]] = []
    position = 0
    trim_next = False
    for match in _ACTION.finditer(source):
        text = source[position : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        if text:
            items.append(("text", text))
        items.append(("action", match.group(2).strip()))
        trim_next = bool(match.group(3))
        position = match.end()
    tail = source[position:]
    if trim_next:
        tail = tail.lstrip()
    if tail:
        items.append(("text", tail))
    return items


def _tokens(expr: str) -> list[str]:
    tokens = _TOKEN.findall(expr)
    if "".join(tokens).replace(" ", "") != expr.replace(" ", "").replace("\n", "").replace(
        "\t", ""
    ):
        raise TemplateError(f"cannot read action {expr!r}")
    return tokens


def _parse(
    items: list[tuple[str, str]], position: int, stop: set[str]
) -> tuple[list[_Node], int, str]:
    """Nodes until one of the `stop` keywords; returns (nodes, next position, the keyword)."""
    nodes: list[_Node] = []
    while position < len(items):
        kind, value = items[position]
        position += 1
        if kind == "text":
            nodes.append(_Node("text", text=value))
            continue
        if value.startswith("/*"):
            continue
        word = value.split(None, 1)[0] if value else ""
        if word in ("end", "else") and (word in stop):
            return nodes, position - 1, value
        if word in ("if", "with", "range"):
            node, position = _parse_block(items, position, word, value[len(word) :].strip())
            nodes.append(node)
        elif word in ("end", "else"):
            raise TemplateError(f"unexpected {{{{ {value} }}}}")
        elif word in ("define", "template", "block", "break", "continue"):
            raise TemplateError(f"{{{{ {word} }}}} is not supported")
        else:
            nodes.append(_Node("output", expr=_tokens(value)))
    if stop:
        raise TemplateError("missing {{ end }}")
    return nodes, position, ""


def _parse_block(
    items: list[tuple[str, str]], position: int, word: str, expr: str
) -> tuple[_Node, int]:
    node = _Node(word)
    tokens = _tokens(expr)
    if word == "range" and ":=" in tokens:
        split = tokens.index(":=")
        node.names = [t for t in tokens[:split] if t != ","]
        tokens = tokens[split + 1 :]
    node.expr = tokens
    node.body, position, keyword = _parse(items, position, {"end", "else"})
    position += 1
    if keyword.startswith("else"):
        rest = keyword[4:].strip()
        if rest.startswith("if ") or rest.startswith("with "):
            inner_word = rest.split(None, 1)[0]
            inner, position = _parse_block(
                items, position, inner_word, rest[len(inner_word) :].strip()
            )
            node.orelse = [inner]
            return node, position
        node.orelse, position, keyword = _parse(items, position, {"end"})
        position += 1
    return node, position


def truthy(value: Any) -> bool:
    """Go's notion of a true value: not false, zero, nil or empty."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def _field(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        if name not in value:
            return None
        return value[name]
    raise TemplateError(f"cannot read field {name} of {type(value).__name__}")


_FUNCS: dict[str, Callable[..., Any]] = {
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "not": lambda a: not truthy(a),
    "len": lambda a: len(a),
    "index": lambda a, *keys: _index(a, keys),
    "slice": lambda a, *bounds: a[slice(*bounds)],
}


def _index(value: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        value = value[key]
    return value


class _Scope:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.dot = root
        self.variables: dict[str, Any] = {"$": root}

    def operand(self, token: str) -> Any:
        if token.startswith('"'):
            return bytes(token[1:-1], "utf-8").decode("unicode_escape")
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        if token in ("true", "false"):
            return token == "true"
        if token == "nil":
            return None
        if token == ".":
            return self.dot
        if token.startswith("."):
            value = self.dot
            for name in token[1:].split("."):
                value = _field(value, name)
            return value
        if token.startswith("$"):
            head, *fields = token.split(".")
            if head not in self.variables:
                raise TemplateError(f"undefined variable {head}")
            value = self.variables[head]
            for name in fields:
                value = _field(value, name)
            return value
        raise TemplateError(f"unknown word {token!r}")

    def evaluate(self, tokens: list[str]) -> Any:
        args: list[Any] = []
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if token == "(":
                depth, end = 0, position
                for end in range(position, len(tokens)):
                    depth += {"(": 1, ")": -1}.get(tokens[end], 0)
                    if depth == 0:
                        break
                value = self.evaluate(tokens[position + 1 : end])
                position = end + 1
                while (
                    position < len(tokens)
                    and tokens[position].startswith(".")
                    and tokens[position] != "."
                ):
                    for name in tokens[position][1:].split("."):
                        value = _field(value, name)
                    position += 1
                args.append(("value", value))
                continue
            args.append(("word", token))
            position += 1
        if not args:
            raise TemplateError("empty pipeline")
        kind, head = args[0]
        if kind == "word" and head in ("and", "or"):
            values = args[1:]
            result: Any = None
            for item in values:
                result = self._resolve(item)
                if (head == "and") != truthy(result):
                    return result
            return result
        if kind == "word" and head in _FUNCS:
            return _FUNCS[head](*[self._resolve(item) for item in args[1:]])
        if len(args) != 1:
            raise TemplateError(f"cannot call {head!r}")
        return self._resolve(args[0])

    def _resolve(self, item: tuple[str, Any]) -> Any:
        kind, value = item
        return value if kind == "value" else self.operand(value)


def _run(nodes: list[_Node], scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "output":
            value = scope.evaluate(node.expr)
            out.append("" if value is None else str(value))
        elif node.kind in ("if", "with"):
            value = scope.evaluate(node.expr)
            if truthy(value):
                saved = scope.dot
                if node.kind == "with":
                    scope.dot = value
                _run(node.body, scope, out)
                scope.dot = saved
            else:
                _run(node.orelse, scope, out)
        elif node.kind == "range":
            items = scope.evaluate(node.expr) or []
            if not truthy(items):
                _run(node.orelse, scope, out)
                continue
            saved = scope.dot
            pairs = items.items() if isinstance(items, dict) else enumerate(items)
            for key, item in pairs:
                if len(node.names) == 2:
                    scope.variables[node.names[0]] = key
                    scope.variables[node.names[1]] = item
                elif len(node.names) == 1:
                    scope.variables[node.names[0]] = item
                scope.dot = item
                _run(node.body, scope, out)
            scope.dot = saved


def render(template: str, data: dict[str, Any]) -> str:
    """Render a Go text/template (the subset above) with `data` as dot."""
    nodes, _, _ = _parse(_lex(template), 0, set())
    out: list[str] = []
    _run(nodes, _Scope(data), out)
    return "".join(out)
