"""Issue 31: no web page, neighbour or file can act as the user — against a real
default server (loopback, no key), with the official clients still working.

Every request here is what a browser would send for a hostile page (a foreign Host
after DNS rebinding, a foreign Origin or Sec-Fetch-Site on a form or no-preflight
fetch) or what a hostile client sends (oversized bodies, poisoned blobs, names that
take another's model, registry and path tricks). Each test checks that nothing changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import SHARED_DATA
from tests.integration.conftest import LiveServer, free_port, start_server, wait_for

SHARED_PDFS = SHARED_DATA / "pdfs"
FOREIGN = "http://127.0.0.1:1"  # another local origin: same site, other port
SECRET = "s3cret-ollama-password"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A default server (no key) with small limits, a trusted extra host name and an
    Ollama URL with credentials (nothing listens there)."""
    server = start_server(
        tmp_path_factory.mktemp("websec") / "ws",
        AIFT_ALLOWED_HOSTS="aift.test,.corp.test",
        AIFT_MAX_JSON_MB="1",
        AIFT_MAX_UPLOAD_REQUEST_MB="2",
        AIFT_MAX_BLOB_MB="1",
        AIFT_MAX_UPLOAD_FILES="3",
        AIFT_MAX_PDF_PAGES="3",
        AIFT_OLLAMA_URL=f"http://aift:{SECRET}@127.0.0.1:{free_port()}",
    )
    yield server
    server.stop()


