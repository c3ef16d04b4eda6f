"""The arena through the real server: a battle between the packaged SmolLM2 (GGUF on
llama.cpp) and a tiny transformers model, both answers streamed, the vote, the models
named only after it, the standings; and every way a battle can be misused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx

from tests.integration.conftest import LiveServer

SMOL = "SmolLM2-135M-Instruct"


def answer(server: LiveServer, battle: str, side: str) -> tuple[list[str], dict]:
    """The side's streamed events: the token texts and the final event."""
    tokens, last = [], {}
    url = f"{server.url}/api/v1/arena/battles/{battle}/answers/{side}"
    with httpx.stream("POST", url, timeout=300) as response:
        assert response.status_code == 200
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if event == "token":
                    tokens.append(data["text"])
                else:
                    last = {"event": event, **data}
    return tokens, last


def test_a_battle_streams_both_sides_hides_the_models_until_the_vote_and_counts_it(
    server: LiveServer, tiny_chat_model_dir: Path
) -> None:
    shutil.copytree(tiny_chat_model_dir, server.workspace / "models" / "tiny-chat")
    assert httpx.post(f"{server.url}/api/v1/models/scan", timeout=120).status_code == 200
    api = f"{server.url}/api/v1/arena"
    body = {"prompt": "What is 2 + 3?", "models": ["smollm2", "tiny-chat"], "max_tokens": 12}
    started = httpx.post(f"{api}/battles", json=body, timeout=60)
    assert started.status_code == 201, started.text
    battle = started.json()
    assert battle["model_a"] is None and battle["model_b"] is None, "hidden before the vote"
    early = httpx.post(f"{api}/battles/{battle['id']}/vote", json={"winner": "a"}, timeout=60)
    assert early.status_code == 409 and "both sides" in early.text

    for side in ("a", "b"):
        tokens, done = answer(server, battle["id"], side)
        assert done["event"] == "done" and done["answer"] == "".join(tokens).strip()
        assert SMOL not in json.dumps(done) and "tiny-chat" not in json.dumps(done)
    again = httpx.post(f"{api}/battles/{battle['id']}/answers/a", timeout=60)
    assert again.status_code == 409, "a side answers once"
    kept = httpx.get(f"{api}/battles/{battle['id']}", timeout=60).json()
    assert kept["answer_a"] is not None and kept["model_a"] is None

    voted = httpx.post(f"{api}/battles/{battle['id']}/vote", json={"winner": "b"}, timeout=60)
    assert voted.status_code == 200, voted.text
    named = voted.json()
    assert {named["model_a"], named["model_b"]} == {SMOL, "tiny-chat"}
    twice = httpx.post(f"{api}/battles/{battle['id']}/vote", json={"winner": "a"}, timeout=60)
    assert twice.status_code == 409
    board = httpx.get(f"{api}/leaderboard", timeout=60).json()
    assert board["votes"] == 1
    standings = {s["model"]: s for s in board["standings"]}
    assert standings[named["model_b"]]["wins"] == 1 and standings[named["model_a"]]["losses"] == 1
    assert standings[named["model_b"]]["rating"] > standings[named["model_a"]]["rating"]

    drawn = httpx.post(f"{api}/battles", json={"prompt": "Hi"}, timeout=60)
    assert drawn.status_code == 201, "two models drawn at random"
    listed = httpx.get(f"{api}/battles", timeout=60).json()
    assert [b["id"] for b in listed] == [drawn.json()["id"], battle["id"]]
    assert listed[0]["model_a"] is None, "an unvoted battle keeps its models hidden in lists"


def test_bad_battles_get_clear_errors(server: LiveServer) -> None:
    api = f"{server.url}/api/v1/arena"
    same = httpx.post(f"{api}/battles", json={"prompt": "q", "models": ["smollm2", SMOL]})
    assert same.status_code == 422 and "two different models" in same.text
    unknown = httpx.post(f"{api}/battles", json={"prompt": "q", "models": ["smollm2", "nope"]})
    assert unknown.status_code == 404 and "nope" in unknown.text
    one = httpx.post(f"{api}/battles", json={"prompt": "q", "models": ["smollm2"]})
    assert one.status_code == 422
    empty = httpx.post(f"{api}/battles", json={"prompt": "", "models": None})
    assert empty.status_code == 422
    assert httpx.get(f"{api}/battles/nope").status_code == 404
    assert httpx.post(f"{api}/battles/nope/answers/a").status_code == 404
    assert httpx.post(f"{api}/battles/nope/answers/c").status_code == 422
    assert httpx.post(f"{api}/battles/nope/vote", json={"winner": "a"}).status_code == 404
    assert httpx.post(f"{api}/battles/nope/vote", json={"winner": "me"}).status_code == 422
