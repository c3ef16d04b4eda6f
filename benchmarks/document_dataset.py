"""Training data written from documents: does a LoRA trained on it know the documents?

A real server (`aift serve`, offline) ingests the fictional documents of the answer-
quality benchmark (`fictional_documents.py`: English and Korean, text and scanned PDFs,
facts nobody has seen). Then, through the API a user would call:

1. `POST /datasets/from-documents` with the packaged SmolLM2-135M as question writer,
   extractive answers: the rows are accepted in bulk (what "Accept all pending" does);
   a second run with generated answers and preference pairs reports the share of
   generated answers their passage supports, and the pairs found.
2. A LoRA on SmolLM2-135M trains on the accepted rows.
3. `POST /evaluations/model` scores the base and the adapter closed-book (no knowledge
   base, no passage) on the benchmark's own questions about the documents — written by
   hand, never shown to the question writer — and `GET /evaluations/compare` pairs them.

Run: .venv/bin/python benchmarks/document_dataset.py [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx  # noqa: E402
from common import record, serve_offline, stop, wait_job  # noqa: E402
from fictional_documents import write_all  # noqa: E402

MODEL = "SmolLM2-135M-Instruct"
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def ingest(api: str, folder: Path) -> tuple[str, list]:
    """A knowledge base holding every fictional document; (its id, the documents)."""
    documents = write_all(folder)
    kb = httpx.post(
        f"{api}/kb", json={"name": "fiction", "embedding_model": "multilingual-e5-small"}
    )
    kb.raise_for_status()
    files = [("files", (path.name, path.read_bytes())) for _, path in documents]
    up = httpx.post(f"{api}/kb/{kb.json()['id']}/documents", files=files, timeout=600)
    up.raise_for_status()
    wait_job(api, up.json()["job_id"], 5400)
    return kb.json()["id"], documents


def write(api: str, kb: str, **options: Any) -> tuple[dict, dict, float]:
    """A dataset written from the knowledge base: (dataset, job result, seconds)."""
    started = time.monotonic()
    body = {"knowledge_base": kb, "model": MODEL, "max_rows": 2000, **options}
    made = httpx.post(f"{api}/datasets/from-documents", json=body, timeout=300)
    made.raise_for_status()
    result = wait_job(api, made.json()["job"]["id"])["result"]
    return made.json()["dataset"], result, time.monotonic() - started


def rows_of(api: str, dataset_id: str) -> list[dict]:
    rows, offset = [], 0
    while True:
        page = httpx.get(
            f"{api}/datasets/{dataset_id}/rows", params={"offset": offset, "limit": 500}
        ).json()
        rows += page["rows"]
        offset += len(page["rows"])
        if not page["rows"] or offset >= page["total"]:
            return rows


def held_out(api: str, documents: list) -> str:
    """The benchmark's hand-written questions as a dataset to score closed-book."""
    rows = [
        {
            "messages": [
                {"role": "user", "content": q.question},
                {"role": "assistant", "content": q.answer},
            ]
        }
        for document, _ in documents
        for q in document.questions
    ]
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()
    made = httpx.post(
        f"{api}/datasets",
        files={"file": ("held-out.jsonl", text), "val_file": ("held-out-val.jsonl", text)},
        data={"name": "held-out-questions"},
        timeout=300,
    )
    made.raise_for_status()
    return made.json()["dataset"]["id"]


def train(api: str, dataset: str, steps: int) -> tuple[dict, float]:
    started = time.monotonic()
    config = {
        "base_model": MODEL,
        "dataset": dataset,
        "max_steps": steps,
        "batch_size": 4,
        "learning_rate": 2e-3,
        "lora": {"rank": 16, "alpha": 32},
        "name": "from-documents",
    }
    job = httpx.post(f"{api}/training", json=config, timeout=300)
    job.raise_for_status()
    return wait_job(api, job.json()["id"])["result"], time.monotonic() - started


def score(api: str, models: list[str], dataset: str, count: int) -> dict:
    ids = []
    for model in models:
        body = {"model": model, "dataset": dataset, "max_tokens": 24, "limit": count}
        evaluation = httpx.post(f"{api}/evaluations/model", json=body, timeout=300)
        evaluation.raise_for_status()
        ids.append(wait_job(api, evaluation.json()["id"])["id"])
    results = [httpx.get(f"{api}/evaluations/{i}", timeout=60).json() for i in ids]
    compared = httpx.get(f"{api}/evaluations/compare", params={"ids": ids}, timeout=300)
    compared.raise_for_status()
    return {"results": results, "comparison": compared.json()["runs"][0]}


