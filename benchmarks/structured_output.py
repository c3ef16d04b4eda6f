"""What enforcing a format costs: decode speed of the packaged SmolLM2 (llama.cpp engine)
generating freely against the same requests constrained to a JSON schema (llguidance's
token mask every step), and the share of outputs that parse and match the schema — the
obvious alternative being to ask for JSON in the prompt and hope.

Each mode answers the same 12 prompts, 8 at a time (the engine's batch), sampled at
temperature 0.8 with fixed seeds.

Run: .venv/bin/python benchmarks/structured_output.py
"""

from __future__ import annotations

import concurrent.futures
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

from aift.inference.engines.llamacpp import LlamaCppEngine  # noqa: E402
from aift.inference.schemas import ChatMessage, SamplingParams, StructuredOutput  # noqa: E402
from aift.models.packaged import SMOLLM2  # noqa: E402
from aift.models.schemas import ModelFormat, ModelSource, ResolvedModel  # noqa: E402

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
    },
    "required": ["name", "age", "hobbies"],
}
PROMPTS = [
    "Describe a character from a novel",
    "Describe your best friend",
    "Describe a famous scientist",
    "Describe a neighbour",
    "Describe a teacher you remember",
    "Describe a chef",
    "Describe an athlete",
    "Describe a musician",
    "Describe a pilot",
    "Describe a gardener",
    "Describe a painter",
    "Describe a child",
]
ASK = " as JSON with the keys name, age and hobbies."


def valid(text: str) -> bool:
    import jsonschema_rs

    try:
        return jsonschema_rs.validator_for(SCHEMA).is_valid(json.loads(text))
    except ValueError:
        return False


def run(engine: LlamaCppEngine, constrained: bool) -> tuple[float, float, int]:
    """(decode tokens/s per request p50, aggregate tokens/s, valid outputs)."""
    structured = StructuredOutput(type="json_schema", json_schema=SCHEMA) if constrained else None

    def one(index: int) -> tuple[str, float, int]:
        params = SamplingParams(temperature=0.8, seed=index, max_tokens=160, structured=structured)
        stream = engine.chat([ChatMessage(role="user", content=PROMPTS[index] + ASK)], params)
        text = stream.text()
        stats = stream.stats
        assert stats is not None
        speed = stats.completion_tokens / max(stats.decode_ms / 1000, 1e-6)
        return text, speed, stats.completion_tokens

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(len(PROMPTS))))
    spent = time.perf_counter() - started
    tokens = sum(r[2] for r in results)
    return (
        statistics.median(r[1] for r in results),
        tokens / spent,
        sum(valid(r[0]) for r in results),
    )


def main() -> None:
    gguf = SMOLLM2.locate()
    assert gguf is not None, "make setup installs the packaged SmolLM2"
    model = ResolvedModel(
        requested=SMOLLM2.name,
        name=SMOLLM2.name,
        source=ModelSource.packaged,
        format=ModelFormat.gguf,
        path=str(gguf.parent),
        file=gguf.name,
    )
    engine = LlamaCppEngine(model, max_batch=8)
    engine.load()
    engine.constraint_tokenizer()  # built once per model (~0.5 s), not per request
    run(engine, False)  # warm-up
    rows = [
        "| mode | decode tok/s per request p50 | aggregate tok/s | valid JSON of the schema |",
        "|---|---|---|---|",
    ]
    for name, constrained in (("asked in the prompt", False), ("enforced (llguidance)", True)):
        per_request, aggregate, ok = run(engine, constrained)
        rows.append(f"| {name} | {per_request:.0f} | {aggregate:.0f} | {ok}/{len(PROMPTS)} |")
        print(rows[-1], flush=True)
    engine.close()
    rows += [
        "",
        f"Packaged SmolLM2-135M-Instruct (Q4_1) on the llama.cpp engine, {len(PROMPTS)} "
        "requests 8 at a time, temperature 0.8, max_tokens 160; the schema: a person with "
        "name, age and up to three hobbies.",
    ]
    body = "\n".join(rows)
    record(
        "Structured output: enforced against asked for",
        body,
        "python benchmarks/structured_output.py",
    )
    print(body)


if __name__ == "__main__":
    main()
