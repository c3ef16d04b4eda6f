"""Operating aift: Prometheus metrics, JSON logs without secrets, the search cache, the
dashboard reading the same numbers, backup and restore onto a fresh workspace, and
TensorBoard over the training logs — against real servers and the real CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.conftest import LiveServer, aift_env, free_port, start_server, wait_for

API_KEY = "ops-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MODEL = "SmolLM2-135M-Instruct"

HARBOUR = """The Harbour Office of Veltmark

The harbour office of Veltmark opens at seven in the morning and closes at noon on
Saturdays. Ferry tickets to the island of Orsa are sold only at the harbour office.
The harbour master is Ilse Korven, who keeps the tide tables in a green ledger.
"""
ORCHARD = """The Orchards of Brannock

Brannock grows a pear called the Winter Amber, harvested in late October. The orchard
cooperative presses cider in the old mill by the river and sells it every Thursday.
"""
BAKERY = """The Bakery on Quill Street

The bakery on Quill Street bakes rye bread with caraway and opens at five in the
morning. Its oven was built in 1921 and still burns beech wood.
"""
QUERIES = ("Who is the harbour master?", "When is the pear harvested?", "ferry tickets to Orsa")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("ops") / "ws", AIFT_API_KEY=API_KEY)
    yield live
    live.stop()


def api(server: LiveServer, method: str, path: str, **kwargs) -> httpx.Response:  # noqa: ANN003
    headers = {**AUTH, **kwargs.pop("headers", {})}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=300, **kwargs)


def wait_job(server: LiveServer, job_id: str) -> dict:
    job = wait_for(
        lambda: api(server, "GET", f"/api/v1/jobs/{job_id}").json(),
        lambda j: j["status"] in ("succeeded", "failed", "cancelled", "interrupted"),
        timeout=600,
    )
    assert job["status"] == "succeeded", job
    return job


def upload(server: LiveServer, kb: str, files: list[tuple[str, str]]) -> dict:
    sent = [("files", (name, text.encode())) for name, text in files]
    response = api(server, "POST", f"/api/v1/kb/{kb}/documents", files=sent)
    assert response.status_code == 202, response.text
    return wait_job(server, response.json()["job_id"])


def search(server: LiveServer, kb: str, query: str) -> dict:
    response = api(server, "POST", f"/api/v1/kb/{kb}/search", json={"query": query, "limit": 3})
    assert response.status_code == 200, response.text
    return response.json()


def scrape(server: LiveServer) -> str:
    response = api(server, "GET", "/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def metric(text: str, name: str, default: float | None = None, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (`default` when
    there are none yet, else a failure)."""
    total, found = 0.0, False
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(4))
            found = True
    if not found and default is not None:
        return default
    assert found, f"no sample {name} {labels}"
    return total


@pytest.fixture(scope="module")
def kb(server: LiveServer) -> str:
    created = api(server, "POST", "/api/v1/kb", json={"name": "towns"})
    assert created.status_code == 201, created.text
    kb_id = created.json()["id"]
    upload(server, kb_id, [("harbour.md", HARBOUR), ("orchard.md", ORCHARD)])
    return kb_id


