"""Durable jobs through a real server, its worker process and job processes."""

from __future__ import annotations

import json
import os
import signal

import httpx
import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from aift.procutil import job_process_name
from tests.integration.conftest import LiveServer, wait_for

TERMINAL = {"succeeded", "failed", "cancelled", "interrupted"}


def process_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_process_gone(pid: int, timeout: float = 60.0) -> None:
    wait_for(lambda: {"gone": process_gone(pid)}, lambda v: v["gone"], timeout)


def submit(client: httpx.Client, steps: int, seconds: float = 0.25) -> dict:
    response = client.post(
        "/api/v1/jobs",
        json={"kind": "system.benchmark", "config": {"steps": steps, "seconds_per_step": seconds}},
    )
    assert response.status_code == 202, response.text
    return response.json()


def get(client: httpx.Client, job_id: str) -> dict:
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def until(client: httpx.Client, job_id: str, predicate, timeout: float = 240.0) -> dict:  # noqa: ANN001
    return wait_for(lambda: get(client, job_id), predicate, timeout)


def finish(client: httpx.Client, job_id: str) -> dict:
    return until(client, job_id, lambda j: j["status"] in TERMINAL)


def test_job_runs_with_progress_over_websocket(server: LiveServer) -> None:
    with server.client() as client:
        job = submit(client, steps=5)
        events = []
        with connect(f"{server.ws_url}/ws/jobs/{job['id']}", open_timeout=60) as socket:
            for raw in socket:
                events.append(json.loads(raw))
        statuses = [e["status"] for e in events]
        progress = [e["progress"] for e in events]
        assert statuses[-1] == "succeeded"
        assert "running" in statuses
        assert progress == sorted(progress), "progress never goes back"
        assert len({p for p in progress if 0 < p < 1}) >= 2, events
        assert any("GFLOP/s" in e["message"] for e in events)
        assert events[-1]["result"]["steps"] == 5
        done = get(client, job["id"])
        assert done["status"] == "succeeded" and done["progress"] == 1.0
        assert done["result"]["mean_gflops"] > 0
        assert done["started_at"] and done["finished_at"] and done["attempt"] == 1
        log = client.get(f"/api/v1/jobs/{job['id']}/log").json()["lines"]
        assert any("step 5/5" in line for line in log)


def test_cancel_of_a_queued_job_means_it_never_starts(server: LiveServer) -> None:
    with server.client() as client:
        blocker = submit(client, steps=200)
        queued = submit(client, steps=2)
        until(client, blocker["id"], lambda j: j["status"] == "running")
        cancelled = client.post(f"/api/v1/jobs/{queued['id']}/cancel").json()
        assert cancelled["status"] == "cancelled"
        client.post(f"/api/v1/jobs/{blocker['id']}/cancel")
        finish(client, blocker["id"])
        # The worker is free again: the queued job's message was consumed, yet it never ran.
        after = submit(client, steps=1)
        finish(client, after["id"])
        never = get(client, queued["id"])
        assert never["status"] == "cancelled"
        assert never["started_at"] is None and never["attempt"] == 0
        assert not os.path.exists(never["log_path"])


def test_cancel_of_a_running_job_stops_it_and_resume_continues(server: LiveServer) -> None:
    with server.client() as client:
        job = submit(client, steps=40)
        running = until(client, job["id"], lambda j: j["progress"] >= 0.1)
        child = running["process_pid"]
        assert psutil.pid_exists(child)
        response = client.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert response.status_code == 200 and response.json()["cancel_requested"]
        stopped = finish(client, job["id"])
        assert stopped["status"] == "cancelled"
        assert 0 < stopped["progress"] < 1
        wait_process_gone(child)
        resumed = client.post(f"/api/v1/jobs/{job['id']}/resume")
        assert resumed.status_code == 202 and resumed.json()["status"] == "queued"
        done = finish(client, job["id"])
        assert done["status"] == "succeeded" and done["attempt"] == 2
        first_part = done["result"]["resumed_from_step"]
        assert first_part >= 4, "the checkpointed steps were kept"
        assert done["result"]["steps_this_attempt"] == 40 - first_part


