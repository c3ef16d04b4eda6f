"""Answer quality of knowledge-base questions with the packaged models, per answer mode.

Fictional documents nobody has seen (`fictional_documents.py`: text and scanned PDFs,
English and Korean) are ingested by a real server; each of their 18 questions with a
known answer and page is asked in every answer mode with the packaged SmolLM2-135M
(llama.cpp) and the packaged e5 embeddings. Reported per mode: the share of answers that
contain the expected fact, the share whose first citation names the right document and
page, median time to the first token and median total time. `generate` gives the model
the three source sentences that best answer the question (the default context);
`generate, excerpts` each source's best sentence with its neighbours, and `generate,
whole chunks` the obvious alternative: the whole 512-token chunks.

Run: .venv/bin/python benchmarks/answer_quality.py
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx  # noqa: E402
from common import free_port, record, start, stop  # noqa: E402
from fictional_documents import Question, write_all  # noqa: E402

MODEL = "SmolLM2-135M-Instruct"
MODES = {
    "generate": {"answer_mode": "generate"},
    "generate, excerpts": {"answer_mode": "generate", "context": "excerpts"},
    "generate, whole chunks": {"answer_mode": "generate", "context": "chunks"},
    "quotes": {"answer_mode": "quotes"},
    "extractive": {"answer_mode": "extractive"},
}


def first_citation(done: dict) -> tuple[str, int] | None:
    """(document, page) of the first [n] in the answer (its supporting sentence's page)."""
    by_number = {c["number"]: c for c in done["citations"]}
    for match in re.finditer(r"\[(\d+)\]", done["answer"]):
        citation = by_number.get(int(match.group(1)))
        if citation is not None:
            page = (
                citation["support"]["page"] if citation.get("support") else citation["page_start"]
            )
            return citation["document"], page
    return None


def ask(api: str, kb: str, question: Question, options: dict) -> dict:
    body = {"query": question.question, "model": MODEL, "limit": 5, **options}
    response = httpx.post(f"{api}/kb/{kb}/ask", json=body, timeout=600)
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
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(port)],
        f"{url}/healthz",
        env={"AIFT_WORKSPACE": str(folder / "ws"), "AIFT_OFFLINE": "1"},
        log=folder / "server.log",
    )
    api = f"{url}/api/v1"
    rows = [
        "| mode | contains the fact | first citation on the right page | first token p50 s "
        "| total p50 s |",
        "|---|---|---|---|---|",
    ]
    misses: list[str] = []
    try:
        kb = httpx.post(f"{api}/kb", json={"name": "fiction"}, timeout=300).json()["id"]
        files = [("files", (path.name, path.read_bytes())) for _, path in documents]
        httpx.post(f"{api}/kb/{kb}/documents", files=files, timeout=300).raise_for_status()
        for _ in range(900):
            docs = httpx.get(f"{api}/kb/{kb}/documents", timeout=60).json()
            if all(d["status"] in ("indexed", "failed") for d in docs):
                break
            time.sleep(1)
        failed = [d["name"] for d in docs if d["status"] != "indexed"]
        if failed:
            raise RuntimeError(f"not indexed: {failed}")
        ask(api, kb, documents[0][0].questions[0], {})  # loads the model
        for mode in args.modes:
            options = MODES[mode]
            contained = right_page = 0
            firsts, totals = [], []
            for document, _ in documents:
                for question in document.questions:
                    done = ask(api, kb, question, options)
                    hit = question.answered_by(done["answer"])
                    cited = first_citation(done)
                    on_page = cited == (document.name, question.page)
                    contained += hit
                    right_page += on_page
                    if done.get("first_token_ms") is not None:
                        firsts.append(done["first_token_ms"] / 1000)
                    totals.append(done["total_ms"] / 1000)
                    if not (hit and on_page):
                        misses.append(
                            f"{mode}: {question.question} → {done['answer'][:120]!r} "
                            f"(cited {cited}, expected {question.page})"
                        )
            count = sum(len(d.questions) for d, _ in documents)
            rows.append(
                f"| {mode} | {contained}/{count} ({contained / count:.0%}) | "
                f"{right_page}/{count} ({right_page / count:.0%}) | "
                f"{statistics.median(firsts):.2f} | {statistics.median(totals):.2f} |"
            )
            print(rows[-1], flush=True)
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
    ]
    body = "\n".join(rows)
    if not args.no_record:
        record("RAG answer quality per answer mode", body, "python benchmarks/answer_quality.py")
    print(body)
    print("\n".join(misses))


if __name__ == "__main__":
    main()
