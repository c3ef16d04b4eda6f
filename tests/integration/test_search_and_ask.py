"""Hybrid search, re-ranking, cited answers and history through the real server, with
real documents from ../shared/data, embedded Qdrant and the packaged models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SHARED_DATA
from tests.integration.conftest import LiveServer, aift_env, start_server, wait_for

PDFS = SHARED_DATA / "pdfs"
KORQUAD = SHARED_DATA / "retrieval" / "korquad_v1_dev_part1.json"
pytestmark = pytest.mark.skipif(not PDFS.exists(), reason="../shared/data is not present")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("ask") / "ws")
    yield live
    live.stop()


def api(server: LiveServer, method: str, path: str, **kwargs) -> httpx.Response:  # noqa: ANN003
    return httpx.request(method, f"{server.url}/api/v1{path}", timeout=300, **kwargs)


def ingest(server: LiveServer, name: str, model: str, files: list[tuple[str, bytes]]) -> str:
    created = api(server, "POST", "/kb", json={"name": name, "embedding_model": model})
    assert created.status_code == 201, created.text
    kb = created.json()["id"]
    upload = api(server, "POST", f"/kb/{kb}/documents", files=[("files", (n, d)) for n, d in files])
    assert upload.status_code == 202, upload.text
    job = wait_for(
        lambda: api(server, "GET", f"/jobs/{upload.json()['job_id']}").json(),
        lambda j: j["status"] in ("succeeded", "failed"),
        timeout=300,
    )
    assert job["status"] == "succeeded", job
    return kb


GEOTOPO_PAGES = 36  # the thesis's first 36 of 117 pages: the answer is on page 28


def first_pages(path: Path, count: int) -> bytes:
    """A real PDF cut to its first `count` pages (pdfium copies the pages as they are)."""
    import io

    import pypdfium2 as pdfium

    source = pdfium.PdfDocument(str(path))
    cut = pdfium.PdfDocument.new()
    cut.import_pages(source, list(range(count)))
    out = io.BytesIO()
    cut.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def geotopo(server: LiveServer) -> str:
    files = [
        ("GeoTopo-komprimiert.pdf", first_pages(PDFS / "GeoTopo-komprimiert.pdf", GEOTOPO_PAGES))
    ]
    files += [(n, (PDFS / n).read_bytes()) for n in ("pdflatex-4-pages.pdf", "multicolumn.pdf")]
    return ingest(server, "geotopo", "minilm", files)


@pytest.fixture(scope="module")
def tiny_reranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (random) cross-encoder folder: BERT with one output, MiniLM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from aift.models.packaged import ALL_MINILM_L6_V2

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("reranker")
    tokenizer = AutoTokenizer.from_pretrained(str(ALL_MINILM_L6_V2.locate()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def search(server: LiveServer, kb: str, **body) -> dict:  # noqa: ANN003
    response = api(server, "POST", f"/kb/{kb}/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


QUESTION = "Was besagt der Satz von der Gebietstreue von Brouwer?"


def test_hybrid_search_finds_the_right_page_and_shows_every_score(server, geotopo) -> None:  # noqa: ANN001
    result = search(server, geotopo, query=QUESTION)
    assert result["mode"] == "hybrid" and result["fusion"] == "weighted"
    assert not result["reranked"] and "aift models pull" in result["rerank_skipped"]
    assert "\n" not in result["rerank_skipped"] and not result["notes"]  # one short line
    top = result["hits"][0]
    assert (
        top["document"] == "GeoTopo-komprimiert.pdf" and top["page_start"] <= 28 <= top["page_end"]
    )
    assert "Gebietstreue" in top["text"]
    for hit in result["hits"]:
        assert hit["dense_score"] is not None and 0.0 <= hit["fused_score"] <= 1.0
    assert top["keyword_score"] > 0  # "Gebietstreue", "Brouwer" are on that page
    rrf = search(server, geotopo, query=QUESTION, fusion="rrf")
    assert rrf["fusion"] == "rrf" and rrf["hits"][0]["page_start"] <= 28
    keyword_only = search(server, geotopo, query="Gebietstreue", mode="keywords")
    assert all("ebietstreue" in h["text"] for h in keyword_only["hits"][:1])
    pages = search(server, geotopo, query=QUESTION, page_from=30, page_to=36)
    assert pages["hits"] and all(
        h["page_end"] >= 30 and h["page_start"] <= 36 for h in pages["hits"]
    )
    docs = api(server, "GET", f"/kb/{geotopo}/documents").json()
    other = next(d for d in docs if d["name"] == "multicolumn.pdf")
    only = search(server, geotopo, query=QUESTION, documents=[other["id"]])
    assert {h["document"] for h in only["hits"]} == {"multicolumn.pdf"}
    # a query that matches nothing: its best fused score still looks high, its absolute
    # relevance does not, and relevant_only applies a not-found floor to search too
    nothing = search(server, geotopo, query="quinquagenarian pelican")["hits"]
    assert all(h["relevance"] == h["dense_score"] for h in nothing)
    best = result["hits"][0]["relevance"]
    assert max(h["relevance"] for h in nothing) < best
    floor = {"relevant_only": True, "min_score": best - 0.01}
    assert search(server, geotopo, query="quinquagenarian pelican", **floor)["hits"] == []
    kept = search(server, geotopo, query=QUESTION, **floor)["hits"]
    assert kept and kept[0]["page_start"] <= 28 <= kept[0]["page_end"]
    assert all(h["relevance"] >= best - 0.01 for h in kept)


def test_a_cross_encoder_re_ranks_the_candidates(server, geotopo, tiny_reranker) -> None:  # noqa: ANN001
    result = search(server, geotopo, query=QUESTION, reranker=str(tiny_reranker), limit=5)
    assert result["reranked"] and result["reranker"]
    scores = [h["rerank_score"] for h in result["hits"]]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)


def test_an_answer_streams_and_cites_checked_sources(server, geotopo) -> None:  # noqa: ANN001
    body = {
        "query": QUESTION,
        "stream": True,
        "max_tokens": 48,
        "limit": 3,
        "model": "SmolLM2-135M-Instruct",
    }
    events = []
    with httpx.stream(
        "POST", f"{server.url}/api/v1/kb/{geotopo}/ask", json=body, timeout=300
    ) as response:
        assert response.status_code == 200
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    kinds = [k for k, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and kinds.count("token") > 3
    sources = events[0][1]["sources"]
    assert sources[0]["number"] == 1 and sources[0]["page_start"] <= 28 <= sources[0]["page_end"]
    done = events[-1][1]
    assert done["found"] and done["model"] == "SmolLM2-135M-Instruct" and done["first_token_ms"]
    streamed = "".join(d["text"] for k, d in events if k == "token")
    unmarked = re.sub(r"\s*\[[\d, ]+\]", "", done["answer"])  # markers are re-decided
    assert unmarked.split() and len(unmarked) <= len(re.sub(r"\s*\[[\d, ]+\]", "", streamed)) + 1
    numbers = {c["number"] for c in done["citations"]} | {
        c["number"] for c in done["uncited_sources"]
    }
    assert numbers == {s["number"] for s in sources}, "every source is cited or listed apart"
    for citation in done["citations"]:
        source = sources[citation["number"] - 1]
        assert (citation["document"], citation["page_start"]) == (
            source["document"],
            source["page_start"],
        )
        # attributed, not trusted: the supporting sentence is in the source, on its page
        support = citation["support"]
        assert source["text"][support["char_start"] : support["char_end"]] == support["text"]
        assert source["page_start"] <= support["page"] <= source["page_end"]
        assert f"[{citation['number']}]" in done["answer"]
    changes = done["citation_changes"]
    assert set(changes) == {"kept", "replaced", "inserted"}
    entry = api(server, "GET", f"/history/{done['id']}").json()
    assert entry["kind"] == "ask" and entry["answer"] == done["answer"] and entry["hits"]


def test_sources_beyond_the_models_context_are_dropped_not_refused(server, geotopo) -> None:  # noqa: ANN001
    body = {"query": QUESTION, "limit": 20, "min_score": 0, "max_tokens": 16}
    body["context"] = "chunks"  # whole sources
    body["model"] = "SmolLM2-135M-Instruct"  # 2048 tokens: 20 sources do not fit
    response = api(server, "POST", f"/kb/{geotopo}/ask", json=body)
    assert response.status_code == 200, response.text
    done = response.json()
    note = next(n for n in done["notes"] if n.startswith("only the best"))
    used = int(note.split()[3])
    assert 1 <= used < 20 and "of 20 sources fit" in note and "2048" in note
    numbers = {c["number"] for c in done["citations"] + done["uncited_sources"]}
    assert numbers == set(range(1, used + 1))


def test_extractive_answers_are_the_sources_own_sentences(server, geotopo) -> None:  # noqa: ANN001
    body = {"query": QUESTION, "limit": 3, "answer_mode": "extractive", "max_quotes": 2}
    response = api(server, "POST", f"/kb/{geotopo}/ask", json=body)
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["model"] is None and done["answer_mode"] == "extractive"
    assert 1 <= len(done["quotes"]) <= 2 and done["first_token_ms"] is not None
    hits = {
        h["chunk_id"]: h
        for h in api(
            server, "POST", f"/kb/{geotopo}/search", json={"query": QUESTION, "limit": 3}
        ).json()["hits"]
    }
    for quote in done["quotes"]:
        text = hits[quote["chunk_id"]]["text"]
        assert text[quote["char_start"] : quote["char_end"]] == quote["text"]
        assert f"{quote['text']} [{quote['number']}]" in done["answer"]
    assert {c["number"] for c in done["citations"]} == {q["number"] for q in done["quotes"]}
    # the search hits point at the sentence that matches, on its own page
    match = next(iter(hits.values()))["match"]
    assert match is not None and match["text"] and match["page"] >= 1


def test_the_cli_asks_for_quotes_with_their_pages(server, geotopo) -> None:  # noqa: ANN001
    import subprocess
    import sys

    from tests.integration.conftest import aift_env

    done = subprocess.run(
        [sys.executable, "-m", "aift.cli", "ask", geotopo, QUESTION, "--mode", "extractive"],
        env=aift_env(server.workspace, AIFT_SERVER_URL=server.url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "GeoTopo-komprimiert.pdf, page" in done.stdout and "[1]" in done.stdout, done.stdout


def test_nothing_relevant_gives_an_honest_answer(server, geotopo) -> None:  # noqa: ANN001
    response = api(
        server,
        "POST",
        f"/kb/{geotopo}/ask",
        json={"query": "How do I bake sourdough bread?", "min_score": 0.9},
    )
    assert response.status_code == 200, response.text
    done = response.json()
    assert not done["found"] and "could not find" in done["answer"] and done["model"] is None


def test_an_answer_from_the_models_own_knowledge_is_flagged_or_replaced(server, geotopo) -> None:  # noqa: ANN001
    from aift.rag.answering import NOT_FOUND

    body = {
        "query": "What colour is the Zorblat reactor coolant?",
        "min_score": 0,  # sources are given, none of them about it
        "limit": 3,
        "max_tokens": 40,
        "model": "SmolLM2-135M-Instruct",
    }
    flagged = api(server, "POST", f"/kb/{geotopo}/ask", json=body).json()
    assert flagged["found"] and flagged["statements"] > 0, flagged["answer"]
    assert not flagged["supported"] and flagged["supported_statements"] == 0, flagged["answer"]
    assert flagged["answer"] != NOT_FOUND and not flagged["citations"]
    assert any("support none of this answer" in n for n in flagged["notes"])
    replaced = api(
        server, "POST", f"/kb/{geotopo}/ask", json={**body, "unsupported": "not_found"}
    ).json()
    assert replaced["answer"] == NOT_FOUND and not replaced["found"] and not replaced["citations"]
    assert any("unsupported: not_found" in n for n in replaced["notes"])
    entry = api(server, "GET", f"/history/{replaced['id']}").json()
    assert entry["answer"] == NOT_FOUND, "the history keeps what the user was told"
    supported = api(server, "POST", f"/kb/{geotopo}/ask", json={**body, "query": QUESTION})
    done = supported.json()
    assert done["supported"] == (done["supported_statements"] > 0)


def test_a_question_file_scores_the_answers_of_each_mode(server, geotopo, tmp_path) -> None:  # noqa: ANN001
    questions = [
        {
            "question": QUESTION,
            "answer": "Gebietstreue",
            "document": "GeoTopo-komprimiert.pdf",
            "page": 28,
        },
        {"question": "What colour is the Zorblat reactor coolant?", "unanswerable": True},
    ]
    before = len(api(server, "GET", "/history", params={"kb": geotopo, "limit": 1000}).json())
    response = api(
        server,
        "POST",
        f"/kb/{geotopo}/evaluate-answers",
        files={"file": ("q.jsonl", "\n".join(json.dumps(q) for q in questions).encode())},
        data={"modes": "extractive,generate", "model": "SmolLM2-135M-Instruct"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["questions"] == 2 and [s["setting"] for s in report["settings"]] == [
        "extractive",
        "generate",
    ]
    rows = {(r["setting"], r["question"][:4]): r for r in report["rows"]}
    quoted = rows[("extractive", QUESTION[:4])]
    assert quoted["contains"] is not None and quoted["first_citation_right"] is not None
    assert quoted["citation_recall"] == 1.0, "quotes are the sources' own sentences"
    assert quoted["not_found_right"] is None  # it is answerable
    for setting in ("extractive", "generate"):
        zorblat = rows[(setting, "What")]
        assert zorblat["contains"] is None and zorblat["not_found_right"] is not None
    extractive = report["settings"][0]
    assert extractive["first_citation_right"] == quoted["first_citation_right"]
    assert extractive["total_ms_p50"] > 0
    after = len(api(server, "GET", "/history", params={"kb": geotopo, "limit": 1000}).json())
    assert after == before, "an evaluation's questions stay out of the history"
    bad = api(
        server,
        "POST",
        f"/kb/{geotopo}/evaluate-answers",
        files={"file": ("q.jsonl", b'{"question": "x"}')},
        data={"modes": "extractive"},
    )
    assert bad.status_code == 422 and "row 1" in bad.text
    modes = api(
        server,
        "POST",
        f"/kb/{geotopo}/evaluate-answers",
        files={"file": ("q.jsonl", json.dumps(questions[1]).encode())},
        data={"modes": "telepathy"},
    )
    assert modes.status_code == 422 and "modes" in modes.text


def test_a_large_question_file_runs_as_a_job_that_searches_the_servers_index(
    server, geotopo, tmp_path
) -> None:  # noqa: ANN001
    questions = [
        {"question": QUESTION, "answer": "Gebietstreue", "document": "GeoTopo-komprimiert.pdf"},
        {"question": "What colour is the Zorblat reactor coolant?", "unanswerable": True},
    ]
    body = "\n".join(json.dumps(q) for q in questions).encode()
    path = f"/kb/{geotopo}/evaluate-answers"
    now = api(server, "POST", path, files={"file": ("q.jsonl", body)}, data={"modes": "extractive"})
    assert now.status_code == 200, now.text
    queued = api(
        server,
        "POST",
        path,
        files={"file": ("q.jsonl", body)},
        data={"modes": "extractive", "background": "true"},
    )
    assert queued.status_code == 202, queued.text
    job = wait_for(
        lambda: api(server, "GET", f"/jobs/{queued.json()['id']}").json(),
        lambda j: j["status"] in ("succeeded", "failed", "cancelled"),
        timeout=300,
    )
    assert job["status"] == "succeeded", job["error"]
    in_job, in_request = job["result"], now.json()
    assert in_job["questions"] == 2
    pick = ("answer", "found", "contains", "first_citation_right", "not_found_right")
    assert [{k: r[k] for k in pick} for r in in_job["rows"]] == [
        {k: r[k] for k in pick} for r in in_request["rows"]
    ], "the job searched the same index the server answers from"
    questions_file = tmp_path / "questions.jsonl"
    questions_file.write_bytes(body)
    cli = subprocess.run(
        [sys.executable, "-m", "aift.cli", "eval", "rag", geotopo, str(questions_file)]
        + ["--mode", "extractive", "--background", "--json"],
        env=aift_env(server.workspace, AIFT_SERVER_URL=server.url),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["rows"][0]["answer"] == in_request["rows"][0]["answer"]

    many = "\n".join(
        json.dumps({**questions[0], "question": f"{QUESTION} ({n})"}) for n in range(51)
    )
    large = api(
        server, "POST", path, files={"file": ("q.jsonl", many.encode())}, data={"modes": "generate"}
    )
    assert large.status_code == 202, "more than 50 generated answers go to a job"
    assert api(server, "POST", f"/jobs/{large.json()['id']}/cancel").status_code == 200
    stopped = wait_for(
        lambda: api(server, "GET", f"/jobs/{large.json()['id']}").json(),
        lambda j: j["status"] in ("succeeded", "failed", "cancelled"),
        timeout=300,
    )
    assert stopped["status"] == "cancelled"


def test_the_index_reader_socket_reads_only_and_only_with_the_workspace_key(
    server, geotopo
) -> None:  # noqa: ANN001
    from aift.errors import InvalidInput, ServiceUnavailable
    from aift.rag.index_access import IndexReader

    reader = IndexReader(server.workspace / "vector_index")
    try:
        assert any(name.startswith("kb_") for name in reader.collections())
        assert reader.status().error is None
        with pytest.raises(InvalidInput):
            reader.drop(reader.collections()[0])
        assert reader.collections(), "nothing was dropped"
    finally:
        reader.close()
    stranger = IndexReader(server.workspace / "vector_index")
    stranger.key_file = server.workspace / "not-the-key"
    stranger.key_file.write_bytes(b"0" * 32)
    with pytest.raises(ServiceUnavailable):
        stranger.collections()


def test_korean_questions_find_korean_paragraphs(server) -> None:  # noqa: ANN001
    articles = json.loads(KORQUAD.read_text())["data"][:4]
    files = [
        (f"ko-{n}.txt", "\n\n".join(p["context"] for p in a["paragraphs"]).encode())
        for n, a in enumerate(articles)
    ]
    kb = ingest(server, "korquad", "multilingual-e5-small", files)
    found = 0
    questions = [
        (n, q["question"]) for n, a in enumerate(articles) for q in a["paragraphs"][0]["qas"][:2]
    ]
    for number, question in questions:
        hits = search(server, kb, query=question, limit=3)["hits"]
        found += hits[0]["document"] == f"ko-{number}.txt"
    assert found >= len(questions) - 1, f"{found}/{len(questions)}"
    # the keyword index alone finds Korean too (its tokens are Korean words, not bytes)
    paragraph = articles[1]["paragraphs"][0]
    body = {"query": paragraph["qas"][0]["question"], "mode": "keywords", "rerank": False}
    hits = search(server, kb, limit=10, **body)["hits"]
    assert hits[0]["document"] == "ko-1.txt", hits[:2]
    assert any(paragraph["qas"][0]["answers"][0]["text"] in h["text"] for h in hits[:3])


def test_history_lists_and_deletes(server, geotopo) -> None:  # noqa: ANN001
    search(server, geotopo, query="Euler")
    entries = api(server, "GET", "/history", params={"kb": "geotopo"}).json()
    assert entries and entries[0]["query"] == "Euler" and entries[0]["kind"] == "search"
    assert api(server, "DELETE", f"/history/{entries[0]['id']}").status_code == 204
    assert api(server, "GET", f"/history/{entries[0]['id']}").status_code == 404


def test_bad_questions_get_clear_errors(server, geotopo) -> None:  # noqa: ANN001
    assert api(server, "POST", f"/kb/{geotopo}/search", json={"query": "  "}).status_code == 422
    long = api(server, "POST", f"/kb/{geotopo}/search", json={"query": "x" * 3000})
    assert long.status_code == 422
    assert api(server, "POST", "/kb/nope/search", json={"query": "x"}).status_code == 404
    unknown = api(server, "POST", f"/kb/{geotopo}/ask", json={"query": "x", "model": "no-such"})
    assert unknown.status_code == 404
    empty = api(server, "POST", "/kb", json={"name": "empty", "embedding_model": "minilm"})
    result = search(server, empty.json()["id"], query="anything")
    assert result["hits"] == [] and any("no documents" in n for n in result["notes"])
