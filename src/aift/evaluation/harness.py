"""lm-evaluation-harness tasks on a model, in this process.

`lm-eval` is the field's standard runner: standard tasks (MMLU, HellaSwag, GSM8K…) where
their data is reachable, and tasks defined by YAML files over local data files — what
an offline team writes for its own multiple-choice or generation questions. Tasks of the
workspace live in `data/eval_tasks/` (put there by whoever runs the machine: a task YAML
may name Python functions, so it is never taken from an upload). The model is loaded
once through lm-eval's transformers backend (a base, a fine-tune, a merged model, or a
base with a PEFT adapter) — or, for a model only the serving layer runs (GGUF, Ollama),
through `served_lm.ServedLM` — and each task runs in turn, so progress and cancel work
per task.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aift.errors import InvalidInput
from aift.evaluation.schemas import HarnessEvalResult, HarnessJobConfig
from aift.work.control import Work


def task_manager(tasks_dir: Path, wanted: list[str]) -> Any:
    """lm-eval's task index: the workspace's YAML tasks alone when they hold every task
    `wanted` (indexing lm-eval's own ~15,000 tasks takes seconds), else those and its own."""
    from lm_eval.tasks import TaskManager

    if tasks_dir.is_dir():
        local = TaskManager(include_path=str(tasks_dir), include_defaults=False)
        if set(wanted) <= set(local.all_tasks):
            return local
    return TaskManager(include_path=str(tasks_dir) if tasks_dir.is_dir() else None)


_TASK_LINE = re.compile(r"^task:\s*['\"]?([A-Za-z0-9][A-Za-z0-9_.-]*)", re.MULTILINE)


def workspace_tasks(tasks_dir: Path) -> list[str]:
    """Names of the workspace's own tasks (the `task:` line of each YAML there), read as
    text — listing them never runs what a YAML may name."""
    names = set()
    for path in tasks_dir.glob("*.y*ml") if tasks_dir.is_dir() else []:
        try:
            names.update(_TASK_LINE.findall(path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return sorted(names)


def check_tasks(manager: Any, tasks: list[str]) -> None:
    """Refuse a task name lm-eval does not know, naming close ones."""
    known = set(manager.all_tasks)
    for task in tasks:
        if task not in known:
            close = difflib.get_close_matches(task, known, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise InvalidInput(
                f"lm-eval has no task {task!r} (its own tasks and data/eval_tasks/).{hint}"
            )


def load_model(config: HarnessJobConfig) -> Any:
    """lm-eval's transformers model of the job (with its adapter), loaded once."""
    import torch
    from lm_eval.models.huggingface import HFLM

    on_gpu = torch.cuda.is_available()
    arguments: dict[str, Any] = {
        "pretrained": config.pretrained,
        "device": "cuda" if on_gpu else "cpu",
        "dtype": "auto" if on_gpu else "float32",
        "batch_size": 1,
    }
    if config.peft:
        arguments["peft"] = config.peft
    return HFLM(**arguments)


def run_harness(
    work: Work, config: HarnessJobConfig, tasks_dir: Path, load: Callable[[], Any]
) -> HarnessEvalResult:
    """Each task of the job on the model `load` gives (lm-eval's transformers model, or a
    `ServedLM`); the figures lm-eval reports for each."""
    import lm_eval
    from lm_eval import simple_evaluate

    manager = task_manager(tasks_dir, config.tasks)
    check_tasks(manager, config.tasks)
    work.progress(0.02, f"loading {config.model}", force=True)
    model = load()
    started = time.perf_counter()
    results: dict[str, dict[str, float | str | None]] = {}
    samples: dict[str, int] = {}
    for index, task in enumerate(config.tasks):
        work.check_cancelled()
        work.progress(index / len(config.tasks), f"task {index + 1}/{len(config.tasks)}: {task}")
        try:
            out = simple_evaluate(
                model=model,
                tasks=[task],
                num_fewshot=config.num_fewshot,
                limit=config.limit,
                task_manager=manager,
                log_samples=False,
                bootstrap_iters=0,
                apply_chat_template=config.apply_chat_template,
            )
        except (ConnectionError, OSError) as exc:
            raise InvalidInput(
                f"lm-eval task {task!r} could not read its data ({exc}); offline, only tasks "
                "over local files (data/eval_tasks/) run."
            ) from None
        assert out is not None  # only other ranks of a distributed run get None
        for name, figures in out["results"].items():
            results[name] = {k: v for k, v in figures.items() if k not in ("name", "alias")}
        for name, counts in out.get("n-samples", {}).items():
            samples[name] = int(counts.get("effective", 0))
    figures = {f"{t}/{k}": v for t, r in results.items() for k, v in r.items()}
    work.metrics({k: v for k, v in figures.items() if isinstance(v, float)})
    return HarnessEvalResult(
        request=config,
        results=results,
        samples=samples,
        seconds=time.perf_counter() - started,
        lm_eval_version=lm_eval.__version__,
    )
