"""Knowledge bases and ingestion through the real server: real PDFs from ../shared/data,
real pypdfium2 + rapidocr in the parser process, the packaged MiniLM, embedded Qdrant
owned by the server, real SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SHARED_DATA
from tests.integration.conftest import LiveServer, start_server, wait_for

PDFS = SHARED_DATA / "pdfs"
KORQUAD = SHARED_DATA / "retrieval" / "korquad_v1_dev_part1.json"

pytestmark = pytest.mark.skipif(not PDFS.exists(), reason="../shared/data is not present")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("rag") / "ws", AIFT_MAX_UPLOAD_MB="5")
    yield live
    live.stop()


def api(server: LiveServer, method: str, path: str, **kwargs) -> httpx.Response:  # noqa: ANN003
    return httpx.request(method, f"{server.url}/api/v1{path}", timeout=120, **kwargs)


def create_kb(server: LiveServer, name: str, model: str = "minilm") -> dict:
    """A knowledge base embedding with `model`: MiniLM (English; Korean only through the
    keyword index) unless a test needs a multilingual model or none of its speed
    (the packaged e5 loads in 0.1 s, MiniLM's sentence-transformers in ~8 s)."""
    response = api(server, "POST", "/kb", json={"name": name, "embedding_model": model})
    assert response.status_code == 201, response.text
    return response.json()


def upload(server: LiveServer, kb: str, files: list[tuple[str, bytes]], **form: str) -> dict:
    response = api(
        server,
        "POST",
        f"/kb/{kb}/documents",
        files=[("files", (name, data)) for name, data in files],
        data=form,
    )
    assert response.status_code == 202, response.text
    return response.json()


def finished_job(server: LiveServer, job_id: str, timeout: float = 600) -> dict:
    return wait_for(
        lambda: api(server, "GET", f"/jobs/{job_id}").json(),
        lambda job: job["status"] in ("succeeded", "failed", "cancelled", "interrupted"),
        timeout,
    )


def documents(server: LiveServer, kb: str) -> dict[str, dict]:
    return {d["name"]: d for d in api(server, "GET", f"/kb/{kb}/documents").json()}


def search(server: LiveServer, kb: str, query: str, mode: str = "keywords") -> list[dict]:
    body = {"query": query, "mode": mode, "limit": 10, "rerank": False}
    response = api(server, "POST", f"/kb/{kb}/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()["hits"]


def scanned_pdf(source: Path, page: int) -> bytes:
    """A PDF whose only page is a picture of `page` of `source` (no text layer)."""
    import io

    import pypdfium2 as pdfium

    image = pdfium.PdfDocument(str(source))[page].render(scale=2).to_pil()
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PDF")
    return out.getvalue()


def test_a_batch_of_real_pdfs_each_succeeds_or_fails_alone(server: LiveServer) -> None:
    kb = create_kb(server, "pdfs")
    assert kb["embedding_model"] == "all-MiniLM-L6-v2" and kb["dimension"] == 384
    assert kb["effective_chunk_tokens"] == 254 and "254 tokens" in kb["warning"]  # MiniLM: 256
    meta = {f["file"]: f for f in json.loads((PDFS / "files.json").read_text())}
    names = [
        "minimal-document.pdf",
        "pdflatex-4-pages.pdf",
        "habibi.pdf",
        "libreoffice-writer-password.pdf",
        "multicolumn.pdf",
    ]
    truncated = (PDFS / "pdflatex-4-pages.pdf").read_bytes()[:3000]
    batch = [(n, (PDFS / n).read_bytes()) for n in names] + [
        ("truncated.pdf", truncated),
        ("not-a-pdf.pdf", b"just some words, not a PDF\x00\x01"),
        ("../../etc/notes.md", b"# Notes\n\nThe cafeteria opens at 7:30."),
    ]
    result = upload(server, kb["id"], batch)
    assert [r["name"] for r in result["rejected"]] == ["not-a-pdf.pdf"]
    assert "not a PDF" in result["rejected"][0]["reason"]
    accepted = {d["name"] for d in result["accepted"]}
    assert "notes.md" in accepted and "truncated.pdf" in accepted  # path stripped from name
    job = finished_job(server, result["job_id"])
    assert job["status"] == "succeeded", job
    docs = documents(server, kb["id"])
    for name in ("minimal-document.pdf", "pdflatex-4-pages.pdf", "habibi.pdf", "multicolumn.pdf"):
        assert docs[name]["status"] == "indexed", docs[name]
        assert docs[name]["pages"] == meta[name]["pages"], name
        assert docs[name]["chunks"] >= 1
    assert docs["libreoffice-writer-password.pdf"]["status"] == "needs_password"
    assert "password" in docs["libreoffice-writer-password.pdf"]["error"]
    assert docs["truncated.pdf"]["status"] == "failed" and docs["truncated.pdf"]["error"]
    assert docs["notes.md"]["status"] == "indexed"
    assert not any((server.workspace / "temp_uploads").iterdir()), "temp files cleaned up"

    # text found on the right pages; the Arabic one extracted
    hits = search(server, kb["id"], "cafeteria")
    assert hits and hits[0]["document"] == "notes.md"
    hits = search(server, kb["id"], "habibi")
    assert hits[0]["document"] == "habibi.pdf" and hits[0]["page_start"] == 1
    pages_json = Path(next((server.workspace / "data" / "kb" / kb["id"]).glob("*.pages.json")))
    assert pages_json.exists()
    arabic = [
        json.loads(p.read_text())
        for p in (server.workspace / "data" / "kb" / kb["id"]).glob("*.pages.json")
        if any("\u0600" <= c <= "\u06ff" for c in p.read_text(encoding="utf-8"))
        or "\\u06" in p.read_text()
    ]
    assert arabic, "the Arabic text was extracted"

    # the same file again is stored and indexed once
    again = upload(server, kb["id"], [("copy.pdf", (PDFS / "minimal-document.pdf").read_bytes())])
    assert not again["accepted"] and again["duplicates"][0]["name"] == "minimal-document.pdf"
    assert again["duplicates"][0]["file"] == "copy.pdf"  # its own name, and what it repeats

    # the encrypted one works with its password
    locked = docs["libreoffice-writer-password.pdf"]
    retried = api(
        server,
        "POST",
        f"/kb/{kb['id']}/documents/{locked['id']}/retry",
        json={"password": "openpassword"},
    )
    assert retried.status_code == 202, retried.text
    finished_job(server, retried.json()["job_id"])
    assert documents(server, kb["id"])["libreoffice-writer-password.pdf"]["status"] == "indexed"

    # a hit opens on its page: the image, and the passage's boxes from the text layer
    four = docs["pdflatex-4-pages.pdf"]
    before = search(server, kb["id"], "Hello here is some text without a meaning")
    hit = next(h for h in before if h["document_id"] == four["id"])
    view = page_view(server, kb["id"], hit)
    assert view["source"] == "text layer" and view["boxes"], view
    assert all(0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1 for b in view["boxes"])
    assert view["width"] == pytest.approx(595.3, abs=1)
    image = httpx.get(f"{server.url}{view['image_url']}", timeout=60)
    assert image.headers["content-type"] == "image/png" and image.content[:4] == b"\x89PNG"
    notes = docs["notes.md"]
    text_view = api(server, "GET", f"/kb/{kb['id']}/documents/{notes['id']}/pages/1").json()
    assert text_view["source"] == "text" and text_view["image_url"] is None
    for bad, code in (("/pages/9", 404), ("/pages/0", 422), ("/pages/1?chunk_id=nope", 404)):
        response = api(server, "GET", f"/kb/{kb['id']}/documents/{four['id']}{bad}")
        assert response.status_code == code, (bad, response.text)
    failed = docs["truncated.pdf"]
    response = api(server, "GET", f"/kb/{kb['id']}/documents/{failed['id']}/pages/1")
    assert (
        response.status_code == 422 and "once it is indexed" in response.json()["error"]["message"]
    )

    # deleting a document takes its vectors and rows, and nothing else
    assert any(h["document_id"] == four["id"] for h in before)
    assert api(server, "DELETE", f"/kb/{kb['id']}/documents/{four['id']}").status_code == 204
    after = search(server, kb["id"], "Hello here is some text without a meaning")
    assert not any(h["document_id"] == four["id"] for h in after)
    assert "pdflatex-4-pages.pdf" not in documents(server, kb["id"])
    assert search(server, kb["id"], "cafeteria")[0]["document"] == "notes.md"


def page_view(server: LiveServer, kb: str, hit: dict) -> dict:
    path = f"/kb/{kb}/documents/{hit['document_id']}/pages/{hit['page_start']}"
    response = api(server, "GET", f"{path}?chunk_id={hit['chunk_id']}")
    assert response.status_code == 200, response.text
    return response.json()


def test_bad_requests_get_clear_errors(server: LiveServer) -> None:
    assert api(server, "GET", "/kb/nope").status_code == 404
    assert (
        api(server, "POST", "/kb", json={"name": "x", "embedding_model": "no-such"}).status_code
        == 404
    )
    kb = create_kb(server, "errors")
    assert api(server, "POST", "/kb", json={"name": "errors"}).status_code == 409
    big = upload_raw = api(
        server,
        "POST",
        f"/kb/{kb['id']}/documents",
        files=[("files", ("big.txt", b"a" * (6 * 1024 * 1024)))],
    )
    assert big.status_code == 413 and "5 MB" in big.json()["error"]["message"]
    assert upload_raw is big
    empty = api(server, "POST", f"/kb/{kb['id']}/search", json={"query": "   "})
    assert empty.status_code == 422
    bad = api(
        server,
        "POST",
        "/kb",
        json={"name": "y", "chunking": {"chunk_tokens": 64, "overlap_tokens": 64}},
    )
    assert bad.status_code == 422


def test_cli_ingests_a_folder_and_reindex_keeps_search_working(
    server: LiveServer, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from tests.integration.conftest import aift_env

    folder = tmp_path / "docs" / "nested"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("The lighthouse keeper counts seventeen gulls every morning.")
    (tmp_path / "docs" / "b.md").write_text("# Harbour\n\nFerries leave at noon.")
    env = aift_env(server.workspace, AIFT_SERVER_URL=server.url)
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "aift.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    created = run("kb", "create", "cli-kb", "--embedding-model", "multilingual-e5-small")
    assert created.returncode == 0, created.stderr
    done = run("ingest", "cli-kb", str(tmp_path / "docs"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "indexed a.txt" in done.stdout and "indexed b.md" in done.stdout
    missing = run("ingest", "cli-kb", str(tmp_path / "nothing-here"))
    said = " ".join((missing.stdout + missing.stderr).split())  # rich wraps lines
    assert missing.returncode == 2 and "does not exist" in said
    before = api(server, "GET", "/kb/cli-kb").json()
    reindex = run("kb", "reindex", "cli-kb")
    assert reindex.returncode == 0, reindex.stdout + reindex.stderr
    after = api(server, "GET", "/kb/cli-kb").json()
    assert after["generation"] == before["generation"] + 1 and after["status"] == "ready"
    assert after["points"] == before["points"] == after["chunks"]
    assert search(server, "cli-kb", "gulls")[0]["document"] == "a.txt"


def test_a_worker_killed_mid_ingestion_resumes_and_indexes_each_document_once(
    server: LiveServer,
) -> None:
    import os
    import signal

    kb = create_kb(server, "resume", "multilingual-e5-small")
    texts = [
        "\n\n".join(p["context"] for p in a["paragraphs"])
        for a in json.loads(KORQUAD.read_text())["data"][:12]
    ]
    short = [text for text in texts if len(text) < 2000]  # 8 articles, ~10k characters
    files = [(f"k{n}.txt", text.encode()) for n, text in enumerate(short)]
    files.append(("outline.pdf", (PDFS / "pdflatex-outline.pdf").read_bytes()))
    result = upload(server, kb["id"], files)
    job_id = result["job_id"]
    running = wait_for(
        lambda: api(server, "GET", f"/jobs/{job_id}").json(),
        lambda j: j["status"] == "running" and j["progress"] > 0.3,
        timeout=600,
    )
    os.kill(running["worker_pid"], signal.SIGKILL)
    wait_for(
        lambda: api(server, "GET", f"/jobs/{job_id}").json(),
        lambda j: j["status"] == "interrupted",
        timeout=240,
    )
    wait_for(
        lambda: api(server, "GET", "/system").json()["worker"],
        lambda w: w["alive"] and w["pid"] != running["worker_pid"],
        timeout=240,
    )
    assert api(server, "POST", f"/jobs/{job_id}/resume").status_code == 202
    done = finished_job(server, job_id, timeout=900)
    assert done["status"] == "succeeded" and done["attempt"] == 2, done
    docs = documents(server, kb["id"])
    assert all(d["status"] == "indexed" for d in docs.values()), docs
    assert docs["outline.pdf"]["pages"] == 4
    info = api(server, "GET", f"/kb/{kb['id']}").json()
    assert info["points"] == info["chunks"] == sum(d["chunks"] for d in docs.values())


def test_a_document_deleted_mid_batch_is_skipped_and_a_failed_retry_fails(
    server: LiveServer,
) -> None:
    kb = create_kb(server, "deleted-mid-batch", "multilingual-e5-small")
    truncated = (PDFS / "pdflatex-4-pages.pdf").read_bytes()[:3000]
    scans = [("scan-1.pdf", scanned_pdf(PDFS / "GeoTopo-komprimiert.pdf", 1))]
    copy = ("scan-1-copy.pdf", scans[0][1])
    result = upload(server, kb["id"], [("a-truncated.pdf", truncated), *scans, copy])
    assert [(d["file"], d["name"]) for d in result["duplicates"]] == [
        ("scan-1-copy.pdf", "scan-1.pdf")
    ]
    job_id = result["job_id"]
    broken = next(d for d in result["accepted"] if d["name"] == "a-truncated.pdf")
    wait_for(
        lambda: documents(server, kb["id"])["a-truncated.pdf"],
        lambda d: d["status"] == "failed",
        timeout=300,
    )
    assert api(server, "DELETE", f"/kb/{kb['id']}/documents/{broken['id']}").status_code == 204
    assert api(server, "GET", f"/jobs/{job_id}").json()["status"] == "running", "still OCR-ing"
    job = finished_job(server, job_id)
    assert job["status"] == "succeeded", job
    assert job["result"]["counts"] == {"indexed": 1, "deleted": 1}, job["result"]
    assert {d["status"] for d in documents(server, kb["id"]).values()} == {"indexed"}

    # a retry whose document fails again is a failed job, with the reason
    again = upload(server, kb["id"], [("b-truncated.pdf", truncated)])
    assert finished_job(server, again["job_id"])["status"] == "failed"
    doc = next(iter(again["accepted"]))
    retried = api(server, "POST", f"/kb/{kb['id']}/documents/{doc['id']}/retry")
    assert retried.status_code == 202, retried.text
    failed = finished_job(server, retried.json()["job_id"])
    assert failed["status"] == "failed" and "b-truncated.pdf" in failed["error"], failed


def test_office_files_sheets_web_pages_and_e_books_are_ingested_with_their_tables(
    server: LiveServer, tmp_path: Path
) -> None:
    """Each format through the real upload and ingestion job: accepted by its bytes,
    its natural pages counted, a table cell found by search on the right page (a slide,
    a sheet's rows, a section), and an unsupported file refused alone."""
    from tests.unit.test_document_formats import make_docx

    kb = create_kb(server, "formats", "multilingual-e5-small")
    rows = "Part,Stock,Shelf\n" + "".join(f"widget-{i},{i * 3},B{i}\n" for i in range(120))
    files = [
        ("manual.docx", make_docx(tmp_path / "manual.docx").read_bytes()),
        ("stock.csv", rows.encode()),
        (
            "guide.html",
            b"<html><body><h1>Guide</h1><table><tr><th>Port</th><th>Use</th></tr>"
            b"<tr><td>8050</td><td>the zorvex console</td></tr></table></body></html>",
        ),
        ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600),
    ]
    result = upload(server, kb["id"], files)
    assert [r["name"] for r in result["rejected"]] == ["old.doc"]
    assert "old binary format" in result["rejected"][0]["reason"]
    assert finished_job(server, result["job_id"])["status"] == "succeeded"
    docs = documents(server, kb["id"])
    assert {name: d["status"] for name, d in docs.items()} == dict.fromkeys(
        ("manual.docx", "stock.csv", "guide.html"), "indexed"
    )
    assert docs["manual.docx"]["pages"] == 2 and docs["stock.csv"]["pages"] == 6

    hit = search(server, kb["id"], "widget-77")[0]
    assert hit["document"] == "stock.csv" and hit["page_start"] == hit["page_end"] == 4, hit
    assert "| Part | Stock | Shelf |" in hit["text"] and "| widget-77 | 231 | B77 |" in hit["text"]
    assert hit["section"] == "Table (rows 68–88)", "a page of rows is one chunk"
    hit = search(server, kb["id"], "Li-ion 18650 volts")[0]
    assert hit["document"] == "manual.docx" and hit["page_start"] <= 2 <= hit["page_end"]
    assert "## 2.1 Batteries" in hit["text"] and "| Li-ion 18650 | 3.7 | 12 |" in hit["text"]
    assert search(server, kb["id"], "zorvex")[0]["document"] == "guide.html"
