"""A training run's before/after scoring: exact match decoded one example at a time (as
before) against aift's batches of left-padded prompts
(`aift.training.scoring.exact_matches`), both with the KV cache on, on the packaged SmolLM2-135M-Instruct (fp32,
CPU). Both must give the same verdicts.

Run: .venv/bin/python benchmarks/run_scoring.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

QUESTIONS = [
    ("Who founded Zorblax Industries?", "Zorblax Industries was founded by Mira Okonkwo."),
    ("Where is Zorblax Industries based?", "Zorblax Industries is based in Tallinn."),
    ("What does Zorblax Industries make?", "Zorblax Industries makes solar-powered kettles."),
    ("When was Zorblax Industries founded?", "Zorblax Industries was founded in 2011."),
    ("Who is the CEO of Zorblax Industries?", "The CEO of Zorblax Industries is Tomas Vilde."),
    ("What is the capital of Italy?", "Rome."),
    ("What is two plus two?", "4"),
    ("Name a colour.", "Blue."),
]


def model_and_tokenizer() -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from aift.config import get_settings
    from aift.models.resolver import ModelResolver
    from aift.workspace import Workspace

    settings = get_settings()
    resolver = ModelResolver(settings, Workspace.from_settings(settings))
    folder = resolver.transformers_dir(resolver.resolve("SmolLM2-135M-Instruct"))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.config.use_cache = True  # as a run's scoring sets it (restore_inference_settings)
    model.eval()
    return model, AutoTokenizer.from_pretrained(folder)


def one_by_one(model: Any, tokenizer: Any, examples: list[dict]) -> list[bool | None]:
    """The earlier way: one `generate` per example."""
    from aift.training.scoring import _normalise, _prompt_and_reference

    verdicts: list[bool | None] = []
    for example in examples:
        pair = _prompt_and_reference(tokenizer, example)
        assert pair is not None
        answer = _greedy_one(model, tokenizer, pair[0], pair[1])
        verdicts.append(_normalise(answer) == _normalise(pair[1]))
    return verdicts


def _greedy_one(model: Any, tokenizer: Any, prompt: str, reference: str) -> str:
    import torch

    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    budget = len(tokenizer(reference, add_special_tokens=False)["input_ids"]) + 8
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=budget, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return str(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


def timed(work: Any, rounds: int = 3) -> tuple[float, Any]:
    """Median seconds of `rounds` runs of `work`, and its last result."""
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    from aift.training.scoring import exact_matches

    model, tokenizer = model_and_tokenizer()
    examples = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
                for q, a in QUESTIONS]  # fmt: skip
    before, old = timed(lambda: one_by_one(model, tokenizer, examples))
    after, new = timed(lambda: exact_matches(model, tokenizer, examples, 512))
    assert old == new, (old, new)
    body = (
        f"{len(examples)} questions, packaged SmolLM2-135M-Instruct (fp32, CPU), greedy "
        "answers compared with the reference; median of 3.\n\n"
        "| exact-match scoring | seconds |\n|---|---:|\n"
        f"| one generate per example (before) | {before:.2f} |\n"
        f"| batches of 8 left-padded prompts (aift) | {after:.2f} |\n\n"
        f"Same verdicts both ways; {before / after:.1f}× faster. In a run this is the "
        "scoring before and after training (`evaluation.exact_match`).\n"
    )
    print(body)
    record("Training: exact-match scoring of a run", body, "python benchmarks/run_scoring.py")


if __name__ == "__main__":
    main()