def test_metrics_are_protected_and_count_what_happens(server: LiveServer, kb: str) -> None:
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "ops-trace-1"})
    assert api(server, "GET", "/api/v1/jobs/nope").status_code == 404
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY)
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    text = scrape(server)
    assert metric(text, "aift_http_requests_total", route="/healthz", status="200") >= 1
    # the route template, not the raw path: labels stay few whatever clients ask for
    assert metric(text, "aift_http_requests_total", route="/api/v1/jobs/{job_id}", status="404")
    assert "/api/v1/jobs/nope" not in text
    assert metric(text, "aift_http_request_duration_seconds_count", route="/healthz") >= 1
    assert metric(text, "aift_model_requests_total", model=MODEL) >= 1
    assert metric(text, "aift_model_generated_tokens_total", model=MODEL) == (
        reply.usage.completion_tokens
    )
    assert metric(text, "aift_model_prompt_tokens_total", model=MODEL) == reply.usage.prompt_tokens
    assert metric(text, "aift_model_time_to_first_token_seconds_count", model=MODEL) == 1
    assert metric(text, "aift_model_memory_bytes", model=MODEL) > 10_000_000
    assert metric(text, "aift_jobs", kind="rag.ingest", state="succeeded") == 1
    assert metric(text, "aift_job_duration_seconds_count", kind="rag.ingest") == 1
    assert metric(text, "aift_job_queue_depth") == 0
    assert metric(text, "aift_kb_documents", knowledge_base="towns", status="indexed") == 2
    assert metric(text, "aift_kb_chunks", knowledge_base="towns") >= 2
    assert metric(text, "process_resident_memory_bytes") > 50_000_000
    assert metric(text, "aift_machine_memory_total_bytes") > 0


def test_repeated_searches_come_from_the_cache_until_the_knowledge_base_changes(
    server: LiveServer, kb: str
) -> None:
    before = scrape(server)
    first = search(server, kb, QUERIES[0])
    again = search(server, kb, QUERIES[0])
    assert not first["cached"] and again["cached"]
    assert again["hits"] == first["hits"]
    assert first["hits"][0]["document"] == "harbour.md"
    after = scrape(server)
    hits = metric(after, "aift_cache_lookups_total", cache="search", result="hit")
    assert hits == metric(before, "aift_cache_lookups_total", 0, cache="search", result="hit") + 1
    assert metric(after, "aift_search_duration_seconds_count", cached="true") >= 1
    # a new document changes what the knowledge base returns: the cache must not answer
    upload(server, kb, [("bakery.md", BAKERY)])
    fresh = search(server, kb, "What wood does the bakery oven burn?")
    assert not fresh["cached"] and fresh["hits"][0]["document"] == "bakery.md"
    changed = search(server, kb, QUERIES[0])
    assert not changed["cached"], "a search cached before the upload was served after it"
    # the query embedding was cached: the same question again embeds nothing new
    assert metric(scrape(server), "aift_cache_lookups_total", cache="query_embedding", result="hit")


def test_the_dashboard_shows_the_numbers_of_the_metrics(server: LiveServer, kb: str) -> None:
    search(server, kb, QUERIES[1])
    page = api(server, "GET", "/partials/dashboard").text
    text = scrape(server)  # nothing searched or generated in between
    shown = re.search(r'data-metric="aift_search_duration_seconds_count">(\d+)', page)
    assert shown and int(shown.group(1)) == int(metric(text, "aift_search_duration_seconds_count"))
    shown = re.search(r'data-metric="aift_model_requests_total">(\d+), (\d+) tokens', page)
    assert shown and int(shown.group(1)) == int(metric(text, "aift_model_requests_total"))
    assert int(shown.group(2)) == int(metric(text, "aift_model_generated_tokens_total"))


def test_logs_are_json_lines_with_request_and_job_ids_and_no_secrets(
    server: LiveServer, kb: str
) -> None:
    api(server, "GET", "/api/v1/system", headers={"X-Request-ID": "ops-trace-2"})
    logs = server.workspace / "logs"

    def entries() -> list[dict]:
        lines = (logs / "server.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    # the access line is written once the response has gone out
    wait_for(
        entries,
        lambda found: any(
            e["request_id"] == "ops-trace-2" and "/api/v1/system" in e["message"] for e in found
        ),
        timeout=30,
    )
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries())
    job_logs = list((logs / "jobs").glob("*.jsonl"))
    assert job_logs, "every job writes JSON lines"
    job_entries = [json.loads(line) for line in job_logs[0].read_text().splitlines()]
    assert {e["job_id"] for e in job_entries} == {job_logs[0].stem}
    for path in logs.rglob("*"):
        if path.is_file():
            assert API_KEY not in path.read_text(errors="replace"), f"the API key is in {path}"
    assert API_KEY not in server.log()


