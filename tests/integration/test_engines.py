"""The CPU engines on real models: batching keeps outputs independent, adapters, limits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from aift.inference.engines.base import PromptTooLong
from aift.inference.engines.llamacpp import LlamaCppEngine
from aift.inference.engines.transformers import TransformersEngine
from aift.inference.schemas import ChatMessage, FinishReason, SamplingParams
from aift.models.packaged import SMOLLM2
from aift.models.schemas import ModelFormat, ModelSource, ResolvedModel

GREEDY = SamplingParams(temperature=0, max_tokens=24)
PROMPTS = [
    "Hello there",
    "Tell me a story about a dragon who",
    "1 2 3 4",
    "Why is the sky blue? Explain in detail, please, because I want to know",
]
# For the real model: prompts whose continuations are unmistakable, so each output can be
# checked against its own prompt (llama.cpp's kernels differ slightly with batch size, so
# long free-form texts may drift at near-ties; these do not).
SEQUENCES = {
    "1, 2, 3, 4, 5,": " 6",
    "Monday, Tuesday, Wednesday,": " Thursday",
    "a, b, c, d, e,": " f",
    "January, February, March,": " April",
}
SHORT = SamplingParams(temperature=0, max_tokens=6)


def resolved(path: Path, fmt: ModelFormat, file: str | None = None) -> ResolvedModel:
    return ResolvedModel(
        requested=path.name,
        name=path.name,
        source=ModelSource.local,
        format=fmt,
        path=str(path),
        file=file,
    )


@pytest.fixture(scope="module")
def tiny_engine(tiny_chat_model_dir: Path, tiny_adapter_dir: Path):  # noqa: ANN201
    engine = TransformersEngine(
        resolved(tiny_chat_model_dir, ModelFormat.hf),
        model_dir=tiny_chat_model_dir,
        max_batch=4,
        dtype="float32",
    )
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def gguf_engine():  # noqa: ANN201
    gguf = SMOLLM2.locate()
    engine = LlamaCppEngine(resolved(gguf.parent, ModelFormat.gguf, gguf.name), max_batch=4)
    engine.load()
    yield engine
    engine.close()


def solo(engine, prompt: str, params=GREEDY, adapter=None) -> list[str]:  # noqa: ANN001
    return engine.generate(prompt, params, adapter=adapter).text()


def together(engine, prompts, params=GREEDY, adapters=None) -> list[str]:  # noqa: ANN001
    adapters = adapters or [None] * len(prompts)
    streams = [
        engine.generate(p, params, adapter=a) for p, a in zip(prompts, adapters, strict=True)
    ]
    return [s.text() for s in streams]


def test_concurrent_requests_give_the_same_text_as_alone(tiny_engine) -> None:  # noqa: ANN001
    alone = [solo(tiny_engine, p) for p in PROMPTS]
    assert together(tiny_engine, PROMPTS) == alone
    assert tiny_engine.busy == 0


def test_concurrent_requests_on_llamacpp_stay_independent(gguf_engine) -> None:  # noqa: ANN001
    prompts = list(SEQUENCES)
    alone = [solo(gguf_engine, p, SHORT) for p in prompts]
    both = together(gguf_engine, prompts * 2, SHORT)  # 8 streams over 4 slots
    for prompt, text, again, second in zip(prompts, alone, both[:4], both[4:], strict=True):
        assert SEQUENCES[prompt].strip() in text, (prompt, text)
        assert again == text and second == text
    assert gguf_engine.busy == 0


def test_a_request_joining_mid_flight_does_not_disturb_others(tiny_engine) -> None:  # noqa: ANN001
    engine = tiny_engine
    long_params = SamplingParams(temperature=0, max_tokens=48)
    expected_long = solo(engine, PROMPTS[1], long_params)
    expected_short = solo(engine, PROMPTS[3])
    first = engine.generate(PROMPTS[1], long_params)
    pieces = []
    iterator = iter(first)
    for _ in range(5):
        pieces.append(next(iterator).text)
    second = engine.generate(PROMPTS[3], GREEDY)
    pieces.extend(event.text for event in iterator)
    assert "".join(pieces) == expected_long
    assert second.text() == expected_short


def test_adapter_changes_output_only_for_its_requests(tiny_engine, tiny_adapter_dir) -> None:  # noqa: ANN001
    base_alone = solo(tiny_engine, PROMPTS[0])
    tiny_engine.add_adapter("tiny-lora", str(tiny_adapter_dir))
    adapted_alone = solo(tiny_engine, PROMPTS[0], adapter="tiny-lora")
    assert adapted_alone != base_alone
    mixed = together(tiny_engine, [PROMPTS[0], PROMPTS[0]], adapters=[None, "tiny-lora"])
    assert mixed == [base_alone, adapted_alone]


NOTES = "\n".join(
    f"Pump {i} is serviced every {i % 7 + 2} weeks by team {chr(65 + i % 26)}." for i in range(16)
)


def test_a_shared_prefix_is_computed_once_and_changes_nothing(gguf_engine) -> None:  # noqa: ANN001
    system = ChatMessage(role="system", content="Answer from these notes.\n" + NOTES)
    first = [system, ChatMessage(role="user", content="How often is pump 12 serviced?")]
    params = SamplingParams(temperature=0, max_tokens=12)
    cold = gguf_engine.chat(first, params)
    answer = cold.text()
    follow_up = [
        *first,
        ChatMessage(role="assistant", content=answer),
        ChatMessage(role="user", content="And pump 13?"),
    ]
    warm = gguf_engine.chat(follow_up, params)
    warm.text()
    assert warm.stats.cached_tokens >= cold.stats.prompt_tokens  # turn 1 is not recomputed
    # Requests admitted together share the notes: the first computes them, the others
    # copy them, and each continues as it does when computed whole. (llama.cpp's kernels
    # differ slightly with how tokens are batched, so long free text may drift at
    # near-ties, as it does between batch sizes; these short continuations do not.)
    prompts = [f"{NOTES}\n{start}" for start in list(SEQUENCES)[:3]]
    gguf_engine._slots.reuse = False
    try:
        recomputed = [gguf_engine.generate(prompt, SHORT) for prompt in prompts]
        expected = [stream.text() for stream in recomputed]
        assert all(stream.stats.cached_tokens == 0 for stream in recomputed)
    finally:
        gguf_engine._slots.reuse = True
    streams = [gguf_engine.generate(prompt, SHORT) for prompt in prompts]
    assert [stream.text() for stream in streams] == expected
    cached = sorted(stream.stats.cached_tokens for stream in streams)
    shared = len(gguf_engine.tokenize(NOTES, special=False))
    assert cached[1] >= shared - 1, (cached, shared)  # all but possibly the first reuse them
    assert " 6" in expected[0] and " f" in expected[2]


def test_prompt_lookup_drafts_keep_the_output_and_the_slots_right(gguf_engine) -> None:  # noqa: ANN001
    """Drafted tokens are checked by the model: a text the answer repeats is drafted and
    mostly kept, greedy and seeded outputs are those of plain decoding, and a slot that
    held rejected drafts serves its next request as a fresh one would."""
    copy = "The red fox jumps over the lazy brown dog. " * 2 + "The red fox"
    seeded = SamplingParams(temperature=0.8, max_tokens=24, seed=7)
    gguf_engine.speculative_tokens = 0
    plain = [solo(gguf_engine, p, params) for p, params in ((copy, GREEDY), (copy, seeded))]
    plain.append(solo(gguf_engine, "1, 2, 3, 4, 5, 6, 7, 8,", SHORT))
    gguf_engine.speculative_tokens = 8
    try:
        stream = gguf_engine.generate(copy, GREEDY)
        drafted = [stream.text()]
        assert stream.stats.drafted_tokens > 0 and stream.stats.accepted_tokens > 0
        assert stream.stats.accepted_tokens <= stream.stats.drafted_tokens
        drafted.append(solo(gguf_engine, copy, seeded))
        # the slots now hold KV that ran into rejected drafts; the prefix cache reuses them
        drafted.append(solo(gguf_engine, "1, 2, 3, 4, 5, 6, 7, 8,", SHORT))
        assert drafted == plain
        assert " 9" in drafted[2]
    finally:
        gguf_engine.speculative_tokens = 0


def test_seeded_sampling_repeats_and_seeds_differ(gguf_engine) -> None:  # noqa: ANN001
    def sampled(seed: int) -> str:
        return solo(
            gguf_engine,
            "Once upon a time",
            SamplingParams(temperature=1.0, max_tokens=16, seed=seed),
        )

    assert sampled(42) == sampled(42)
    assert len({sampled(s) for s in (1, 2, 3)}) > 1


def test_stop_sequences_end_generation_and_are_not_returned(gguf_engine) -> None:  # noqa: ANN001
    full = solo(gguf_engine, "1, 2, 3, 4, 5,", SamplingParams(temperature=0, max_tokens=20))
    assert " 8" in full
    stream = gguf_engine.generate(
        "1, 2, 3, 4, 5,", SamplingParams(temperature=0, max_tokens=20, stop=[" 8"])
    )
    text = stream.text()
    assert text == full[: full.index(" 8")]
    assert stream.finish_reason == FinishReason.stop


def test_max_tokens_ends_with_length_and_counts(gguf_engine) -> None:  # noqa: ANN001
    stream = gguf_engine.generate("1, 2, 3, 4, 5,", SamplingParams(temperature=0, max_tokens=7))
    stream.text()
    assert stream.finish_reason == FinishReason.length
    assert stream.stats.completion_tokens == 7 and stream.stats.prompt_tokens > 5


def test_chat_uses_the_model_template_and_answers(gguf_engine) -> None:  # noqa: ANN001
    stream = gguf_engine.chat(
        [ChatMessage(role="user", content="What is 2 plus 2?")],
        SamplingParams(temperature=0, max_tokens=40),
    )
    text = stream.text()
    assert "4" in text and "<|im_end|>" not in text
    assert stream.finish_reason == FinishReason.stop  # ended by the template's end token


def test_prompt_longer_than_the_context_is_refused(tiny_engine) -> None:  # noqa: ANN001
    with pytest.raises(PromptTooLong, match="context of 512"):
        tiny_engine.generate("word " * 600, GREEDY)
    with pytest.raises(PromptTooLong):
        tiny_engine.generate("hi", SamplingParams(max_tokens=10_000))


def test_cancel_frees_the_slot(gguf_engine) -> None:  # noqa: ANN001
    stream = gguf_engine.generate("Count forever:", SamplingParams(temperature=0, max_tokens=1500))
    first = next(iter(stream))
    assert first.text is not None
    stream.cancel()
    deadline = time.monotonic() + 10
    while gguf_engine.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gguf_engine.busy == 0
    assert solo(gguf_engine, PROMPTS[2])  # the engine still serves


def test_many_threads_share_one_engine(gguf_engine) -> None:  # noqa: ANN001
    prompts = list(SEQUENCES)
    results: dict[int, str] = {}

    def worker(i: int) -> None:
        results[i] = solo(gguf_engine, prompts[i % len(prompts)], SHORT)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    for i in range(8):
        prompt = prompts[i % len(prompts)]
        assert SEQUENCES[prompt].strip() in results[i], (prompt, results[i])
