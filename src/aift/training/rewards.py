"""GRPO's and RLOO's rewards: declared in the run config, never uploaded code.

Each `RewardSpec` becomes a function with trl's reward signature
(`prompts, completions, answer=…` → one score per completion, in [0, 1]); trl sums them
with the specs' weights. A `model` reward is handed to trl as the reward model's folder
(trl loads it and scores prompt + completion). A `cites_page` reward scores how much of
a completion the row's knowledge-base page supports; the support check is RAG's
attribution, handed in by the caller (`PageSupport`), the page texts read from the
knowledge base at submission. What a reward needs from a row (its reference answer, a
number in it, its page) is checked for every row before the job starts (`row_errors`),
so a run never fails halfway on row 9,000.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from aift.answer_match import normalize
from aift.errors import CapabilityMissing, InvalidInput
from aift.training.schemas import ANSWER_REWARDS, RewardKind, RewardSpec, RowError

RewardFunction = Callable[..., list[float]]
# (completion, page text, threshold) → the share of the completion's statements the page
# supports
PageSupport = Callable[[str, str, float], float]

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")
_FENCE = re.compile(r"^```[A-Za-z]*\s*\n?(.*?)\n?```$", re.DOTALL)


def last_number(text: str) -> float | None:
    """The last number written in a text ("1,234.5" reads as 1234.5), or None."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def json_value(text: str) -> Any:
    """The JSON value a completion holds (a Markdown code fence around it is allowed);
    raises ValueError when it holds none."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    return json.loads(fenced.group(1) if fenced else stripped)


def completion_text(completion: Any) -> str:
    """A completion as text: trl passes chat completions as message lists."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def _scorer(spec: RewardSpec) -> Callable[[str, str | None], float]:
    """The score of one completion (text) against its row's answer, for `spec`."""
    kind = spec.kind
    if kind == RewardKind.exact:
        return lambda text, answer: float(text.strip() == (answer or "").strip())
    if kind == RewardKind.normalized:
        return lambda text, answer: float(normalize(text) == normalize(answer or ""))
    if kind == RewardKind.contains:
        return lambda text, answer: float(
            bool(answer) and normalize(answer or "") in normalize(text)
        )
    if kind == RewardKind.numeric:
        return lambda text, answer: _numeric(text, answer, spec.tolerance)
    if kind == RewardKind.regex:
        pattern = re.compile(spec.pattern or "")
        return lambda text, answer: float(pattern.search(text) is not None)
    if kind == RewardKind.json_schema:
        import jsonschema_rs

        validator = jsonschema_rs.validator_for(spec.json_schema or {})
        return lambda text, answer: _json_valid(validator, text)
    if kind == RewardKind.length:
        low, high = spec.min_chars, spec.max_chars
        return lambda text, answer: float(low <= len(text.strip()) <= (high or len(text.strip())))
    raise TypeError(f"a {kind.value} reward is not a text rule")


def _numeric(text: str, answer: str | None, tolerance: float) -> float:
    got, expected = last_number(text), last_number(answer or "")
    if got is None or expected is None:
        return 0.0
    return float(abs(got - expected) <= tolerance)


def _json_valid(validator: Any, text: str) -> float:
    try:
        return float(validator.is_valid(json_value(text)))
    except ValueError:
        return 0.0


def reward_function(spec: RewardSpec, index: int) -> RewardFunction:
    """trl's reward function of one spec, named `<index>_<kind>` (its metric name)."""
    score = _scorer(spec)

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        answers = columns.get("answer") or [None] * len(completions)
        return [score(completion_text(c), a) for c, a in zip(completions, answers, strict=True)]

    reward.__name__ = f"{index}_{spec.kind.value}"
    return reward


def page_key(document: str, page: int) -> str:
    """How a cites_page reward's page texts are keyed: `document#page`."""
    return f"{document}#{page}"


def cites_page_function(
    spec: RewardSpec, index: int, pages: dict[str, str], support: PageSupport | None
) -> RewardFunction:
    """trl's reward function of a cites_page spec: the share of each completion's
    statements that its row's page supports (0 for a row without its page)."""
    if support is None:
        raise CapabilityMissing("A cites_page reward needs the knowledge base's attribution.")

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        documents = columns.get("document") or [None] * len(completions)
        numbers = columns.get("page") or [None] * len(completions)
        scores = []
        for completion, document, number in zip(completions, documents, numbers, strict=True):
            text = pages.get(page_key(document, number)) if document and number else None
            scores.append(
                support(completion_text(completion), text, spec.threshold) if text else 0.0
            )
        return scores

    reward.__name__ = f"{index}_{RewardKind.cites_page.value}"
    return reward


def reward_functions(
    specs: list[RewardSpec],
    models: dict[str, str] | None = None,
    pages: dict[str, str] | None = None,
    support: PageSupport | None = None,
) -> list[RewardFunction | str]:
    """The rewards of a run in trl's terms, in order: a function per declared reward, the
    folder of each reward model (`models`: served name → folder)."""
    out: list[RewardFunction | str] = []
    for index, spec in enumerate(specs, start=1):
        if spec.kind == RewardKind.model:
            out.append((models or {})[spec.model or ""])
        elif spec.kind == RewardKind.cites_page:
            out.append(cites_page_function(spec, index, pages or {}, support))
        else:
            out.append(reward_function(spec, index))
    return out


def check_specs(specs: list[RewardSpec]) -> None:
    """Refuse a pattern that does not compile or a schema that is not a JSON schema."""
    for index, spec in enumerate(specs, start=1):
        if spec.kind in (RewardKind.model, RewardKind.cites_page):
            continue  # checked against the registry and the knowledge base
        try:
            _scorer(spec)
        except re.error as exc:
            raise InvalidInput(f"Reward {index} ({spec.kind.value}): bad pattern: {exc}") from None
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise InvalidInput(f"Reward {index} ({spec.kind.value}): bad schema: {first}") from None


def row_errors(specs: list[RewardSpec], examples: list[dict[str, Any]]) -> list[RowError]:
    """Rows a declared reward cannot score: no reference answer where one is compared,
    no number in it for a numeric reward, no page for a cites_page reward (rows count
    from 1)."""
    needs_answer = [s for s in specs if s.kind in ANSWER_REWARDS]
    numeric = any(s.kind == RewardKind.numeric for s in specs)
    cites = any(s.kind == RewardKind.cites_page for s in specs)
    errors = []
    for number, example in enumerate(examples, start=1):
        answer = example.get("answer")
        if cites and not (example.get("document") and example.get("page")):
            errors.append(
                RowError(row=number, reason=f"row {number} names no document and page to cite")
            )
        elif needs_answer and not answer:
            kinds = ", ".join(sorted({s.kind.value for s in needs_answer}))
            errors.append(RowError(row=number, reason=f"row {number} has no answer for {kinds}"))
        elif numeric and last_number(answer or "") is None:
            errors.append(
                RowError(row=number, reason=f"row {number} has no number in its answer {answer!r}")
            )
    return errors
