"""System information and the model registry through the real API."""

from __future__ import annotations

from tests.integration.conftest import LiveServer


def test_system_reports_versions_devices_settings_and_models(server: LiveServer) -> None:
    with server.client() as client:
        system = client.get("/api/v1/system").json()
    assert system["version"] == "0.1.0"
    assert system["libraries"]["torch"].startswith("2.13.0")
    cpu = system["devices"][0]
    assert cpu["kind"] == "cpu" and cpu["total_memory_bytes"] > 0
    assert system["settings"]["port"] == server.port
    assert system["settings"]["api_key"] is None
    assert system["queue"]["backend"] == "sqlite"
    assert system["worker"]["alive"]
    llm = system["models"]["llm"]
    assert llm["fallback"] and llm["in_use"] == "SmolLM2-135M-Instruct"
    assert "not available offline" in llm["warning"]
    assert system["models"]["embedding"]["in_use"] == "multilingual-e5-small"
    assert system["models"]["reranker"]["in_use"] is None


def test_registry_lists_packaged_models_with_facts(server: LiveServer) -> None:
    with server.client() as client:
        models = {m["name"]: m for m in client.get("/api/v1/models").json()}
        smol = models["SmolLM2-135M-Instruct"]
        assert smol["architecture"] == "llama" and smol["format"] == "gguf"
        assert 130_000_000 < smol["parameter_count"] < 140_000_000
        assert smol["dtype"] == "Q4_1" and smol["size_bytes"] > 90_000_000
        minilm = models["all-MiniLM-L6-v2"]
        assert minilm["kind"] == "embedding" and minilm["architecture"] == "BertModel"
        assert 22_000_000 < minilm["parameter_count"] < 23_000_000
        embeddings = client.get("/api/v1/models", params={"kind": "embedding"}).json()
        assert {m["kind"] for m in embeddings} == {"embedding"}
        detail = client.get("/api/v1/models/SmolLM2-135M-Instruct").json()
        assert detail["source"] == "packaged"


def test_registry_picks_up_new_models_on_scan(server: LiveServer, tiny_llama_dir) -> None:  # noqa: ANN001
    import shutil

    shutil.copytree(tiny_llama_dir, server.workspace / "models" / "tiny-llama")
    with server.client() as client:
        scanned = {m["name"]: m for m in client.post("/api/v1/models/scan").json()}
        tiny = scanned["tiny-llama"]
        assert tiny["architecture"] == "LlamaForCausalLM" and tiny["source"] == "workspace"
        assert tiny["parameter_count"] > 0 and tiny["dtype"] == "float32"
        shutil.rmtree(server.workspace / "models" / "tiny-llama")
        client.post("/api/v1/models/scan")
        assert client.get("/api/v1/models/tiny-llama").status_code == 404


def test_unknown_models_and_bad_filters(server: LiveServer) -> None:
    with server.client() as client:
        missing = client.get("/api/v1/models/SmolLM2-135M-Instruc")
        assert missing.status_code == 404
        assert "SmolLM2-135M-Instruct" in missing.json()["error"]["message"]
        assert client.get("/api/v1/models", params={"kind": "giant"}).status_code == 422


def test_openapi_and_pages(server: LiveServer) -> None:
    with server.client() as client:
        spec = client.get("/openapi.json").json()
        assert "/api/v1/jobs" in spec["paths"] and "/api/v1/system" in spec["paths"]
        assert client.get("/docs").status_code == 200
        page = client.get("/jobs")
        assert page.status_code == 200 and 'id="jobs-table"' in page.text
        assert client.get("/static/jobs.js").status_code == 200


def test_a_reward_model_scores_replies_and_is_never_served_for_chat(
    server: LiveServer,
    tiny_chat_model_dir,  # noqa: ANN001
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = server.workspace / "models" / "tiny-judge"
    torch.manual_seed(0)
    judge = AutoModelForSequenceClassification.from_pretrained(tiny_chat_model_dir, num_labels=1)
    judge.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_chat_model_dir).save_pretrained(folder)
    body = {
        "messages": [{"role": "user", "content": "What is 2 + 2?"}],
        "replies": ["4.", "Let me think about that for a long while. Maybe 4.", "4."],
    }
    with server.client() as client:
        scanned = {m["name"]: m for m in client.post("/api/v1/models/scan").json()}
        assert scanned["tiny-judge"]["kind"] == "reward"
        scored = client.post("/api/v1/models/tiny-judge/score", json=body)
        assert scored.status_code == 200, scored.text
        scores = scored.json()["scores"]
        assert len(scores) == 3 and scores[0] == scores[2] != scores[1], "one score per reply"
        served = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert "tiny-judge" not in served
        chat = {"model": "tiny-judge", "messages": body["messages"], "max_tokens": 2}
        assert client.post("/v1/chat/completions", json=chat).status_code == 404
        not_reward = client.post("/api/v1/models/SmolLM2-135M-Instruct/score", json=body)
        assert not_reward.status_code == 422 and "not a reward model" in not_reward.text
        assert client.post("/api/v1/models/nope/score", json=body).status_code == 404
        too_many = {**body, "replies": ["x"] * 65}
        assert client.post("/api/v1/models/tiny-judge/score", json=too_many).status_code == 422