def run_cli(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aift.cli", *args],
        env=aift_env(workspace, AIFT_API_KEY=API_KEY),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_backup_taken_while_serving_restores_the_same_models_and_search_results(
    server: LiveServer, kb: str, tmp_path: Path
) -> None:
    rows = "".join(
        json.dumps({"instruction": f"Code of item {n}?", "output": f"X{n * 7}"}) + "\n"
        for n in range(12)
    )
    added = api(server, "POST", "/api/v1/datasets", files={"file": ("codes.jsonl", rows.encode())})
    assert added.status_code == 201, added.text
    dataset = added.json()["dataset"]
    expected = {q: search(server, kb, q)["hits"] for q in QUERIES}
    models = sorted(m["id"] for m in api(server, "GET", "/v1/models").json()["data"])
    kbs = api(server, "GET", "/api/v1/kb").json()
    backup = tmp_path / "backup"
    done = run_cli(server.workspace, "backup", str(backup))
    assert done.returncode == 0, done.stderr + done.stdout
    manifest = json.loads((backup / "aift-backup.json").read_text())
    documents = sum(k["documents"] for k in kbs)
    assert manifest["counts"]["documents"] == documents and manifest["database_revision"]
    refused = run_cli(server.workspace, "backup", str(backup))
    assert refused.returncode == 2 and "not empty" in refused.stderr + refused.stdout

    fresh = tmp_path / "fresh-machine" / "ws"
    restored = run_cli(fresh, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr + restored.stdout
    again = run_cli(fresh, "restore", str(backup))
    assert again.returncode == 2 and "already holds a workspace" in again.stderr + again.stdout
    second = start_server(fresh, AIFT_API_KEY=API_KEY)
    try:
        jobs = api(second, "GET", "/api/v1/jobs", params={"kind": "rag.restore_vectors"}).json()
        wait_job(second, jobs["items"][0]["id"])
        wait_for(  # the index owner flips each document once its chunks are written
            lambda: {"statuses": api(second, "GET", f"/api/v1/kb/{kb}/documents").json()},
            lambda found: {d["status"] for d in found["statuses"]} == {"indexed"},
            timeout=120,
        )
        assert sorted(m["id"] for m in api(second, "GET", "/v1/models").json()["data"]) == models
        restored_kbs = api(second, "GET", "/api/v1/kb").json()
        assert [(k["id"], k["name"], k["documents"], k["chunks"]) for k in restored_kbs] == [
            (k["id"], k["name"], k["documents"], k["chunks"]) for k in kbs
        ]
        report = api(second, "GET", f"/api/v1/datasets/{dataset['id']}").json()
        assert report["dataset"]["rows_train"] == dataset["rows_train"]
        assert report["preview"] and "X" in report["preview"][0], report  # its files came too
        for query, hits in expected.items():
            got = search(second, kb, query)["hits"]
            assert [(h["chunk_id"], h["document"]) for h in got] == [
                (h["chunk_id"], h["document"]) for h in hits
            ], query
            for new, old in zip(got, hits, strict=True):
                assert new["text"] == old["text"]
                # each part on its own, so a difference says where it comes from
                for part in ("dense_score", "keyword_score", "fused_score"):
                    assert new[part] == pytest.approx(old[part], abs=1e-4), (query, part, got)
    finally:
        second.stop()


def test_tensorboard_serves_the_training_logs(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    workspace = tmp_path / "ws"
    writer = SummaryWriter(str(workspace / "outputs" / "run-1" / "tensorboard"))
    for step in range(3):
        writer.add_scalar("train/loss", 3.0 - step, step)
    writer.close()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aift.cli", "tensorboard", "--port", str(port)],
        env=aift_env(workspace),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def runs() -> dict | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/data/runs", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                return None

        found = wait_for(runs, lambda r: bool(r), timeout=120)
        assert "run-1/tensorboard" in found
    finally:
        process.terminate()
        process.wait(timeout=30)
