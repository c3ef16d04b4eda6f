import numpy as np
import pytest

from aift.errors import InvalidInput
from aift.inference.sampling import StopMatcher, sample_token
from aift.inference.schemas import SamplingParams
from aift.keepalive import parse_keep_alive

LOGITS = np.array([0.1, 3.0, 2.9, -1.0, 0.5], dtype=np.float32)


def test_temperature_zero_is_greedy() -> None:
    rng = np.random.default_rng(0)
    assert all(sample_token(LOGITS, SamplingParams(temperature=0), rng) == 1 for _ in range(20))


def test_top_k_one_is_greedy_at_any_temperature() -> None:
    rng = np.random.default_rng(0)
    params = SamplingParams(temperature=1.5, top_k=1)
    assert {sample_token(LOGITS, params, rng) for _ in range(50)} == {1}


def test_top_p_keeps_only_the_nucleus() -> None:
    rng = np.random.default_rng(0)
    params = SamplingParams(temperature=1.0, top_p=0.5)
    assert {sample_token(LOGITS, params, rng) for _ in range(200)} <= {1, 2}


def test_seed_makes_sampling_reproducible() -> None:
    params = SamplingParams(temperature=1.0, seed=7)
    first = [sample_token(LOGITS, params, np.random.default_rng(7)) for _ in range(1)]
    runs = [
        [sample_token(LOGITS, params, rng) for _ in range(30)]
        for rng in (np.random.default_rng(7), np.random.default_rng(7))
    ]
    assert runs[0] == runs[1] and first
    assert len(set(runs[0])) > 1, "temperature 1 explores"


def test_stop_matcher_holds_back_partial_stops() -> None:
    matcher = StopMatcher(["END"])
    assert matcher.feed("hello E") == ("hello ", False)
    assert matcher.feed("N") == ("", False)
    assert matcher.feed("X more") == ("ENX more", False)
    assert matcher.feed(" and EN") == (" and ", False)
    assert matcher.feed("D tail") == ("", True)


def test_stop_matcher_flushes_what_it_held() -> None:
    matcher = StopMatcher(["\n\n"])
    assert matcher.feed("line\n") == ("line", False)
    assert matcher.flush() == "\n"


def test_empty_stop_strings_are_rejected() -> None:
    with pytest.raises(ValueError):
        SamplingParams(stop=[""])


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5m", 300.0),
        ("1h", 3600.0),
        ("30s", 30.0),
        ("250ms", 0.25),
        (0, 0.0),
        ("0", 0.0),
        (-1, None),
        ("-1", None),
        ("-5m", None),
        (90, 90.0),
        (None, None),
        ("1h30m", 5400.0),
        ("1h30m45.5s", 5445.5),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        ("90", 90.0),
        ("87600h", 315_360_000.0),
    ],
)
def test_keep_alive_durations(value, seconds) -> None:  # noqa: ANN001
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize(
    "value", ["soon", "5 minutes", "1d", True, "", "h", 99999999999999, 1e308, "87601h", "1h-5m"]
)
def test_bad_keep_alive(value) -> None:  # noqa: ANN001
    with pytest.raises(InvalidInput):
        parse_keep_alive(value)


def test_penalties_discourage_tokens_already_generated() -> None:
    rng = np.random.default_rng(0)
    plain = SamplingParams(temperature=0)
    assert sample_token(LOGITS, plain, rng, previous=[1, 1]) == 1  # no penalty by default
    # HF/llama.cpp repetition penalty: a positive logit is divided by it
    assert (
        sample_token(LOGITS, SamplingParams(temperature=0, repetition_penalty=1.1), rng, [1]) == 2
    )
    # OpenAI frequency (per occurrence) and presence (once) penalties are subtracted
    frequency = SamplingParams(temperature=0, frequency_penalty=0.06)
    assert sample_token(LOGITS, frequency, rng, [1]) == 1  # 3.0 - 0.06 > 2.9
    assert sample_token(LOGITS, frequency, rng, [1, 1]) == 2  # 3.0 - 0.12 < 2.9
    presence = SamplingParams(temperature=0, presence_penalty=0.2)
    assert sample_token(LOGITS, presence, rng, [1]) == 2
    assert LOGITS[1] == pytest.approx(3.0), "the engine's logits are left alone"