def tiny_gguf(path: Path) -> Path:
    """A real GGUF file of a few hundred bytes (metadata and one tensor)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    writer.add_context_length(64)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def kb_documents(client: httpx.Client, kb: str) -> list[dict]:
    response = client.get(f"/api/v1/kb/{kb}/documents")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_rebinding_host_name_gets_nothing(live: LiveServer) -> None:
    with live.client() as client:
        for path in ("/api/v1/conversations", "/", "/api/tags", "/v1/models"):
            refused = client.get(path, headers={"Host": f"rebind.evil.example:{live.port}"})
            assert refused.status_code == 400, path
            assert "AIFT_ALLOWED_HOSTS" in refused.text
        deleted = client.delete("/api/v1/kb/any", headers={"Host": "rebind.evil.example"})
        assert deleted.status_code == 400
        for host in (
            f"127.0.0.1:{live.port}",
            f"localhost:{live.port}",
            f"[::1]:{live.port}",
            "app.localhost",
            "aift.test",
            "gpu.corp.test:8050",
        ):
            assert client.get("/api/v1/conversations", headers={"Host": host}).status_code == 200
    with pytest.raises(InvalidStatus):  # the WebSocket of a rebinding page: refused
        raw = socket.create_connection(("127.0.0.1", live.port), timeout=60)
        with connect(
            f"ws://rebind.evil.example:{live.port}/ws/jobs/x", sock=raw, open_timeout=60
        ) as ws:
            ws.recv(timeout=5)


def test_cross_site_requests_change_nothing(live: LiveServer) -> None:
    """The no-preflight requests a hostile page can make: a multipart upload into a
    knowledge base, a dataset upload, body-less POSTs, text/plain and form bodies on
    the Ollama routes — from a foreign origin (even another port of localhost) or
    marked cross-site by Sec-Fetch-Site. All 403; the same calls without browser
    headers (curl, SDKs) or from aift's own origin work."""
    with live.client() as client:
        assert client.post("/api/v1/kb", json={"name": "victim"}).status_code == 201
        hostile = [{"Origin": FOREIGN}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}]
        hostile.append({"Sec-Fetch-Site": "same-site"})  # another port of this machine
        upload = {"files": ("planted.txt", b"The password is hunter2.", "text/plain")}
        for headers in hostile:
            attempts = [
                client.post("/api/v1/kb/victim/documents", files=upload, headers=headers),
                client.post(
                    "/api/v1/datasets",
                    files={"file": ("d.jsonl", b'{"text": "x"}\n', "text/plain")},
                    headers=headers,
                ),
                client.post("/api/v1/models/scan", headers=headers),
                client.delete("/api/v1/kb/victim", headers=headers),
                client.post(
                    "/api/pull",
                    content=b'{"model": "ollama/llama3"}',
                    headers={**headers, "Content-Type": "text/plain"},
                ),
                client.post(
                    "/api/chat",
                    content=b'{"model": "x", "messages": []}',
                    headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                ),
                client.post("/api/blobs/sha256:" + "0" * 64, content=b"x", headers=headers),
                client.post(
                    "/api/v1/evaluations/model",
                    json={"model": "smollm2", "dataset": "d"},
                    headers=headers,
                ),
                client.post(
                    "/api/v1/evaluations/harness",
                    json={"model": "smollm2", "tasks": ["t"]},
                    headers=headers,
                ),
                client.post(
                    "/api/v1/kb/victim/evaluate-answers",
                    files={"file": ("q.jsonl", b'{"question": "q", "answer": "a"}')},
                    headers=headers,
                ),
                client.post(
                    "/api/v1/models/x/score",
                    json={"messages": [{"role": "user", "content": "q"}], "replies": ["a"]},
                    headers=headers,
                ),
                client.post(
                    "/api/v1/arena/battles",
                    content=b'{"prompt": "q"}',
                    headers={**headers, "Content-Type": "text/plain"},
                ),
                client.post("/api/v1/arena/battles", json={"prompt": "q"}, headers=headers),
                client.post("/api/v1/arena/battles/x/answers/a", headers=headers),
                client.post("/api/v1/arena/battles/x/vote", json={"winner": "a"}, headers=headers),
                client.post(
                    "/api/create",
                    content=b'{"model": "m", "files": {}}',
                    headers={**headers, "Content-Type": "text/plain"},
                ),
            ]
            assert [r.status_code for r in attempts] == [403] * len(attempts), headers
        assert kb_documents(client, "victim") == []
        assert client.get("/api/v1/datasets").json() == []
        assert client.get("/api/v1/evaluations").json() == [], "no evaluation was queued"
        assert client.get("/api/v1/arena/battles").json() == [], "no battle was started"
        assert client.get("/api/v1/kb/victim").status_code == 200
        assert not (live.workspace / "models" / ".blobs").exists()
        own = {"Origin": live.url, "Sec-Fetch-Site": "same-origin"}
        assert client.post("/api/v1/models/scan", headers=own).status_code == 200
        trusted = client.post("/api/v1/models/scan", headers={"Origin": "http://localhost:8050"})
        assert trusted.status_code == 200, "AIFT_CORS_ORIGINS are trusted"
        plain = client.post("/api/v1/kb/victim/documents", files=upload)  # curl, SDKs
        assert plain.status_code == 202
        assert [d["name"] for d in kb_documents(client, "victim")] == ["planted.txt"]
        reads = client.get("/api/v1/kb", headers={"Origin": FOREIGN})
        assert reads.status_code == 200 and "access-control-allow-origin" not in reads.headers
    with pytest.raises(InvalidStatus):  # a foreign page may not open the job stream
        with connect(
            f"{live.ws_url}/ws/jobs/x", additional_headers={"Origin": FOREIGN}, open_timeout=60
        ) as ws:
            ws.recv(timeout=5)


