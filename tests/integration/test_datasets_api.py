"""Training datasets through the real API: upload, validation, split, preview, delete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import LiveServer, start_server


def rows(n: int) -> list[dict]:
    return [{"instruction": f"What is {i} plus {i}?", "output": f"{i + i}."} for i in range(n)]


def jsonl(items: list) -> bytes:
    return "\n".join(json.dumps(r) for r in items).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("datasets") / "ws", AIFT_MAX_UPLOAD_MB="1")
    yield live
    live.stop()


def upload(
    server: LiveServer, content: bytes, name: str = "facts.jsonl", **form: str
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/datasets", files={"file": (name, content)}, data=form, timeout=120
    )


def stored(server: LiveServer) -> set[str]:
    return {p.name for p in (server.workspace / "data" / "datasets").glob("*")}


def temp_is_empty(server: LiveServer) -> bool:
    return not any((server.workspace / "temp_uploads").iterdir())


def test_upload_validates_splits_and_previews(server: LiveServer) -> None:
    response = upload(server, jsonl(rows(20)), val_ratio="0.2", max_length="20")
    assert response.status_code == 201, response.text
    report = response.json()
    info = report["dataset"]
    assert info["format"] == "alpaca" and info["rows_train"] == 16 and info["rows_val"] == 4
    tokens = info["stats"]["tokens"]
    assert tokens["tokenizer"] == "SmolLM2-135M-Instruct" and 20 < tokens["p50"] < 80
    assert tokens["over_max_length"] == tokens["examples"] == 20  # every example > 20 tokens
    assert "<|im_start|>user\nWhat is" in report["preview"][0]
    assert "<|im_start|>assistant\n" in report["preview"][0]
    again = upload(server, jsonl(rows(20)), val_ratio="0.2", max_length="20").json()
    assert again["dataset"]["id"] == info["id"], "the same upload is stored once"
    folder = server.workspace / "data" / "datasets" / info["id"]
    assert len((folder / "train.jsonl").read_text().splitlines()) == 16
    assert temp_is_empty(server)


def test_bad_rows_are_listed_and_nothing_is_stored(server: LiveServer) -> None:
    before = stored(server)
    items = rows(10)
    items[3] = {"instruction": "", "output": "x"}
    items[7] = {"instruction": "y"}
    response = upload(server, jsonl(items), name="broken.jsonl")
    assert response.status_code == 422
    error = response.json()["error"]
    assert "2 of 10 rows" in error["message"] and "skip_invalid" in error["message"]
    assert [d["row"] for d in error["details"]] == [4, 8]
    assert stored(server) == before and temp_is_empty(server)
    kept = upload(server, jsonl(items), name="broken.jsonl", skip_invalid="true", val_ratio="0")
    assert kept.status_code == 201
    assert kept.json()["dataset"]["rows_skipped"] == 2
    assert [e["row"] for e in kept.json()["errors"]] == [4, 8]


def test_a_separate_validation_file(server: LiveServer) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/datasets",
        timeout=120,
        files={
            "file": ("train.jsonl", jsonl(rows(12))),
            "val_file": ("val.jsonl", jsonl(rows(3)[::-1])),
        },
    )
    assert response.status_code == 201
    assert (response.json()["dataset"]["rows_train"], response.json()["dataset"]["rows_val"]) == (
        12,
        3,
    )


@pytest.mark.parametrize(
    ("content", "name", "form", "status", "text"),
    [
        (jsonl(rows(3)), "tiny.jsonl", {"val_ratio": "0.1"}, 422, "too few"),
        (b"%PDF-1.7\n\x00\x01binary", "sneaky.jsonl", {}, 422, "binary"),
        (b"", "empty.jsonl", {}, 422, "empty"),
        (jsonl([{"query": "q", "response": "a"}]), "odd.jsonl", {}, 422, "instruction"),
        (jsonl(rows(5)), "x.jsonl", {"val_ratio": "2"}, 422, "val_ratio"),
        (jsonl(rows(5)), "x.jsonl", {"format": "poetry"}, 422, "format"),
        (jsonl(rows(5)), "x.jsonl", {"base_model": "no-such-model"}, 404, "no-such-model"),
        (b'{"text": "a"}\n' * 120_000, "big.jsonl", {}, 413, "1 MB"),
    ],
)
def test_bad_uploads_get_clear_errors(
    server: LiveServer, content: bytes, name: str, form: dict, status: int, text: str
) -> None:
    before = stored(server)
    response = upload(server, content, name=name, **form)
    assert response.status_code == status, response.text
    assert text in response.text
    assert stored(server) == before and temp_is_empty(server)


def test_names_are_sanitised_and_datasets_deleted(server: LiveServer) -> None:
    made = upload(server, jsonl(rows(10)), name="../../etc/passwd.jsonl", val_ratio="0").json()
    info = made["dataset"]
    assert "/" not in info["name"] and ".." not in info["name"]
    listed = httpx.get(f"{server.url}/api/v1/datasets").json()
    assert info["id"] in {d["id"] for d in listed}
    shown = httpx.get(f"{server.url}/api/v1/datasets/{info['id']}").json()
    assert len(shown["preview"]) == 3
    assert httpx.delete(f"{server.url}/api/v1/datasets/{info['id']}").status_code == 204
    assert httpx.get(f"{server.url}/api/v1/datasets/{info['id']}").status_code == 404
    assert info["id"] not in stored(server)
    assert httpx.delete(f"{server.url}/api/v1/datasets/{info['id']}").status_code == 404


def test_cli_adds_lists_and_removes(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.integration.conftest import aift_env

    env = aift_env(tmp_path / "ws")
    data = tmp_path / "qa.json"
    data.write_text(
        json.dumps(
            [
                {
                    "messages": [
                        {"role": "user", "content": f"q{i}"},
                        {"role": "assistant", "content": f"a{i}"},
                    ]
                }
                for i in range(10)
            ]
        )
    )

    def aift(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "aift.cli", "datasets", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    added = aift("add", str(data), "--val-ratio", "0.2")
    assert added.returncode == 0, added.stderr
    assert "(chat): 8 train, 2 validation" in added.stdout and "<|im_start|>" in added.stdout
    listed = json.loads(aift("list", "--json").stdout)
    assert len(listed) == 1
    assert aift("rm", listed[0]["id"]).returncode == 0
    assert json.loads(aift("list", "--json").stdout) == []
    bad = aift("add", str(data), "--format", "poetry")
    assert bad.returncode == 2 and "format" in bad.stderr and "Traceback" not in bad.stderr
    missing = aift("add", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "not a file" in missing.stderr