def run(api: str, folder: Path, steps: int) -> dict:
    kb, documents = ingest(api, folder)
    dataset, written, write_seconds = write(
        api, kb, answers="extractive", phrasings=3, val_ratio=0.0
    )
    rows = rows_of(api, dataset["id"])
    review = {"status": "accepted", "all_with_status": "pending"}
    httpx.post(f"{api}/datasets/{dataset['id']}/rows/review", json=review, timeout=300)
    pairs_dataset, generated, generated_seconds = write(
        api, kb, answers="generated", preference_pairs=True, phrasings=1, name="pairs"
    )
    questions = held_out(api, documents)
    count = sum(len(d.questions) for d, _ in documents)
    trained, train_seconds = train(api, dataset["id"], steps)
    scored = score(api, [MODEL, trained["model"]], questions, count)
    return {
        "written": written,
        "write_seconds": write_seconds,
        "rows": rows,
        "generated": generated,
        "generated_seconds": generated_seconds,
        "train_seconds": train_seconds,
        "steps": steps,
        "questions": count,
        **scored,
    }


def share(answers: list[dict], metric: str, korean: bool | None) -> str:
    """The mean of a per-question metric over the questions of one language (or all)."""
    chosen = [a for a in answers if korean is None or bool(HANGUL.search(a["question"])) == korean]
    value = sum(float(a[metric]) for a in chosen) / len(chosen) if chosen else 0.0
    return f"{value:.2f}" if metric == "f1" else f"{value:.0%}"


def report(result: dict) -> str:
    written, generated = result["written"], result["generated"]
    base, tuned = (r["answers"] for r in result["results"])
    rows = [
        "| closed-book on the documents' held-out questions | base | LoRA on the written rows |",
        "|---|---|---|",
    ]
    for label, korean in (("all", None), ("English", False), ("Korean", True)):
        for metric, name in (
            ("exact_match", "exact match"),
            ("contains", "answer contains the fact"),
            ("f1", "token F1"),
        ):
            rows.append(
                f"| {label}: {name} | {share(base, metric, korean)} | {share(tuned, metric, korean)} |"
            )
    for metric in result["comparison"]["metrics"]:
        low, high = metric["interval"]
        rows.append(
            f"| paired delta, {metric['metric']} (95 % interval; McNemar p) | | "
            f"{metric['delta']:+.0%} ({low:+.0%} … {high:+.0%}; p {metric['p_value']:.2g}) |"
        )
    english = sum(1 for a in base if not HANGUL.search(a["question"]))
    examples = "; ".join(f"{r['question']!r} → {r['answer']!r}" for r in result["rows"][:4])
    writing = [
        "",
        "| writing run | sentences | questions written | refused questions | answers supported "
        "| duplicates | rows | time |",
        "|---|---|---|---|---|---|---|---|",
        _writing_row("extractive answers, 3 phrasings", written, result["write_seconds"]),
        _writing_row("generated answers + pairs", generated, result["generated_seconds"]),
    ]
    return "\n".join(
        rows
        + writing
        + [
            "",
            f"Documents: the answer-quality benchmark's fictional documents (English and "
            f"Korean, text and scanned PDFs). Question writer {MODEL} (greedy). All "
            f"{written['rows']} extractive rows accepted; LoRA r 16, {result['steps']} steps, "
            f"batch 4, lr 2e-3 ({result['train_seconds']:.0f} s). Scored on the benchmark's "
            f"{result['questions']} hand-written questions ({english} English, "
            f"{result['questions'] - english} Korean; every row written is English: the "
            f"135M writer's Korean questions are all refused), closed-book (no passage), "
            f"greedy, 24 tokens. Generated answers their passage supports: "
            f"{generated['supported_share']:.0%} ({generated['supported']} of "
            f"{generated['answers']}); preference pairs found: {generated['pairs']}. "
            f"Rows, for example: {examples}.",
        ]
    )


def _writing_row(label: str, counts: dict, seconds: float) -> str:
    return (
        f"| {label} | {counts['sentences']} | {counts['questions']} | "
        f"{counts['unusable_questions']} | {counts['supported']} of {counts['answers']} "
        f"({counts['supported_share']:.0%}) | {counts['duplicates']} | {counts['rows']} | "
        f"{seconds:.0f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="aift-docdata-"))
    server, api = serve_offline(folder)
    try:
        result = run(api, folder, args.steps)
    finally:
        stop(server)
    (folder / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    body = report(result)
    record(
        "Datasets written from documents: closed-book before and after",
        body,
        "python benchmarks/document_dataset.py",
    )
    print(body)


if __name__ == "__main__":
    main()
