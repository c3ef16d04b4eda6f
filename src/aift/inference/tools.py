"""Tool calling through a model's own chat template.

The template shows the tools to the model (`tools` is passed to it, as transformers and
llama.cpp do); the model answers in the call format its family was trained on, found in
the template's text:
- `hermes` (Qwen 2.5, Hermes, SmolLM3 …): `<tool_call>{"name": …, "arguments": …}</tool_call>`
- `mistral`: `[TOOL_CALLS][{"name": …, "arguments": …}]`
- `json` (Llama 3.x and templates that show no marker): a bare
  `{"name": …, "parameters"|"arguments": …}` object, after `<|python_tag|>` if any.

The generated text is parsed into OpenAI `tool_calls`; only calls of the request's tools
count. When `tool_choice` requires a call (`required`, or a named function), the output
is constrained to that format with the tools' parameter schemas, so it always parses.
While streaming, text that may be the start of a call is held back (`ToolStream`).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Literal

from aift.errors import InvalidInput
from aift.inference.sampling import StopMatcher
from aift.inference.schemas import FunctionCall, StructuredOutput, ToolCall
from aift.inference.structured import JSON_OPTIONS, closed

CallFormat = Literal["hermes", "mistral", "json"]
_OPENERS = {"hermes": "<tool_call>", "mistral": "[TOOL_CALLS]", "json": "{"}


def call_format(template: str) -> CallFormat:
    """The call format a chat template teaches its model."""
    if "<tool_call>" in template:
        return "hermes"
    if "[TOOL_CALLS]" in template:
        return "mistral"
    return "json"


def functions(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """name → parameters schema of OpenAI/Ollama tool definitions (checked)."""
    found = {}
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise InvalidInput('Each tool must be {"type": "function", "function": {…}}.')
        name = function.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise InvalidInput(f"Tool name {name!r} must be 1–64 letters, digits, _ . or -.")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise InvalidInput(f"The parameters of tool {name} must be a JSON schema object.")
        found[name] = parameters
    return found


def chosen(tool_choice: str | dict[str, Any] | None, names: list[str]) -> list[str] | None:
    """The functions a call is required of (None: the model may answer in text)."""
    if tool_choice in (None, "auto", "none"):
        return None
    if tool_choice == "required":
        return names
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        if name not in names:
            raise InvalidInput(f"tool_choice names {name!r}, which is not among the tools.")
        return [name]
    raise InvalidInput('tool_choice must be "none", "auto", "required" or a named function.')


def required_call(
    form: CallFormat, parameters: dict[str, dict[str, Any]], names: list[str]
) -> StructuredOutput:
    """A grammar that makes the output one call of one of `names`, in `form`."""
    key = "parameters" if form == "json" else "arguments"
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": name}, key: closed(parameters[name])},
            "required": ["name", key],
            "additionalProperties": False,
        }
        for name in names
    ]
    schema: dict[str, Any] = {"anyOf": options} if len(options) > 1 else dict(options[0])
    schema["x-guidance"] = JSON_OPTIONS  # no free whitespace inside the call either
    call = json.dumps(schema)
    if form == "hermes":
        lark = f'start: "<tool_call>" call "</tool_call>"\ncall: %json {call}'
    elif form == "mistral":
        lark = f'start: "[TOOL_CALLS][" call "]"\ncall: %json {call}'
    else:
        lark = f"start: call\ncall: %json {call}"
    return StructuredOutput(type="lark", pattern=lark)


def parse_calls(text: str, form: CallFormat, names: set[str]) -> tuple[str, list[ToolCall]]:
    """(the text that is not a call, the calls of known tools) of a generated answer."""
    calls: list[ToolCall] = []
    rest = text
    if form == "hermes":
        for match in re.finditer(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", text, re.S):
            calls += _calls_in(match.group(1), names)
        if calls:
            rest = re.sub(r"<tool_call>.*?(?:</tool_call>|$)", "", text, flags=re.S)
    elif form == "mistral" and "[TOOL_CALLS]" in text:
        before, _, after = text.partition("[TOOL_CALLS]")
        calls = _calls_in(after.strip(), names)
        rest = before if calls else text
    else:
        body = text.strip().removeprefix("<|python_tag|>").strip()
        if body.startswith(("{", "[")):
            calls = _calls_in(body, names)
            rest = "" if calls else text
    return rest.strip(), calls


def _calls_in(body: str, names: set[str]) -> list[ToolCall]:
    try:
        value = json.loads(body)
    except ValueError:
        return []
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in names:
            continue
        arguments = item.get("arguments", item.get("parameters", {}))
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                continue
        calls.append(
            ToolCall(
                id=f"call_{uuid.uuid4().hex[:20]}",
                function=FunctionCall(name=item["name"], arguments=json.dumps(arguments)),
            )
        )
    return calls


class ToolStream:
    """Streams an answer's text unless it may be a tool call: text that begins like a
    call (or, in the hermes and mistral formats, from the call's opening marker on) is
    held back until the end."""

    def __init__(self, form: CallFormat, names: set[str]) -> None:
        self.form, self.names = form, names
        self.text = ""
        self.sent = 0  # characters of `text` shown as content
        self._holding = False
        # a marker format: hold back what may still become the marker, stop at it
        self._marker = StopMatcher([_OPENERS[form]]) if form != "json" else None

    def feed(self, piece: str) -> str:
        """The part of the new text that is safe to show as content now."""
        self.text += piece
        if self._holding:
            return ""
        if self._marker is not None:
            out, self._holding = self._marker.feed(piece)
        else:
            start = self.text.lstrip()
            body = start.removeprefix("<|python_tag|>").lstrip()
            if not start or body[:1] in ("{", "[") or "<|python_tag|>".startswith(start):
                self._holding = bool(start)
                return ""
            out = self.text[self.sent :]
        self.sent += len(out)
        return out

    def finish(self) -> tuple[str, list[ToolCall]]:
        """(content not yet shown, the calls) once the generation has ended."""
        content, calls = parse_calls(self.text, self.form, self.names)
        if not calls:
            return self.text[self.sent :], []
        shown = self.text[: self.sent].strip()
        return (content[len(shown) :].strip() if content.startswith(shown) else ""), calls
