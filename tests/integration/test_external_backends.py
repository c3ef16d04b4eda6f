"""The same code on PostgreSQL and Redis: what workers on several machines share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect

from aift.config import load_settings
from aift.runtime import Runtime
from aift.work.schemas import JobCreate, JobStatus
from tests.integration.backends import postgres_server, redis_server
from tests.integration.conftest import start_server, wait_for


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def test_schema_and_services_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    settings = load_settings(workspace=tmp_path / "ws", database_url=postgres_url, offline=True)
    runtime = Runtime.start(settings)
    runtime.db.migrate()
    assert {"jobs", "models"} <= set(inspect(runtime.db.engine).get_table_names())
    job = runtime.jobs.submit(JobCreate(kind="system.benchmark", config={"steps": 1}))
    assert runtime.jobs.get(job.id).created_at.tzinfo is not None
    assert runtime.jobs.cancel(job.id).status == JobStatus.cancelled
    assert runtime.jobs.list(status=[JobStatus.cancelled]).total >= 1
    names = {m.name for m in runtime.models.scan()}
    assert "SmolLM2-135M-Instruct" in names
    runtime.close()


def test_server_and_worker_on_postgresql_and_redis(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    server = start_server(tmp_path / "ws", AIFT_DATABASE_URL=postgres_url, AIFT_REDIS_URL=redis_url)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            system = client.get("/api/v1/system").json()
            assert system["queue"]["backend"] == "redis"
            assert "postgresql" in system["settings"]["effective_database_url"]
            job = client.post(
                "/api/v1/jobs",
                json={"kind": "system.benchmark", "config": {"steps": 3, "seconds_per_step": 0.2}},
            ).json()
            done = wait_for(
                lambda: client.get(f"/api/v1/jobs/{job['id']}").json(),
                lambda j: j["status"] in {"succeeded", "failed"},
            )
            assert done["status"] == "succeeded" and done["result"]["steps"] == 3
    finally:
        server.stop()


def test_unreachable_queue_fails_the_job_with_a_clear_error(tmp_path: Path) -> None:
    from aift.errors import ServiceUnavailable
    from tests.integration.conftest import free_port

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = load_settings(workspace=tmp_path / "ws", redis_url=dead_redis, offline=True)
    runtime = Runtime.start(settings)
    with pytest.raises(ServiceUnavailable, match="AIFT_REDIS_URL"):
        runtime.jobs.submit(JobCreate(kind="system.benchmark", config={"steps": 1}))
    [job] = runtime.jobs.list().items
    assert job.status == JobStatus.failed and "queue is unavailable" in job.error


def test_the_search_cache_on_redis_is_shared_expires_and_invalidates(redis_url: str) -> None:
    import time

    from aift.monitoring import metrics
    from aift.rag.cache import open_cache

    server_a = open_cache(redis_url, ttl_seconds=60, max_entries=16)
    server_b = open_cache(redis_url, ttl_seconds=60, max_entries=16)  # another process
    assert server_a.backend.name == "redis"
    calls: list[str] = []

    def compute() -> dict:
        calls.append("searched")
        return {"hits": [len(calls)]}

    request = {"query": "harbour master", "limit": 3}
    hits = metrics.cache_lookups.labels("search", "hit")
    before = hits._value.get()
    assert server_a.search("kb1", request, compute) == ({"hits": [1]}, False)
    assert server_b.search("kb1", request, compute) == ({"hits": [1]}, True)
    assert hits._value.get() == before + 1
    server_b.invalidate("kb1")  # the knowledge base changed, seen by every process
    assert server_a.search("kb1", request, compute) == ({"hits": [2]}, False)
    assert server_a.search("kb2", request, compute) == ({"hits": [3]}, False)  # per base
    vector = [0.25, -1.5, 3.0]
    assert server_a.query_vector("minilm", "q", lambda: vector) == vector
    assert server_b.query_vector("minilm", "q", lambda: [9.0]) == vector

    short = open_cache(redis_url, ttl_seconds=0.3, max_entries=16)
    short.search("kb3", request, compute)
    time.sleep(1.0)
    assert short.search("kb3", request, compute)[1] is False, "an expired entry was served"


def test_a_search_cache_whose_redis_is_gone_only_costs_speed() -> None:
    from aift.rag.cache import open_cache
    from tests.integration.conftest import free_port

    dead = open_cache(f"redis://127.0.0.1:{free_port()}/0", ttl_seconds=60, max_entries=16)
    assert dead.search("kb", {"q": 1}, lambda: {"hits": []}) == ({"hits": []}, False)
    dead.invalidate("kb")  # logged, not raised
    assert dead.query_vector("m", "q", lambda: [1.0]) == [1.0]
