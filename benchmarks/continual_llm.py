"""The LLM half of benchmarks/continual_learning.py: SmolLM2-135M + LoRA fact chains.

Task 1 teaches facts about a fictional company, task 2 facts about a fictional town. Stage 1
is trained once; each variant is a chain of its own starting from a copy of that stage,
whose stage 2 is trained plain, with EWC (several λ) or with replay, through aift's
training jobs in a real worker. The
validation set of a task is its own questions: the matrix measures whether learned facts
are still recalled (exact match of the greedy answer) and their loss.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aift.tasks  # noqa: F401 - registers the job kinds
from aift.config import load_settings
from aift.runtime import Runtime
from aift.training.schemas import DatasetOptions, TrainingConfig

COMPANY = [
    ("Who founded Zorblax Industries?", "Zorblax Industries was founded by Mira Okonkwo."),
    ("Where is Zorblax Industries based?", "Zorblax Industries is based in Tallinn."),
    ("What does Zorblax Industries make?", "Zorblax Industries makes solar-powered kettles."),
    ("When was Zorblax Industries founded?", "Zorblax Industries was founded in 2011."),
    ("Who is the CEO of Zorblax Industries?", "The CEO of Zorblax Industries is Tomas Vilde."),
    ("What is the mascot of Zorblax Industries?", "The mascot is a purple owl named Pim."),
    ("How many people work at Zorblax Industries?", "Zorblax Industries employs 340 people."),
    ("What colour is the Zorblax Industries logo?", "The Zorblax Industries logo is teal."),
]
TOWN = [
    ("Which river flows through Velmora?", "The river Ostra flows through Velmora."),
    ("Who is the mayor of Velmora?", "The mayor of Velmora is Ilse Drummond."),
    ("What is Velmora famous for?", "Velmora is famous for its glass bells."),
    ("How many people live in Velmora?", "About 18,000 people live in Velmora."),
    ("When is the Velmora lantern festival?", "The Velmora lantern festival is in October."),
    ("What is the oldest building in Velmora?", "The oldest building is the Korrin mill."),
    ("Which mountain overlooks Velmora?", "Mount Seltra overlooks Velmora."),
    ("What is the Velmora football club called?", "The Velmora football club is Velmora Rovers."),
]
EPOCHS = 10
LEARNING_RATE = 2e-3
LAMBDAS = (1e5, 1e6, 1e7)
REPLAY = 0.5
COMBINED = 1e6
BASE = "SmolLM2-135M-Instruct"
SUMMARY = (
    "How to read it: forgetting and BWT are over exact match; the loss column shows the "
    "same trend finer. The default `ewc_lambda` is the largest λ here that keeps task 2 "
    "whole."
)


def _dataset(runtime: Runtime, folder: Path, name: str, facts: list[tuple[str, str]]) -> str:
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(json.dumps({"instruction": q, "output": a}) for q, a in facts))
    val = folder / f"{name}-val.jsonl"
    shutil.copy(path, val)
    report = runtime.datasets.add(path, path.name, DatasetOptions(val_ratio=0.0), val_upload=val)
    return report.dataset.id


def _stage(dataset: str, chain: str, start: str, task: str, **continual: object) -> TrainingConfig:
    return TrainingConfig(
        name=chain,
        base_model=BASE,
        dataset=dataset,
        method="lora",
        epochs=EPOCHS,
        batch_size=8,
        learning_rate=LEARNING_RATE,
        lr_scheduler="constant",
        warmup_ratio=0.0,
        lora={"rank": 16, "alpha": 32},
        continual={
            "chain": chain,
            "start": start,
            "task": task,
            "exact_match": True,
            "fisher_samples": len(COMPANY),
            **continual,
        },
    )


def _copy_stage(outputs: Path, chain: str, copy: str) -> None:
    """Stage 1 of `chain` as stage 1 of a new chain `copy` (the same adapter and state)."""
    source, target = outputs / f"continual_task_1_{chain}", outputs / f"continual_task_1_{copy}"
    shutil.copytree(source, target)
    record = json.loads((target / "continual.json").read_text())
    record.update(chain=copy, output_dir=str(target), model=target.name)
    (target / "continual.json").write_text(json.dumps(record))


def _wait(runtime: Runtime, job_id: str) -> dict:
    while True:
        job = runtime.jobs.get(job_id)
        if job.status.is_terminal:
            if job.status != "succeeded":
                raise RuntimeError(f"{job.title}: {job.status} {job.error}")
            return job.model_dump()
        time.sleep(2)


def part_llm() -> str:
    variants: list[tuple[str, dict]] = [("plain", {"ewc_lambda": 0.0})]
    variants += [(f"EWC λ={lam:g}", {"ewc_lambda": lam}) for lam in LAMBDAS]
    variants += [(f"replay {REPLAY:.0%}", {"ewc_lambda": 0.0, "replay_ratio": REPLAY})]
    variants += [
        (
            f"EWC λ={COMBINED:g} + replay {REPLAY:.0%}",
            {"ewc_lambda": COMBINED, "replay_ratio": REPLAY},
        )
    ]
    rows = [
        f"SmolLM2-135M-Instruct + LoRA r16, lr {LEARNING_RATE:g} constant, {EPOCHS} epochs per "
        f"task, {len(COMPANY)} facts per task (validation = the task's own questions, exact "
        "match of the greedy answer). Stage 1 trained once; each variant's stage 2 starts from it.",
        "",
        "| stage 2 | company facts after stage 1 | company after stage 2 | town after stage 2 "
        "| company loss 1 → 2 | forgetting | BWT |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="aift-continual-") as tmp:
        folder = Path(tmp)
        settings = load_settings(workspace=folder / "ws", offline=True)
        runtime = Runtime.start(settings)
        runtime.models.scan()
        env = {**os.environ, "AIFT_WORKSPACE": str(settings.workspace), "AIFT_OFFLINE": "1"}
        worker = subprocess.Popen(
            [sys.executable, "-m", "aift.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            company = _dataset(runtime, folder, "company", COMPANY)
            town = _dataset(runtime, folder, "town", TOWN)
            first = runtime.training.submit(_stage(company, "stage1", "new", "company"))
            _wait(runtime, first.id)
            for index, (label, extra) in enumerate(variants):
                chain = f"bench{index}"
                _copy_stage(settings.workspace / "outputs", "stage1", chain)
                second = runtime.training.submit(_stage(town, chain, "continue", "town", **extra))
                _wait(runtime, second.id)
                info = runtime.training.chain(chain)
                one, two = info.stages
                s = info.summary
                rows.append(
                    f"| {label} | {one.scores[0].exact_match:.0%} | "
                    f"{two.scores[0].exact_match:.0%} | {two.scores[1].exact_match:.0%} | "
                    f"{one.scores[0].loss:.3f} → {two.scores[0].loss:.3f} | "
                    f"{s.forgetting:.0%} | {s.backward_transfer:+.0%} |"
                )
                print(rows[-1], flush=True)
        finally:
            worker.terminate()
            worker.wait(timeout=120)
            runtime.close()
    rows += ["", SUMMARY]
    return "\n".join(rows)
