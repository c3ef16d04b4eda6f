"""Preference, KTO and prompt rows: every shape users bring, read into one canonical form,
and each unusable row refused with its reason."""

from __future__ import annotations

import json

import pytest

from aift.training.formats import detect_format, normalise
from aift.training.preference_formats import as_prompt, unpaired
from aift.training.schemas import DatasetFormat

USER = {"role": "user", "content": "What is 2 + 2?"}
FOUR = [{"role": "assistant", "content": "4."}]
RAMBLE = [{"role": "assistant", "content": "Let me think at length. Perhaps 4."}]
CANONICAL = {"prompt": [USER], "chosen": FOUR, "rejected": RAMBLE}


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "What is 2 + 2?", "chosen": "4.", "rejected": RAMBLE[0]["content"]},
        {"prompt": [USER], "chosen": FOUR, "rejected": RAMBLE},
        # UltraFeedback: chosen and rejected are whole conversations repeating the prompt
        {"prompt": USER["content"], "chosen": [USER, *FOUR], "rejected": [USER, *RAMBLE]},
        # Anthropic HH: transcripts sharing all but the last reply
        {
            "chosen": "\n\nHuman: What is 2 + 2?\n\nAssistant: 4.",
            "rejected": "\n\nHuman: What is 2 + 2?\n\nAssistant: " + RAMBLE[0]["content"],
        },
        # chat lists without a prompt, as some exports write them; CSV cells hold JSON
        {"chosen": json.dumps([USER, *FOUR]), "rejected": json.dumps([USER, *RAMBLE])},
        # ShareGPT-style turns
        {
            "prompt": [{"from": "human", "value": USER["content"]}],
            "chosen": [{"from": "gpt", "value": "4."}],
            "rejected": [{"from": "gpt", "value": RAMBLE[0]["content"]}],
        },
    ],
)
def test_every_preference_shape_reads_the_same(row: dict) -> None:
    assert detect_format([row]) == DatasetFormat.preference
    examples, errors = normalise([row], DatasetFormat.preference)
    assert not errors and examples == [CANONICAL]


def test_multi_turn_hh_keeps_the_history_as_the_prompt() -> None:
    history = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: What is 2 + 2?\n\nAssistant:"
    examples, _ = normalise(
        [{"chosen": history + " 4.", "rejected": history + " five"}], DatasetFormat.preference
    )
    assert [m["role"] for m in examples[0]["prompt"]] == ["user", "assistant", "user"]
    assert examples[0]["chosen"] == FOUR
    assert examples[0]["rejected"] == [{"role": "assistant", "content": "five"}]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"prompt": "q", "chosen": "same", "rejected": "same"}, "same `chosen` and `rejected`"),
        ({"prompt": "q", "chosen": "", "rejected": "b"}, "`chosen` is empty"),
        ({"prompt": "q", "chosen": 5, "rejected": "b"}, "neither a text nor a list"),
        ({"chosen": "a", "rejected": "b"}, "has no prompt"),
        (
            {"chosen": "\n\nHuman: x\n\nAssistant: a", "rejected": "\n\nHuman: y\n\nAssistant: b"},
            "differ before their last turn",
        ),
        (
            {"prompt": "q", "chosen": [{"role": "robot", "content": "a"}], "rejected": "b"},
            "role 'robot'",
        ),
        (
            {"prompt": "q", "chosen": [{"role": "user", "content": "other"}], "rejected": "b"},
            "different user turn",
        ),
        (
            {"prompt": [{"role": "assistant", "content": "hi"}], "chosen": "a", "rejected": "b"},
            "does not end with a user turn",
        ),
    ],
)
def test_unusable_pairs_say_why(row: dict, reason: str) -> None:
    examples, errors = normalise([row], DatasetFormat.preference)
    assert not examples and reason in errors[0].reason, errors


def test_kto_rows_read_their_label_in_every_spelling() -> None:
    rows = [
        {"prompt": "q", "completion": "a", "label": label}
        for label in (True, False, "true", "FALSE", 1, "0", "good", "bad")
    ]
    assert detect_format(rows) == DatasetFormat.kto
    examples, errors = normalise(
        [*rows, {"prompt": "q", "completion": "a", "label": "maybe"}], DatasetFormat.kto
    )
    assert [e["label"] for e in examples] == [True, False, True, False, True, False, True, False]
    assert examples[0]["completion"] == [{"role": "assistant", "content": "a"}]
    assert "label 'maybe'; use true or false" in errors[0].reason


def test_prompt_rows_take_question_and_answer_names_of_common_sets() -> None:
    rows = [
        {"prompt": "What is 2 + 2?", "answer": 4},
        {"question": "Name the colour.", "solution": " blue "},
        {"prompt": [USER], "ground_truth": "4"},
        {"prompt": "Open question"},
    ]
    assert detect_format(rows) == DatasetFormat.prompts
    examples, errors = normalise(rows, DatasetFormat.prompts)
    assert not errors
    assert [e["answer"] for e in examples] == ["4", "blue", "4", None]
    assert examples[1]["prompt"] == [{"role": "user", "content": "Name the colour."}]


def test_prompt_rows_may_name_the_page_that_supports_their_answer() -> None:
    rows = [
        {"prompt": "Pump rate?", "answer": "40", "document": "manual.pdf", "page": 3},
        {"prompt": "Pump rate?", "document": "manual.pdf"},
        {"prompt": "Pump rate?", "document": "manual.pdf", "page": "three"},
        {"prompt": "Pump rate?", "page": 2},
    ]
    examples, errors = normalise(rows, DatasetFormat.prompts)
    assert examples[0]["document"] == "manual.pdf" and examples[0]["page"] == 3
    assert as_prompt(examples[0])["page"] == 3
    assert [e.row for e in errors] == [2, 3, 4]
    assert "page number" in errors[0].reason and "without its `document`" in errors[2].reason


def test_kto_unpairs_preferences_and_grpo_reads_demonstrations() -> None:
    good, bad = unpaired(CANONICAL)
    assert (good["label"], good["completion"]) == (True, FOUR)
    assert (bad["label"], bad["completion"]) == (False, RAMBLE)
    chat = {"messages": [{"role": "system", "content": "Be brief."}, USER, *FOUR]}
    assert as_prompt(chat) == {"prompt": chat["messages"][:2], "answer": "4."}