def test_a_crashing_job_process_fails_alone(server: LiveServer) -> None:
    with server.client() as client:
        worker_before = client.get("/api/v1/system").json()["worker"]
        job = submit(client, steps=100)
        running = until(client, job["id"], lambda j: j["progress"] > 0)
        os.kill(running["process_pid"], signal.SIGKILL)  # what the OOM killer does
        failed = finish(client, job["id"])
        assert failed["status"] == "failed"
        assert "SIGKILL" in failed["error"] and "out of memory" in failed["error"]
        worker_after = client.get("/api/v1/system").json()["worker"]
        assert worker_after["pid"] == worker_before["pid"] and worker_after["alive"]
        assert finish(client, submit(client, steps=1)["id"])["status"] == "succeeded"


def test_jobs_are_forks_of_the_workers_fork_server(server: LiveServer) -> None:
    with server.client() as client:
        # a worker's first job is a fresh interpreter that starts the fork server
        assert finish(client, submit(client, steps=1)["id"])["status"] == "succeeded"
        job = submit(client, steps=40)
        running = until(client, job["id"], lambda j: j["progress"] > 0)
        process = psutil.Process(running["process_pid"])
        assert process.name() == job_process_name(job["id"])
        fork_server = process.parent()
        assert fork_server is not None
        assert "multiprocessing.forkserver" in " ".join(fork_server.cmdline())
        assert fork_server.ppid() == running["worker_pid"]
        client.post(f"/api/v1/jobs/{job['id']}/cancel").raise_for_status()
        assert finish(client, job["id"])["status"] == "cancelled"
        wait_process_gone(process.pid)
        assert fork_server.is_running(), "the fork server stays for the next job"


def test_finished_jobs_cannot_be_cancelled_or_resumed(server: LiveServer) -> None:
    with server.client() as client:
        job = submit(client, steps=1)
        finish(client, job["id"])
        for action in ("cancel", "resume"):
            response = client.post(f"/api/v1/jobs/{job['id']}/{action}")
            assert response.status_code == 409
            assert "succeeded" in response.json()["error"]["message"]


def test_list_filters_by_status_and_kind(server: LiveServer) -> None:
    with server.client() as client:
        job = submit(client, steps=1)
        finish(client, job["id"])
        listed = client.get("/api/v1/jobs", params={"status": "succeeded", "limit": 500}).json()
        assert job["id"] in {j["id"] for j in listed["items"]}
        assert all(j["status"] == "succeeded" for j in listed["items"])
        assert client.get("/api/v1/jobs", params={"kind": "nothing.like.this"}).json()["total"] == 0
        kinds = client.get("/api/v1/jobs/kinds").json()
        bench = next(k for k in kinds if k["name"] == "system.benchmark")
        assert bench["resumable"] and "steps" in bench["config_schema"]["properties"]


