"""Datasets written from documents, end to end on a real server: a job asks the packaged
SmolLM2 (served by llama.cpp in the job's process) for questions about an ingested
manual; its rows wait for review with their passages; only accepted (or edited) rows
reach the training files; another member sees none of it; bad requests change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import LiveServer, start_server, wait_for
from tests.integration.test_accounts import ADMIN, _first_admin, _members, _token_of, bearer
from tests.integration.test_cli import aift

MODEL = "SmolLM2-135M-Instruct"
MANUAL = (
    "# Zorvex pump manual\n\n## 3 Maintenance\n\n"
    "The zorvex pump is serviced every 41 days by the night shift.\n\n"
    "Chief technician Ilse Varga signs the service log after each visit.\n\n"
    "## 4 Storage\n\nSpare impellers for the pump are kept on shelf K7 of the east store.\n"
)


def finished(job: dict[str, Any]) -> bool:
    return job["status"] not in ("queued", "running")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """alice owns a knowledge base holding the manual and a dataset written from it;
    bob is another member."""
    server = start_server(tmp_path_factory.mktemp("docdata") / "ws", AIFT_ADMIN_EMAIL=ADMIN)
    server, root = _first_admin(server)
    _members(server, root, "alice@example.com", "bob@example.com")
    alice, bob = _token_of(server, "alice@example.com"), _token_of(server, "bob@example.com")
    with server.client(headers=bearer(alice)) as client:
        kb = client.post(
            "/api/v1/kb", json={"name": "pumps", "embedding_model": "multilingual-e5-small"}
        ).json()
        up = client.post(
            f"/api/v1/kb/{kb['id']}/documents", files=[("files", ("manual.md", MANUAL))]
        )
        assert up.status_code == 202, up.text
        job = wait_for(lambda: client.get(f"/api/v1/jobs/{up.json()['job_id']}").json(), finished)
        assert job["status"] == "succeeded", job
        started = client.post(
            "/api/v1/datasets/from-documents",
            json={"knowledge_base": "pumps", "model": MODEL, "name": "pump-facts"},
        )
        assert started.status_code == 202, started.text
    yield {"server": server, "alice": alice, "bob": bob, "kb": kb, "started": started.json()}
    server.stop()


def _written(server: LiveServer, token: str, started: dict[str, Any]) -> dict[str, Any]:
    with server.client(headers=bearer(token)) as client:
        job = wait_for(lambda: client.get(f"/api/v1/jobs/{started['job']['id']}").json(), finished)
    assert job["status"] == "succeeded", job
    return job["result"]


def test_rows_are_written_with_their_passages_and_wait_for_review(site: dict[str, Any]) -> None:
    server, alice, started = site["server"], site["alice"], site["started"]
    dataset = started["dataset"]
    assert dataset["format"] == "chat" and dataset["rows_train"] == 0
    assert dataset["stats"]["generated"]["knowledge_base"] == "pumps"
    with server.client(headers=bearer(alice)) as client:
        early = client.post(
            "/api/v1/training",
            json={"base_model": MODEL, "dataset": dataset["id"], "max_steps": 1},
        )
        assert early.status_code == 422 and "only accepted rows train" in early.text
        result = _written(server, alice, started)
        assert result["rows"] > 0 and result["kept"] == result["rows"]
        assert 0 < result["supported_share"] <= 1
        page = client.get(f"/api/v1/datasets/{dataset['id']}/rows").json()
    assert page["counts"] == {"pending": result["rows"], "accepted": 0, "rejected": 0}
    for row in page["rows"]:
        assert row["status"] == "pending" and row["document"] == "manual.md"
        assert row["page"] == 1 and row["question"].endswith("?")
        assert row["answer"] in row["passage"], "extractive answers come from the passage"
        assert row["support"] >= 0.6
    questions = [" ".join(r["question"].lower().split()) for r in page["rows"]]
    assert len(questions) == len(set(questions)), "no question twice"
    assert any("41 days" in r["answer"] or "Ilse Varga" in r["answer"] for r in page["rows"])


def test_only_accepted_rows_train(site: dict[str, Any]) -> None:
    server, alice, started = site["server"], site["alice"], site["started"]
    dataset_id = started["dataset"]["id"]
    _written(server, alice, started)
    rows_url = f"/api/v1/datasets/{dataset_id}/rows"
    with server.client(headers=bearer(alice)) as client:
        rows = client.get(rows_url).json()["rows"]
        assert len(rows) >= 2, rows
        first, second = rows[0], rows[1]
        accepted = client.post(
            f"{rows_url}/review", json={"status": "accepted", "ids": [first["id"]]}
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["accepted"] == 1
        edited = client.patch(f"{rows_url}/{second['id']}", json={"answer": "Every 41 days."})
        assert edited.status_code == 200, edited.text
        assert edited.json()["edited"] and edited.json()["status"] == "accepted"
        rest = client.post(
            f"{rows_url}/review", json={"status": "rejected", "all_with_status": "pending"}
        ).json()
        assert rest == {"pending": 0, "accepted": 2, "rejected": len(rows) - 2}
        info = client.get(f"/api/v1/datasets/{dataset_id}").json()["dataset"]
        assert info["rows_train"] + info["rows_val"] == 2
    folder = server.workspace / "data" / "datasets" / dataset_id
    trained = [
        json.loads(line)
        for name in ("train.jsonl", "val.jsonl")
        for line in (folder / name).read_text(encoding="utf-8").splitlines()
    ]
    pairs = {(e["messages"][0]["content"], e["messages"][1]["content"]) for e in trained}
    assert pairs == {(first["question"], first["answer"]), (second["question"], "Every 41 days.")}
    with server.client(headers=bearer(alice)) as client:
        client.post(f"{rows_url}/review", json={"status": "pending", "ids": [first["id"]]})
        info = client.get(f"/api/v1/datasets/{dataset_id}").json()["dataset"]
    assert info["rows_train"] + info["rows_val"] == 1, "a row set back leaves the files"


def test_bad_requests_change_nothing(site: dict[str, Any]) -> None:
    server, alice, started, kb = site["server"], site["alice"], site["started"], site["kb"]
    dataset_id = started["dataset"]["id"]
    rows_url = f"/api/v1/datasets/{dataset_id}/rows"
    _written(server, alice, started)
    with server.client(headers=bearer(alice)) as client:
        before = client.get(rows_url).json()
        unknown_doc = client.post(
            "/api/v1/datasets/from-documents",
            json={"knowledge_base": kb["id"], "documents": ["../../etc"], "model": MODEL},
        )
        assert unknown_doc.status_code == 404 and "../../etc" in unknown_doc.text
        no_model = client.post(
            "/api/v1/datasets/from-documents",
            json={"knowledge_base": kb["id"], "model": "no-such-model"},
        )
        assert no_model.status_code == 404, no_model.text
        both = client.post(
            f"{rows_url}/review",
            json={"status": "accepted", "ids": [1], "all_with_status": "pending"},
        )
        assert both.status_code == 422
        stray = client.post(f"{rows_url}/review", json={"status": "accepted", "ids": [10**6]})
        assert stray.status_code == 404
        for blank in ("", "   "):
            empty = client.patch(f"{rows_url}/{before['rows'][0]['id']}", json={"answer": blank})
            assert empty.status_code == 422
        assert client.get(rows_url).json() == before
        names = [d["name"] for d in client.get("/api/v1/datasets").json()]
        assert names.count("pump-facts") == 1, "a refused request made no dataset"
        uploaded = client.post(
            "/api/v1/datasets",
            files={"file": ("up.jsonl", b'{"instruction": "a", "output": "b"}\n' * 4)},
            data={"val_ratio": "0"},
        ).json()["dataset"]
        plain = client.post(
            f"/api/v1/datasets/{uploaded['id']}/rows/review",
            json={"status": "accepted", "all_with_status": "pending"},
        )
        assert plain.status_code == 422 and "uploaded" in plain.text


def test_another_member_sees_nothing(site: dict[str, Any]) -> None:
    server, bob, started, kb = site["server"], site["bob"], site["started"], site["kb"]
    dataset_id = started["dataset"]["id"]
    with server.client(headers=bearer(bob)) as client:
        for response in (
            client.get(f"/api/v1/datasets/{dataset_id}/rows"),
            client.post(
                f"/api/v1/datasets/{dataset_id}/rows/review",
                json={"status": "accepted", "all_with_status": "pending"},
            ),
            client.patch(f"/api/v1/datasets/{dataset_id}/rows/1", json={"answer": "x"}),
            client.post(
                "/api/v1/datasets/from-documents",
                json={"knowledge_base": kb["id"], "model": MODEL},
            ),
        ):
            assert response.status_code == 404, response.text
            assert "pumps" not in response.text and "pump-facts" not in response.text
        assert client.get("/api/v1/datasets").json() == []


def test_the_cli_lists_and_reviews_rows(site: dict[str, Any]) -> None:
    server, alice, started = site["server"], site["alice"], site["started"]
    dataset_id = started["dataset"]["id"]
    _written(server, alice, started)
    ws = server.workspace
    listed = aift(ws, "datasets", "rows", dataset_id, "--status", "pending", "--json")
    assert listed.returncode == 0, listed.stderr
    pending = json.loads(listed.stdout)
    assert pending["total"] == pending["counts"]["pending"] > 0
    assert {r["status"] for r in pending["rows"]} == {"pending"}
    ids = [str(r["id"]) for r in pending["rows"]]
    done = aift(ws, "datasets", "review", dataset_id, "accepted", *ids)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pending"] == 0
    with server.client(headers=bearer(alice)) as client:
        page = client.get(f"/api/v1/datasets/{dataset_id}/rows", params={"status": "accepted"})
        info = client.get(f"/api/v1/datasets/{dataset_id}").json()["dataset"]
    assert {str(r["id"]) for r in page.json()["rows"]} >= set(ids)
    assert info["rows_train"] + info["rows_val"] == page.json()["total"]
    bad = aift(ws, "datasets", "review", dataset_id, "maybe", "1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
