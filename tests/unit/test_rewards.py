"""GRPO's declared rewards: each kind scores what it says, and rows it cannot score are
found before a run starts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aift.answer_match import normalize
from aift.errors import CapabilityMissing, InvalidInput
from aift.rag.attribution import supported_share
from aift.training.rewards import (
    check_specs,
    json_value,
    last_number,
    page_key,
    reward_functions,
    row_errors,
)
from aift.training.schemas import RewardSpec


def scores(spec: dict, completions: list[str], answers: list[str | None]) -> list[float]:
    functions = reward_functions([RewardSpec(**spec)])
    chat = [[{"role": "assistant", "content": c}] for c in completions]  # trl's chat shape
    return functions[0](prompts=[None] * len(chat), completions=chat, answer=answers)


def test_answer_comparisons() -> None:
    completions = ["Paris", " paris. ", "The capital is Paris.", "Lyon"]
    answers = ["Paris"] * 4
    assert scores({"kind": "exact"}, completions, answers) == [1, 0, 0, 0]
    assert scores({"kind": "normalized"}, completions, answers) == [1, 1, 0, 0]
    assert scores({"kind": "contains"}, completions, answers) == [1, 1, 1, 0]
    assert normalize("The  Answer, is: 서울!") == "answer is 서울"


def test_numbers_are_read_from_prose_within_a_tolerance() -> None:
    completions = ["It is 1,234.5 in total.", "about 1234", "no idea", "-3"]
    answers = ["1234.5", "#### 1234.5", "7", "-3.0"]
    assert scores({"kind": "numeric"}, completions, answers) == [1, 0, 0, 1]
    assert scores({"kind": "numeric", "tolerance": 0.5}, completions, answers) == [1, 1, 0, 1]
    assert last_number("step 1: 3 apples, so 12") == 12.0 and last_number("none") is None


def test_format_rewards_need_no_answer() -> None:
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    completions = ['{"city": "Seoul"}', '```json\n{"city": "Seoul"}\n```', '{"town": 1}', "Seoul"]
    assert scores({"kind": "json_schema", "json_schema": schema}, completions, [None] * 4) == [
        1,
        1,
        0,
        0,
    ]
    assert scores({"kind": "regex", "pattern": r"^\d+\.$"}, ["12.", "12", "a 12."], [None] * 3) == [
        1,
        0,
        0,
    ]
    assert scores({"kind": "length", "max_chars": 5}, ["short", "too long"], [None, None]) == [1, 0]
    assert scores({"kind": "length", "min_chars": 3}, ["ab", "abcd"], [None, None]) == [0, 1]
    with pytest.raises(ValueError):
        json_value("not json")


def test_weights_and_metric_names_follow_the_declaration() -> None:
    functions = reward_functions(
        [
            RewardSpec(kind="numeric"),
            RewardSpec(kind="length", max_chars=9, weight=-0.5),
            RewardSpec(kind="model", model="judge"),
        ],
        models={"judge": "/models/judge"},
    )
    names = [f if isinstance(f, str) else f.__name__ for f in functions]
    assert names == ["1_numeric", "2_length", "/models/judge"]  # trl loads a model by folder


def test_cites_page_scores_what_the_rows_page_supports() -> None:
    page = (
        "The coolant pump runs at 40 litres per minute. "
        "Replace the filter every six months. The warranty lasts two years."
    )
    pages = {page_key("manual.pdf", 3): page}
    seen: list[tuple[str, float]] = []

    def support(text: str, source: str, threshold: float) -> float:
        seen.append((source, threshold))
        return supported_share(text, source, threshold)

    spec = RewardSpec(kind="cites_page", knowledge_base="manuals", threshold=0.5)
    function = reward_functions([spec], pages=pages, support=support)[0]
    assert not isinstance(function, str) and function.__name__ == "1_cites_page"
    completions = [
        "The coolant pump runs at 40 litres per minute [1].",
        "The pump runs at 40 litres per minute. The moon is made of green cheese.",
        "Bananas are yellow.",
        "The coolant pump runs at 40 litres per minute.",
    ]
    got = function(
        prompts=[None] * 4,
        completions=completions,
        document=["manual.pdf", "manual.pdf", "manual.pdf", "other.pdf"],
        page=[3, 3, 3, 3],
    )
    assert got == [1.0, 0.5, 0.0, 0.0]  # the last row's page is not this one
    assert seen[0] == (page, 0.5)
    assert supported_share("", page, 0.35) == 0.0
    with pytest.raises(CapabilityMissing):
        reward_functions([spec], pages=pages)


def test_model_and_cites_page_declarations_name_what_they_use() -> None:
    with pytest.raises(ValidationError, match="needs the model"):
        RewardSpec(kind="model")
    with pytest.raises(ValidationError, match="needs its knowledge_base"):
        RewardSpec(kind="cites_page")
    check_specs(
        [RewardSpec(kind="model", model="m"), RewardSpec(kind="cites_page", knowledge_base="k")]
    )


def test_incomplete_or_broken_declarations_are_refused() -> None:
    with pytest.raises(ValidationError, match="needs its pattern"):
        RewardSpec(kind="regex")
    with pytest.raises(ValidationError, match="needs its json_schema"):
        RewardSpec(kind="json_schema")
    with pytest.raises(ValidationError, match="min_chars or max_chars"):
        RewardSpec(kind="length")
    with pytest.raises(InvalidInput, match="Reward 2 \\(regex\\): bad pattern"):
        check_specs([RewardSpec(kind="exact"), RewardSpec(kind="regex", pattern="(")])
    with pytest.raises(InvalidInput, match="bad schema"):
        check_specs([RewardSpec(kind="json_schema", json_schema={"type": 5})])


def test_rows_a_reward_cannot_score_are_each_named() -> None:
    rows = [{"answer": "4"}, {"answer": None}, {"answer": "four"}, {}]
    errors = row_errors([RewardSpec(kind="numeric")], rows)
    assert [e.row for e in errors] == [2, 3, 4]
    assert "no number in its answer 'four'" in errors[1].reason
    assert row_errors([RewardSpec(kind="regex", pattern="x")], rows) == []
    assert [e.row for e in row_errors([RewardSpec(kind="exact")], rows)] == [2, 4]
    cited = [{"document": "a.pdf", "page": 2}, {"document": None, "page": None}, {}]
    errors = row_errors([RewardSpec(kind="cites_page", knowledge_base="k")], cited)
    assert [e.row for e in errors] == [2, 3] and "no document and page" in errors[0].reason
