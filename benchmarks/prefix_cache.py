"""Prefix cache: time to the first token of a chat's next turn, and of a new chat with
the same system prompt, at ~1,500 prompt tokens.

Three servers on the packaged SmolLM2-135M (GGUF, llama.cpp), one after another in the
same run: aift with its prefix cache (the default), aift with `AIFT_PREFIX_CACHE=false`
(every prompt computed whole), and llama-cpp-python's own server (which keeps the KV of
its last prompt and evaluates only what differs). Each of 3 rounds uses notes of its own
(so each round's first turn is cold): turn 1 (cold), turn 2 re-sending turn 1 and its
answer (follow-up), then a new chat with the same notes and another question.

Run: .venv/bin/python benchmarks/prefix_cache.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import openai  # noqa: E402
from common import free_port, record, start, stop  # noqa: E402
from serving_throughput import start_peer  # noqa: E402

from aift.models.packaged import SMOLLM2  # noqa: E402

MODEL = "SmolLM2-135M-Instruct"
ROUNDS = 3


def notes(round_number: int) -> str:
    """~1,450 tokens of facts, different in every round from the first token on."""
    facts = [
        f"Pump {i} of station {round_number} is serviced every {(i * round_number) % 7 + 2} "
        f"weeks by team {chr(65 + (i + round_number) % 26)}."
        for i in range(70)
    ]
    return f"Station {round_number} maintenance notes.\n" + "\n".join(facts)


def first_token(client: openai.OpenAI, messages: list[dict]) -> tuple[float, str, int]:
    """Seconds to the first streamed token, the answer, and the prompt's tokens."""
    started = time.perf_counter()
    first, parts, prompt_tokens = None, [], 0
    for chunk in client.chat.completions.create(
        model=MODEL,
        messages=messages,
        temperature=0,
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.usage:
            prompt_tokens = chunk.usage.prompt_tokens
        if chunk.choices and chunk.choices[0].delta.content:
            if first is None:
                first = time.perf_counter() - started
            parts.append(chunk.choices[0].delta.content)
    return first or 0.0, "".join(parts), prompt_tokens


def rounds(base_url: str) -> dict[str, float]:
    """Median first-token seconds of the cold turn, the follow-up and the new chat."""
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)
    cold, follow, other, tokens = [], [], [], []
    for number in range(1, ROUNDS + 1):
        system = {"role": "system", "content": notes(number)}
        turn = [system, {"role": "user", "content": "How often is pump 12 serviced?"}]
        seconds, answer, prompt_tokens = first_token(client, turn)
        cold.append(seconds)
        tokens.append(prompt_tokens)
        turn += [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "And pump 13?"},
        ]
        follow.append(first_token(client, turn)[0])
        other.append(
            first_token(client, [system, {"role": "user", "content": "Who is team C?"}])[0]
        )
    return {
        "tokens": statistics.median(tokens),
        "cold": statistics.median(cold),
        "follow": statistics.median(follow),
        "other": statistics.median(other),
    }


def aift_server(work: Path, prefix_cache: bool) -> dict[str, float]:
    port = free_port()
    server = start(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(port), "--no-worker"],
        f"http://127.0.0.1:{port}/healthz",
        env={
            "AIFT_WORKSPACE": str(work / f"ws-{prefix_cache}"),
            "AIFT_OFFLINE": "1",
            "AIFT_LOG_LEVEL": "WARNING",
            "AIFT_PREFIX_CACHE": str(prefix_cache).lower(),
        },
        log=work / f"aift-{prefix_cache}.log",
    )
    try:
        return rounds(f"http://127.0.0.1:{port}/v1")
    finally:
        stop(server)


def peer_server(work: Path) -> dict[str, float]:
    port = free_port()
    peer = start_peer(SMOLLM2.locate(), port, work / "peer.log")
    try:
        return rounds(f"http://127.0.0.1:{port}/v1")
    finally:
        stop(peer)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="aift-prefix-"))
    results = {
        "aift, prefix cache (default)": aift_server(work, True),
        "aift, AIFT_PREFIX_CACHE=false": aift_server(work, False),
        "llama_cpp.server (peer)": peer_server(work),
    }
    lines = [
        "| server | prompt tokens | turn 1 (cold) s | follow-up turn s | follow-up / cold "
        "| new chat, same system prompt s |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        tokens = f"{r['tokens']:.0f}" if r["tokens"] else "–"
        lines.append(
            f"| {name} | {tokens} | {r['cold']:.2f} | {r['follow']:.2f} "
            f"| {r['follow'] / r['cold']:.0%} | {r['other']:.2f} |"
        )
    body = "\n".join(lines) + (
        f"\n\nTime to the first streamed token, median of {ROUNDS} rounds, each with notes "
        "of its own in the system prompt (so its first turn is cold); greedy, 24 tokens. "
        "The follow-up re-sends turn 1 and its answer; the new chat sends the same notes "
        "with another question; prompt tokens as the server's usage reports them (the peer's "
        "stream reports none). Goal: follow-up ≤ 20 % of the cold turn."
    )
    print(body)
    record("Prefix cache: a chat's next turn", body, "python benchmarks/prefix_cache.py")


if __name__ == "__main__":
    main()
