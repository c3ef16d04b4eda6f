"""Answer quality of knowledge-base questions with the packaged models, per answer mode.

Fictional documents nobody has seen (`fictional_documents.py`: text and scanned PDFs,
English and Korean) are ingested by a real server; each of their 18 questions with a
known answer and page is asked in every answer mode with the packaged SmolLM2-135M
(llama.cpp) and the packaged e5 embeddings. Reported per mode: the share of answers that
contain the expected fact, the share whose first citation names the right document and
page, median time to the first token and median total time. `generate` gives the model
the three source sentences that best answer the question (the default context);
`generate, excerpts` each source's best sentence with its neighbours, and `generate,
whole chunks` the obvious alternative: the whole 512-token chunks. Every figure comes
from aift's own answer evaluation (`POST /api/v1/kb/{kb}/evaluate-answers`), which this
script only calls; then 500 questions in extractive mode are timed in one request.

Run: .venv/bin/python benchmarks/answer_quality.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx  # noqa: E402
from common import record, serve_offline, stop  # noqa: E402
from fictional_documents import write_all  # noqa: E402

MODEL = "SmolLM2-135M-Instruct"
MODES = {
    "generate": {"modes": "generate"},
    "generate, excerpts": {"modes": "generate", "context": "excerpts"},
    "generate, whole chunks": {"modes": "generate", "context": "chunks"},
    "quotes": {"modes": "quotes"},
    "extractive": {"modes": "extractive"},
}
LARGE = 500  # questions of the extractive timing run


def question_file(documents: list, folder: Path, count: int | None = None) -> Path:
    """The fictional documents' questions as an answer-evaluation file: accepted forms,
    the document and page to cite (cycled to `count` rows for a timing run)."""
    rows = [
        {
            "question": q.question,
            "answers": [q.answer, *q.also],
            "document": document.name,
            "page": q.page,
        }
        for document, _ in documents
        for q in document.questions
    ]
    rows = [rows[i % len(rows)] for i in range(count or len(rows))]
    path = folder / f"questions-{len(rows)}.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    return path


def ingest(api: str, name: str, paths: list[Path]) -> str:
    """A new knowledge base holding `paths`, once every document is indexed (its id)."""
    kb = httpx.post(f"{api}/kb", json={"name": name}, timeout=300).json()["id"]
    files = [("files", (path.name, path.read_bytes())) for path in paths]
    httpx.post(f"{api}/kb/{kb}/documents", files=files, timeout=300).raise_for_status()
    for _ in range(900):
        docs = httpx.get(f"{api}/kb/{kb}/documents", timeout=60).json()
        if all(d["status"] in ("indexed", "failed") for d in docs):
            break
        time.sleep(1)
    failed = [d["name"] for d in docs if d["status"] != "indexed"]
    if failed:
        raise RuntimeError(f"not indexed: {failed}")
    return kb


def evaluate(api: str, kb: str, questions: Path, form: dict) -> dict:
    """aift's answer evaluation of the knowledge base (POST …/evaluate-answers)."""
    with questions.open("rb") as handle:
        response = httpx.post(
            f"{api}/kb/{kb}/evaluate-answers",
            files={"file": (questions.name, handle)},
            data={"model": MODEL, **form},
            timeout=3600,
        )
    response.raise_for_status()
    return response.json()


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--no-record", action="store_true", help="Print only (experiments).")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="aift-answers-"))
    documents = write_all(folder / "docs")
    server, api = serve_offline(folder)
    rows = [
        "| mode | contains the fact | first citation on the right page | first token p50 s "
        "| total p50 s |",
        "|---|---|---|---|---|",
    ]
    misses: list[str] = []
    try:
        kb = ingest(api, "fiction", [path for _, path in documents])
        small = question_file(documents, folder)
        evaluate(api, kb, small, {"modes": "generate"})  # loads the model
        for mode in args.modes:
            report = evaluate(api, kb, small, MODES[mode])
            summary = report["settings"][0]
            count = report["questions"]
            contained = round(summary["contains"] * count)
            right_page = round(summary["first_citation_right"] * count)
            first = summary["first_token_ms_p50"]
            rows.append(
                f"| {mode} | {contained}/{count} ({contained / count:.0%}) | "
                f"{right_page}/{count} ({right_page / count:.0%}) | "
                f"{(first or 0) / 1000:.2f} | {summary['total_ms_p50'] / 1000:.2f} |"
            )
            print(rows[-1], flush=True)
            misses += [
                f"{mode}: {r['question']} → {r['answer'][:120]!r}"
                for r in report["rows"]
                if not (r["contains"] and r["first_citation_right"])
            ]
        large = question_file(documents, folder, LARGE)
        started = time.perf_counter()
        timed = evaluate(api, kb, large, {"modes": "extractive"})
        large_seconds = time.perf_counter() - started
    finally:
        stop(server)
    rows += [
        "",
        "Documents: an English text report (3 pages), an English scanned SOP (2 pages), a "
        "Korean text report and a Korean scanned notice (2 pages each), all fictional; "
        "questions in the document's language, worded unlike the text. Packaged "
        "SmolLM2-135M-Instruct (llama.cpp) and multilingual-e5-small, 5 sources, greedy; "
        "scans read by the default OCR (`auto`: tesseract with its Korean pack). An answer "
        "counts when it states the expected fact, in its words or an equivalent form "
        'listed with the question ("9 days" for "nine"). Goals: ≥ 80 % right first '
        "citation, ≥ 60 % contained answers in generative mode, ≥ 80 % in extractive mode.",
        "",
        "Measured through aift's own answer evaluation (`POST /api/v1/kb/{kb}/evaluate-"
        "answers`, what `aift eval answers` calls), one request per row. The same "
        f"evaluation of {timed['questions']} questions (the 18 repeated) in extractive "
        f"mode took {large_seconds:.0f} s in one request "
        f"({timed['questions'] / large_seconds:.1f} questions/s).",
    ]
    body = "\n".join(rows)
    if not args.no_record:
        record("RAG answer quality per answer mode", body, "python benchmarks/answer_quality.py")
    print(body)
    print("\n".join(misses))


if __name__ == "__main__":
    main()