def test_unknown_ids_are_404_with_the_error_shape(server: LiveServer) -> None:
    with server.client() as client:
        for method, path in [
            ("GET", "/api/v1/jobs/deadbeef"),
            ("POST", "/api/v1/jobs/deadbeef/cancel"),
            ("POST", "/api/v1/jobs/deadbeef/resume"),
            ("GET", "/api/v1/jobs/deadbeef/log"),
            ("GET", "/api/v1/no-such-route"),
        ]:
            response = client.request(method, path)
            assert response.status_code == 404, path
            error = response.json()["error"]
            assert error["code"] == "not_found" and error["message"] and error["request_id"]
    with connect(f"{server.ws_url}/ws/jobs/deadbeef", open_timeout=60) as socket:
        message = json.loads(socket.recv(timeout=60))
        assert message["type"] == "error" and "deadbeef" in message["message"]
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=60)
        assert socket.close_code == 4404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.kind"),
        ({"kind": "system.benchmark", "config": {"steps": 0}}, "steps"),
        ({"kind": "system.benchmark", "config": {"steps": "many"}}, "steps"),
        ({"kind": "system.benchmark", "config": {"surprise": 1}}, "surprise"),
        ({"kind": "system.benchmark", "extra": True}, "body.extra"),
        ({"kind": "system.benchmark", "config": []}, "body.config"),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(
    server: LiveServer, body: dict, field: str
) -> None:
    with server.client() as client:
        before = client.get("/api/v1/jobs").json()["total"]
        response = client.post("/api/v1/jobs", json=body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert field in json.dumps(error["details"]) + error["message"]
        assert client.get("/api/v1/jobs").json()["total"] == before, "nothing was created"


def test_other_bad_requests(server: LiveServer) -> None:
    with server.client() as client:
        not_json = client.post(
            "/api/v1/jobs", content=b"{oops", headers={"content-type": "application/json"}
        )
        assert not_json.status_code == 422
        unknown = client.post("/api/v1/jobs", json={"kind": "no.such.kind"})
        assert (
            unknown.status_code == 404 and "system.benchmark" in unknown.json()["error"]["message"]
        )
        bad_filter = client.get("/api/v1/jobs", params={"status": "bogus"})
        assert bad_filter.status_code == 422 and "query.status" in bad_filter.text
        bad_limit = client.get("/api/v1/jobs", params={"limit": 0})
        assert bad_limit.status_code == 422 and "query.limit" in bad_limit.text


def test_killed_worker_leaves_an_interrupted_job_that_resumes(server_factory) -> None:  # noqa: ANN001
    server = server_factory()
    with server.client() as client:
        # a worker's first job is a fresh interpreter; the jobs after it are forks of the
        # fork server, which the worker's death must reach through it
        first = submit(client, steps=3)
        running = until(client, first["id"], lambda j: j["progress"] > 0)
        assert "aift.jobs.child" in psutil.Process(running["process_pid"]).cmdline()
        assert finish(client, first["id"])["status"] == "succeeded"
        job = submit(client, steps=30)
        running = until(client, job["id"], lambda j: j["progress"] >= 0.1)
        worker_pid, child_pid = running["worker_pid"], running["process_pid"]
        assert psutil.Process(child_pid).name() == job_process_name(job["id"])
        os.kill(worker_pid, signal.SIGKILL)
        interrupted = until(client, job["id"], lambda j: j["status"] == "interrupted", timeout=120)
        assert "resume" in interrupted["message"]
        wait_process_gone(child_pid)
        system = wait_for(
            lambda: client.get("/api/v1/system").json()["worker"],
            lambda w: w["alive"] and w["pid"] != worker_pid,
            timeout=120,
        )
        assert system["restarts"] == 1
        client.post(f"/api/v1/jobs/{job['id']}/resume").raise_for_status()
        done = finish(client, job["id"])
        assert done["status"] == "succeeded" and done["attempt"] == 2
        assert done["result"]["resumed_from_step"] >= 3
        assert done["result"]["resumed_from_step"] + done["result"]["steps_this_attempt"] == 30


def test_server_restart_marks_running_jobs_interrupted(server_factory, tmp_path) -> None:  # noqa: ANN001
    workspace = tmp_path / "restart-ws"
    first = server_factory(workspace, AIFT_JOB_FORK_SERVER="false")
    with first.client() as client:
        assert finish(client, submit(client, steps=1)["id"])["status"] == "succeeded"
        job = submit(client, steps=20)
        running = until(client, job["id"], lambda j: j["progress"] > 0)
        # without the fork server, a worker's second job is a fresh interpreter too
        process = psutil.Process(running["process_pid"])
        assert "aift.jobs.child" in process.cmdline() and job["id"] in process.cmdline()
    assert first.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    assert "worker" in first.log() and "interrupted by worker shutdown" in first.log()
    second = server_factory(workspace)
    with second.client() as client:
        after = get(client, job["id"])
        assert after["status"] == "interrupted"
        client.post(f"/api/v1/jobs/{job['id']}/resume").raise_for_status()
        done = until(client, job["id"], lambda j: j["status"] in TERMINAL, timeout=300)
        assert done["status"] == "succeeded" and done["result"]["resumed_from_step"] >= 1
