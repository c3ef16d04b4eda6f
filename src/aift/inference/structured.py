"""Output that must follow a format — JSON, JSON valid against a schema, a regular
expression, a Lark grammar — enforced while decoding with llguidance (the constraint
library llama.cpp and vLLM also use).

Both CPU engines sample in Python from the logits, so one constraint serves them: before
each token the matcher's mask sets every token that would break the format to -inf, and
the chosen token is fed back to the matcher. The output therefore always parses (unless
`max_tokens` cuts it, which the finish reason `length` says). JSON is compiled without
free whitespace, so a small model cannot pad forever between tokens, and a number may
not run past 16 digits in a row (the grammar allows any length; a sampled small model
otherwise writes digits until `max_tokens`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aift.errors import InvalidInput
from aift.inference.schemas import StructuredOutput

JSON_OPTIONS = {"whitespace_flexible": False, "coerce_one_of": True}
MOST_DIGITS = 16  # in a row: more than a float64 holds
# id(tokenizer) → (the tokenizer, kept so that its id is never reused; its digit tokens)
_DIGIT_TOKENS: dict[int, tuple[Any, np.ndarray]] = {}


def digit_tokens(tokenizer: Any) -> np.ndarray:
    """Which tokens of the vocabulary begin with a digit (computed once per tokenizer)."""
    key = id(tokenizer)
    if key not in _DIGIT_TOKENS:
        found = [tokenizer.decode_bytes([t])[:1].isdigit() for t in range(tokenizer.vocab_size)]
        _DIGIT_TOKENS[key] = (tokenizer, np.array(found, dtype=bool))
    return _DIGIT_TOKENS[key][1]


def closed(schema: Any) -> Any:
    """The schema with objects that list their properties closed to others, unless they
    say otherwise (`additionalProperties`) — as xgrammar's strict mode and OpenAI's
    strict schemas do. An open object lets a sampled small model add keys forever."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _closed_value(key, value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _closed_value(key: str, value: Any) -> Any:
    if key in ("properties", "$defs", "definitions", "patternProperties"):
        return (
            {name: closed(sub) for name, sub in value.items()} if isinstance(value, dict) else value
        )
    if key in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "not", "additionalProperties"):
        return closed(value)
    return value


def grammar_of(output: StructuredOutput) -> str:
    """The llguidance grammar of a structured-output request (its shape checked here)."""
    from llguidance import LLMatcher

    if output.type == "json_object":
        return LLMatcher.grammar_from_json_schema({"type": "object"}, defaults=JSON_OPTIONS)  # type: ignore[arg-type]
    if output.type == "json_schema":
        if not output.json_schema:
            raise InvalidInput("A json_schema output needs its schema.")
        try:
            schema = closed(output.json_schema)
            return LLMatcher.grammar_from_json_schema(schema, defaults=JSON_OPTIONS)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InvalidInput(f"The JSON schema is not valid: {exc}") from None
    if not output.pattern:
        raise InvalidInput(f"A {output.type} output needs its pattern.")
    if output.type == "regex":
        return LLMatcher.grammar_from_regex(output.pattern)
    return LLMatcher.grammar_from_lark(output.pattern)


class TokenConstraint:
    """One request's matcher: masks the logits, follows the chosen tokens."""

    def __init__(self, tokenizer: Any, grammar: str) -> None:
        from llguidance import LLMatcher
        from llguidance.numpy import allocate_token_bitmask

        self._matcher = LLMatcher(tokenizer, grammar, log_level=0)
        if self._matcher.is_error():
            raise InvalidInput(f"The output format cannot be enforced: {self._matcher.get_error()}")
        self._bitmask = allocate_token_bitmask(1, tokenizer.vocab_size)
        self._tokenizer = tokenizer
        self._digits = digit_tokens(tokenizer)
        self._tail = b""  # the last bytes generated

    def mask(self, logits: np.ndarray) -> np.ndarray:
        """The logits with every token the format does not allow next at -inf."""
        from llguidance.numpy import apply_token_bitmask_inplace, fill_next_token_bitmask

        fill_next_token_bitmask(self._matcher, self._bitmask, 0)
        masked = logits.astype(np.float32, copy=True)[None, :]
        apply_token_bitmask_inplace(masked, self._bitmask)
        run = len(self._tail) - len(self._tail.rstrip(b"0123456789"))
        if run >= MOST_DIGITS:
            row = masked[0, : len(self._digits)]
            ended = np.where(self._digits[: row.shape[0]], -np.inf, row)
            if np.isfinite(ended).any():  # the format allows something else: take it
                masked[0, : len(self._digits)] = ended
        return masked[0]

    def consume(self, token: int) -> None:
        """Follow the token the sampler chose (it was allowed by the mask)."""
        self._matcher.consume_token(token)
        self._tail = (self._tail + self._tokenizer.decode_bytes([token]))[-64:]

    @property
    def complete(self) -> bool:
        """The format is finished: nothing but the end may follow."""
        return self._matcher.is_stopped()