def test_bodies_are_capped_while_they_arrive(live: LiveServer) -> None:
    """JSON past AIFT_MAX_JSON_MB, uploads past AIFT_MAX_UPLOAD_REQUEST_MB and blobs past
    AIFT_MAX_BLOB_MB are refused (413) whether their size is declared or streamed."""
    big = b"x" * (3 * 1024 * 1024)

    def chunked() -> Iterator[bytes]:  # no Content-Length: the size is only learnt reading
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    with live.client() as client:
        declared = client.post(
            "/v1/chat/completions", content=big, headers={"Content-Type": "application/json"}
        )
        assert declared.status_code == 413 and "AIFT_MAX_JSON_MB" in declared.text
        streamed = client.post(
            "/v1/chat/completions",
            content=chunked(),
            headers={"Content-Type": "application/json"},
        )
        assert streamed.status_code == 413 and "AIFT_MAX_JSON_MB" in streamed.text
        client.post("/api/v1/kb", json={"name": "limits"})
        upload = client.post(
            "/api/v1/kb/limits/documents", files={"files": ("big.txt", big, "text/plain")}
        )
        assert upload.status_code == 413 and "AIFT_MAX_UPLOAD_REQUEST_MB" in upload.text
        four = [("files", (f"{n}.txt", b"x", "text/plain")) for n in range(4)]
        too_many = client.post("/api/v1/kb/limits/documents", files=four)
        assert too_many.status_code == 422 and "AIFT_MAX_UPLOAD_FILES" in too_many.text
        flood = [("files", (f"{n}.txt", b"x", "text/plain")) for n in range(500)]
        flooded = client.post("/api/v1/kb/limits/documents", files=flood)
        assert flooded.status_code == 400 and "Too many files" in flooded.text
        assert kb_documents(client, "limits") == []
        digest = "sha256:" + hashlib.sha256(big).hexdigest()
        blob = client.post(f"/api/blobs/{digest}", content=chunked())
        assert blob.status_code == 413 and "AIFT_MAX_BLOB_MB" in blob.json()["error"]
        assert client.head(f"/api/blobs/{digest}").status_code == 404
        assert client.get("/healthz").status_code == 200
    leftovers = list((live.workspace / "models" / ".blobs").glob("*"))
    assert leftovers == [], leftovers
    temp = live.workspace / "temp_uploads"
    assert not temp.exists() or list(temp.iterdir()) == []


