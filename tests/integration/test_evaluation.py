"""Model evaluation through the real server: a dataset uploaded, a served model (the
packaged SmolLM2 GGUF on llama.cpp) answering its questions in a job, the answers scored
and read back through the API and the CLI; lm-evaluation-harness running a
multiple-choice and a generation task written as local YAML over local files, on a
transformers model and (generation only) on the GGUF through the serving layer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aift.answer_match import contains, exact_match, token_f1
from tests.integration.conftest import LiveServer, aift_env, wait_for

SUMS = [(a, b) for a, b in zip(range(2, 9), range(3, 10), strict=True)]


def upload(server: LiveServer, name: str, rows: list[dict]) -> str:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    response = httpx.post(
        f"{server.url}/api/v1/datasets",
        files={"file": (name, body), "val_file": (f"val-{name}", body)},
        timeout=120,
    )
    assert response.status_code == 201, response.text
    return response.json()["dataset"]["id"]


def test_a_served_model_answers_a_datasets_questions_and_each_answer_is_scored(
    server: LiveServer,
) -> None:
    rows = [
        {"instruction": f"What is {a} + {b}? Reply with the number only.", "output": str(a + b)}
        for a, b in SUMS
    ]
    dataset = upload(server, "sums.jsonl", rows)
    api = f"{server.url}/api/v1/evaluations"
    body = {"model": "smollm2", "dataset": dataset, "limit": 5, "max_tokens": 8}
    job = httpx.post(f"{api}/model", json=body, timeout=60)
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    done = wait_for(
        lambda: httpx.get(f"{server.url}/api/v1/jobs/{job_id}", timeout=60).json(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled", "interrupted"},
        600,
    )
    assert done["status"] == "succeeded", done["error"]
    result = httpx.get(f"{api}/{job_id}", timeout=60).json()
    assert result["request"]["model"] == "SmolLM2-135M-Instruct", "the alias resolved"
    answers, summary = result["answers"], result["summary"]
    assert [a["row"] for a in answers] == [1, 2, 3, 4, 5] and summary["examples"] == 5
    for answer in answers:  # every score is the answer's own, not a constant
        assert answer["expected"] == str(sum(SUMS[answer["row"] - 1]))
        assert answer["exact_match"] == exact_match(answer["answer"], answer["expected"])
        assert answer["contains"] == contains(answer["answer"], answer["expected"])
        assert answer["f1"] == token_f1(answer["answer"], answer["expected"])
        assert answer["question"].startswith("What is")
    assert summary["exact_match"] == sum(a["exact_match"] for a in answers) / 5
    assert summary["contains"] > 0, f"SmolLM2 adds small numbers: {answers}"
    listed = httpx.get(api, timeout=60).json()
    assert [e["id"] for e in listed] == [job_id] and listed[0]["metrics"]["f1"] == summary["f1"]

    # what cannot be evaluated is refused before a job starts
    missing = httpx.post(f"{api}/model", json={**body, "model": "no-such-model"}, timeout=60)
    assert missing.status_code == 404
    embedder = httpx.post(
        f"{api}/model", json={**body, "model": "multilingual-e5-small"}, timeout=60
    )
    assert embedder.status_code == 422 and "does not answer questions" in embedder.text
    text = upload(server, "prose.jsonl", [{"text": f"Line {i} of prose."} for i in range(8)])
    prose = httpx.post(f"{api}/model", json={**body, "dataset": text}, timeout=60)
    assert prose.status_code == 422 and "no answers" in prose.text
    assert httpx.get(f"{api}/{missing.json().get('id', 'x' * 32)}", timeout=60).status_code == 404

    # the same questions with one-token answers: compared question by question
    judged = {**body, "max_tokens": 1, "judge": "smollm2"}  # and an LLM judge's verdicts
    short = httpx.post(f"{api}/model", json=judged, timeout=60).json()
    assert finished(server, short["id"])["status"] == "succeeded"
    graded = httpx.get(f"{api}/{short['id']}", timeout=60).json()
    judge = graded["summary"]["judge"]
    assert judge["model"] == "SmolLM2-135M-Instruct", "labelled with the judge's name"
    verdicts = [a["judged_correct"] for a in graded["answers"]]
    assert judge["unclear"] == verdicts.count(None)
    clear = [v for v in verdicts if v is not None]
    assert judge["agreed"] == (sum(clear) / len(clear) if clear else 0.0)
    bad_judge = {**judged, "judge": "multilingual-e5-small"}
    refused = httpx.post(f"{api}/model", json=bad_judge, timeout=60)
    assert refused.status_code == 422 and "cannot judge" in refused.text
    compared = httpx.get(f"{api}/compare", params={"ids": [job_id, short["id"]]}, timeout=60)
    assert compared.status_code == 200, compared.text
    pair = compared.json()["runs"][0]
    assert pair["baseline"] == job_id and pair["questions"] == 5
    f1 = next(m for m in pair["metrics"] if m["metric"] == "f1")
    shorter = httpx.get(f"{api}/{short['id']}", timeout=60).json()["summary"]["f1"]
    assert f1["delta"] == pytest.approx(shorter - summary["f1"])
    assert f1["interval"][0] <= f1["delta"] <= f1["interval"][1] and 0 < f1["p_value"] <= 1
    assert all(d["baseline_f1"] != d["other_f1"] for d in pair["differences"])
    alone = httpx.get(f"{api}/compare", params={"ids": [job_id]}, timeout=60)
    assert alone.status_code == 422
    elsewhere = httpx.get(f"{api}/compare", params={"ids": [job_id, "0" * 32]}, timeout=60)
    assert elsewhere.status_code == 404

    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "aift.cli",
            "eval",
            "model",
            "smollm2",
            "--dataset",
            dataset,
            "--limit",
            "2",
            "--max-tokens",
            "8",
            "--json",
        ],
        env=aift_env(server.workspace),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr
    printed = json.loads(cli.stdout)
    assert printed["summary"]["examples"] == 2 and len(printed["answers"]) == 2
    shown = subprocess.run(
        [sys.executable, "-m", "aift.cli", "eval", "compare", job_id, short["id"]],
        env=aift_env(server.workspace),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr
    assert "exact_match" in shown.stdout and "95% interval" in shown.stdout


MC_TASK = """task: aift_sums_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
"""
GEN_TASK = """task: aift_sums_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 4
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def write_tasks(folder: Path) -> None:
    """A multiple-choice and a generation task over local files, as a team writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    choices = [
        {"question": f"What is {a} + {b}?", "choices": [str(a + b), str(a + b + 1)], "answer": 0}
        for a, b in SUMS
    ]
    answers = [{"question": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in SUMS]
    for name, rows, task in (("mc", choices, MC_TASK), ("gen", answers, GEN_TASK)):
        data = folder / f"{name}.jsonl"
        data.write_text("\n".join(json.dumps(r) for r in rows))
        (folder / f"{name}.yaml").write_text(task.format(data=data))


def test_lm_eval_runs_local_yaml_tasks_on_a_transformers_model(
    server: LiveServer,
    tiny_chat_model_dir: Path,
) -> None:
    write_tasks(server.workspace / "data" / "eval_tasks")
    shutil.copytree(tiny_chat_model_dir, server.workspace / "models" / "tiny-chat")
    api = f"{server.url}/api/v1/evaluations"
    assert httpx.post(f"{server.url}/api/v1/models/scan", timeout=120).status_code == 200
    body = {"model": "tiny-chat", "tasks": ["aift_sums_mc", "aift_sums_gen"], "limit": 4}
    job = httpx.post(f"{api}/harness", json=body, timeout=60)
    assert job.status_code == 202, job.text
    done = finished(server, job.json()["id"])
    assert done["status"] == "succeeded", done["error"]
    result = httpx.get(f"{api}/{done['id']}", timeout=60).json()
    assert result["samples"] == {"aift_sums_mc": 4, "aift_sums_gen": 4}
    assert 0.0 <= result["results"]["aift_sums_mc"]["acc,none"] <= 1.0
    assert 0.0 <= result["results"]["aift_sums_gen"]["exact_match,none"] <= 1.0
    assert "pretrained" not in result["request"], "the server's paths stay on the server"

    unknown = httpx.post(f"{api}/harness", json={**body, "tasks": ["aift_sums_mcq"]}, timeout=60)
    failed = finished(server, unknown.json()["id"])
    assert failed["status"] == "failed" and "no task 'aift_sums_mcq'" in failed["error"]
    assert "aift_sums_mc" in failed["error"], "close names are suggested"
    embedder = {**body, "model": "multilingual-e5-small"}
    refused = httpx.post(f"{api}/harness", json=embedder, timeout=60)
    assert refused.status_code == 422 and "embedding model" in refused.text


def test_lm_eval_runs_generation_tasks_on_a_gguf_model_through_the_serving_layer(
    server: LiveServer,
) -> None:
    write_tasks(server.workspace / "data" / "eval_tasks")
    api = f"{server.url}/api/v1/evaluations"
    body = {"model": "smollm2", "tasks": ["aift_sums_gen"], "limit": 3}
    job = httpx.post(f"{api}/harness", json=body, timeout=60)
    assert job.status_code == 202, job.text
    done = finished(server, job.json()["id"])
    assert done["status"] == "succeeded", done["error"]
    result = httpx.get(f"{api}/{done['id']}", timeout=60).json()
    assert result["samples"] == {"aift_sums_gen": 3}
    assert 0.0 <= result["results"]["aift_sums_gen"]["exact_match,none"] <= 1.0

    chat = httpx.post(f"{api}/harness", json={**body, "apply_chat_template": True}, timeout=60)
    done = finished(server, chat.json()["id"])
    assert done["status"] == "succeeded", done["error"]

    choices = httpx.post(f"{api}/harness", json={**body, "tasks": ["aift_sums_mc"]}, timeout=60)
    failed = finished(server, choices.json()["id"])
    assert failed["status"] == "failed" and "log-likelihood" in failed["error"]
    assert "transformers model" in failed["error"], "the error says what to run instead"
    bad = httpx.post(f"{api}/harness", json={**body, "tasks": ["../etc/passwd"]}, timeout=60)
    assert bad.status_code == 422


def finished(server: LiveServer, job_id: str) -> dict:
    return wait_for(
        lambda: httpx.get(f"{server.url}/api/v1/jobs/{job_id}", timeout=60).json(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled", "interrupted"},
        600,
    )
