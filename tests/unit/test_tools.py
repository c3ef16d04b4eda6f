"""Tool calls: formats found in templates, parsing, streaming hold-back, forced calls."""

from __future__ import annotations

import json

import pytest

from aift.errors import InvalidInput
from aift.inference.structured import grammar_of
from aift.inference.tools import (
    ToolStream,
    call_format,
    chosen,
    functions,
    parse_calls,
    required_call,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def check_grammar(grammar: str) -> None:
    from llguidance import LLMatcher

    failed, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    assert not failed, messages


def test_the_call_format_comes_from_the_template() -> None:
    assert call_format("{% if tools %}… <tool_call> … {% endif %}") == "hermes"
    assert call_format("[AVAILABLE_TOOLS] … [TOOL_CALLS] …") == "mistral"
    assert call_format("<|python_tag|> {{ tools }}") == "json"


def test_calls_are_parsed_in_each_format_and_unknown_tools_ignored() -> None:
    names = {"weather"}
    text, calls = parse_calls(
        'Let me check. <tool_call>{"name": "weather", "arguments": {"city": "Oslo"}}</tool_call>',
        "hermes",
        names,
    )
    assert text == "Let me check." and calls[0].function.name == "weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Oslo"}
    _, calls = parse_calls(
        '[TOOL_CALLS][{"name": "weather", "arguments": {"city": "Bergen"}}]', "mistral", names
    )
    assert json.loads(calls[0].function.arguments) == {"city": "Bergen"}
    text, calls = parse_calls(
        '<|python_tag|>{"name": "weather", "parameters": {"city": "Tromsø"}}', "json", names
    )
    assert text == "" and json.loads(calls[0].function.arguments) == {"city": "Tromsø"}
    text, calls = parse_calls('{"name": "launch", "arguments": {}}', "json", names)
    assert calls == [] and "launch" in text  # not a tool of the request: plain text
    assert parse_calls("It is sunny.", "hermes", names) == ("It is sunny.", [])


def test_streaming_holds_back_only_what_may_be_a_call() -> None:
    watch = ToolStream("hermes", {"weather"})
    shown = "".join(watch.feed(p) for p in ["Checking", " now <tool", '_call>{"name": "weather", '])
    shown += watch.feed('"arguments": {"city": "Oslo"}}</tool_call>')
    rest, calls = watch.finish()
    assert shown == "Checking now " and rest == "" and calls[0].function.name == "weather"
    plain = ToolStream("json", {"weather"})
    assert plain.feed("Hello") == "Hello" and plain.feed(" there") == " there"
    assert plain.finish() == ("", [])
    held = ToolStream("json", {"weather"})
    assert held.feed('{"name": "weather", ') == "" and held.feed('"parameters": {}}') == ""
    rest, calls = held.finish()
    assert rest == "" and len(calls) == 1


def test_required_calls_compile_to_a_grammar_and_choices_are_checked() -> None:
    specs = functions([WEATHER])
    for form in ("hermes", "mistral", "json"):
        check_grammar(grammar_of(required_call(form, specs, ["weather"])))
    assert chosen("required", ["weather"]) == ["weather"]
    assert chosen({"type": "function", "function": {"name": "weather"}}, ["weather"]) == ["weather"]
    assert chosen("auto", ["weather"]) is None
    with pytest.raises(InvalidInput, match="not among the tools"):
        chosen({"type": "function", "function": {"name": "launch"}}, ["weather"])
    with pytest.raises(InvalidInput, match="letters, digits"):
        functions([{"type": "function", "function": {"name": "no spaces allowed"}}])


def test_only_models_trained_for_it_give_shorter_vectors() -> None:
    import numpy as np

    from aift.inference.matryoshka import shorten

    vectors = [[3.0, 4.0, 12.0, 0.0] * 32, [1.0] * 128]
    cut = shorten("nomic-ai/nomic-embed-text-v1.5", vectors, 64)
    assert [len(v) for v in cut] == [64, 64]
    assert np.allclose(np.linalg.norm(cut, axis=1), 1.0)
    assert shorten("all-MiniLM-L6-v2", vectors, 128) is vectors  # its own size: as is
    with pytest.raises(InvalidInput, match="not trained to be shortened"):
        shorten("all-MiniLM-L6-v2", vectors, 64)
    with pytest.raises(InvalidInput, match="64 to 128"):
        shorten("nomic-embed-text-v1.5", vectors, 16)


def test_calls_a_remote_ollama_parsed_are_read_back_as_calls() -> None:
    from ollama import ChatResponse

    from aift.inference.engines.ollama import _chat_text

    chunk = ChatResponse.model_validate(
        {
            "model": "llama3.2:3b",
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Oslo"}}}],
            },
        }
    )
    text = _chat_text(chunk)
    _, calls = parse_calls(text, "hermes", {"weather"})
    assert json.loads(calls[0].function.arguments) == {"city": "Oslo"}


def test_objects_that_list_properties_are_closed_unless_they_say_otherwise() -> None:
    from aift.inference.structured import closed

    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "object", "properties": {"k": {}}}},
            "extra": {"type": "object", "properties": {}, "additionalProperties": True},
            "free": {"type": "object"},
        },
        "$defs": {"Item": {"properties": {"x": {"type": "integer"}}}},
    }
    out = closed(schema)
    assert out["additionalProperties"] is False
    assert out["properties"]["tags"]["items"]["additionalProperties"] is False
    assert out["properties"]["extra"]["additionalProperties"] is True
    assert "additionalProperties" not in out["properties"]["free"]  # no list: free-form
    assert out["$defs"]["Item"]["additionalProperties"] is False
    assert "additionalProperties" not in schema  # the caller's schema is untouched
