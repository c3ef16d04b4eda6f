"""The preference rate a run reports before and after: the share of pairs whose chosen
reply the model finds likelier, computed on a real (tiny, random) model."""

from __future__ import annotations

from pathlib import Path

import pytest

from aift.training.scoring import preference_rate, reply_logprob


def pair(question: str, chosen: str, rejected: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": question}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def test_the_rate_counts_the_pairs_whose_chosen_reply_is_likelier(
    tiny_chat_model_dir: Path,
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_chat_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model_dir)
    pairs = [
        pair("What is 2 + 3?", "5.", "It is five, I think, but let me check again."),
        pair("Name a colour.", "Blue is a colour people often name.", "Red."),
        pair("Say hi.", "Hello there!", "Hi."),
    ]
    scores = [
        reply_logprob(model, tokenizer, p["prompt"] + p[side], 128)
        for p in pairs
        for side in ("chosen", "rejected")
    ]
    expected = sum(scores[i] > scores[i + 1] for i in range(0, 6, 2)) / 3
    assert preference_rate(model, tokenizer, pairs, 128) == expected
    swapped = [{**p, "chosen": p["rejected"], "rejected": p["chosen"]} for p in pairs]
    assert preference_rate(model, tokenizer, swapped, 128) == pytest.approx(1 - expected)
    same = [{**p, "rejected": p["chosen"]} for p in pairs]
    assert preference_rate(model, tokenizer, same, 128) == 0.0, "a tie is no win"
    assert preference_rate(model, tokenizer, [], 128) is None
    assert all(s < 0 for s in scores)