def test_two_uploads_under_one_digest_cannot_poison_the_blob(live: LiveServer) -> None:
    """Concurrent uploads of different bytes under one digest: the right bytes are
    stored, the wrong ones refused, no temp file is left, and a stored blob is never
    replaced."""
    good = b"GGUF" + bytes(range(256)) * 64
    evil = b"GGUF" + b"\xff" * len(good)
    digest = "sha256:" + hashlib.sha256(good).hexdigest()
    results: dict[str, int] = {}
    both_sending = threading.Barrier(2, timeout=60)

    def send(name: str, data: bytes) -> None:
        def slow() -> Iterator[bytes]:
            for start in range(0, len(data), 1024):
                yield data[start : start + 1024]
                if start == 0:  # neither upload ends before both have begun
                    both_sending.wait()

        with live.client() as client:
            results[name] = client.post(f"/api/blobs/{digest}", content=slow()).status_code

    threads = [
        threading.Thread(target=send, args=(n, d)) for n, d in (("good", good), ("evil", evil))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == {"good": 201, "evil": 422}, results
    blobs = live.workspace / "models" / ".blobs"
    stored = blobs / f"sha256-{digest.split(':')[1]}"
    assert stored.read_bytes() == good
    with live.client() as client:
        again = client.post(f"/api/blobs/{digest}", content=evil)
        assert again.status_code == 422, "wrong bytes are refused even for a stored digest"
        assert client.post(f"/api/blobs/{digest}", content=good).status_code == 201
    assert stored.read_bytes() == good, "a stored blob is never replaced"
    assert [p.name for p in blobs.iterdir()] == [stored.name], "no temp file is left"


def test_create_never_takes_another_models_name(live: LiveServer, tmp_path: Path) -> None:
    """Ollama's /api/create replaced any registered model by name — the packaged one
    too, and the replacement survived a rescan. Now: 409, unless the caller replaces a
    model /api/create made, saying so."""
    from aift.models.packaged import PACKAGED_MODELS

    packaged = next(m for m in PACKAGED_MODELS if m.name.startswith("SmolLM2"))
    data = tiny_gguf(tmp_path / "tiny.gguf").read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with live.client() as client:
        assert client.post(f"/api/blobs/{digest}", content=data).status_code == 201
        body = {"model": packaged.name, "files": {"m.gguf": digest}, "stream": False}
        taken = client.post("/api/create", json=body)
        assert taken.status_code == 409, taken.text
        replace = client.post("/api/create", json={**body, "replace": True})
        assert replace.status_code == 409, "a packaged model is never replaced"
        mine = {"model": "mine", "files": {"m.gguf": digest}, "stream": False}
        assert client.post("/api/create", json=mine).status_code == 200
        again = client.post("/api/create", json=mine)
        assert again.status_code == 409 and "replace" in again.json()["error"]
        replaced = client.post("/api/create", json={**mine, "system": "Be brief.", "replace": True})
        assert replaced.status_code == 200
        assert client.post("/api/v1/models/scan").status_code == 200
        models = {m["name"]: m for m in client.get("/api/v1/models").json()}
        assert models[packaged.name]["source"] == "packaged"
        assert models["mine"]["details"]["system"] == "Be brief."
        shown = client.post("/api/show", json={"model": packaged.name}).json()
        assert "/" not in shown["modelfile"].removeprefix("FROM ").strip(), shown["modelfile"]


def test_no_pull_from_a_registry_not_allowed_and_no_credentials_shown(live: LiveServer) -> None:
    with live.client() as client:
        for name, says in (
            ("ollama/evil.example/ns/model", "AIFT_OLLAMA_REGISTRIES"),
            ("ollama/http://evil.example/x", "not an Ollama model name"),
        ):
            refused = client.post("/api/v1/models/pull", json={"model": name})
            assert refused.status_code == 422 and says in refused.text, refused.text
            ollama = client.post("/api/pull", json={"model": name, "stream": False})
            assert ollama.status_code == 422 and says in ollama.text, ollama.text
        jobs = client.get("/api/v1/jobs").json()["items"]
        assert all("evil" not in job["title"] for job in jobs)
        system = client.get("/api/v1/system").text
        assert SECRET not in system and "aift:***@127.0.0.1" in system
        failed = client.post(
            "/api/generate", json={"model": "ollama/llama3", "prompt": "hi", "stream": False}
        )
        assert failed.status_code >= 400 and SECRET not in failed.text
    assert SECRET not in live.log()


def test_dataset_and_model_limits_are_enforced_before_the_work(live: LiveServer) -> None:
    """A Parquet file whose footer promises more rows than allowed is refused before
    it is decoded; a model path outside the model folders is a 400; a PDF past
    AIFT_MAX_PDF_PAGES fails alone with a clear message."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aift.training.formats import MAX_ROWS

    out = io.BytesIO()
    pq.write_table(pa.table({"text": pa.array([0] * (MAX_ROWS + 1), pa.int8())}), out)
    assert out.tell() < 1024 * 1024, "a small file that expands"
    with live.client() as client:
        refused = client.post(
            "/api/v1/datasets",
            files={"file": ("huge.parquet", out.getvalue(), "application/octet-stream")},
        )
        assert refused.status_code == 422 and "rows" in refused.json()["error"]["message"]
        rows = b'{"text": "hello"}\n' * 4
        path_ref = client.post(
            "/api/v1/datasets",
            files={"file": ("d.jsonl", rows, "text/plain")},
            data={"base_model": "/etc"},
        )
        assert path_ref.status_code == 422 and "AIFT_MODEL_DIRS" in path_ref.text
        assert client.get("/api/v1/datasets").json() == []
        client.post("/api/v1/kb", json={"name": "pages"})
        pdf = (SHARED_PDFS / "pdflatex-4-pages.pdf").read_bytes()
        accepted = client.post(
            "/api/v1/kb/pages/documents",
            files={"files": ("four.pdf", pdf, "application/pdf")},
        )
        assert accepted.status_code == 202
        done = wait_for(
            lambda: kb_documents(client, "pages")[0],
            lambda d: d["status"] in ("failed", "indexed"),
        )
        assert done["status"] == "failed" and "AIFT_MAX_PDF_PAGES" in (done["error"] or ""), done


def test_the_ollama_routes_still_read_curl_bodies(live: LiveServer) -> None:
    """Ollama's documented `curl -d '{…}'` (form-encoded, no Origin) keeps working."""
    with live.client() as client:
        shown = client.post(
            "/api/show",
            content=json.dumps({"model": "SmolLM2-135M-Instruct"}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert shown.status_code == 200, shown.text
