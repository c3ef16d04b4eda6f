"""`aift eval model`: a served model answering a dataset's questions, scored (a job a
worker runs, like training). `aift eval retrieval` lives with the knowledge commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from aift.cli.common import (
    REMOTE,
    JsonOpt,
    WorkspaceOpt,
    console,
    follow_job,
    local_runtime,
    server,
)
from aift.cli.knowledge import eval_app
from aift.errors import AiftError
from aift.evaluation.schemas import (
    HarnessEvalRequest,
    HarnessEvalResult,
    ModelEvalRequest,
    ModelEvalResult,
)
from aift.rag.schemas import AnswerEvaluation
from aift.work.schemas import JobInfo

if TYPE_CHECKING:
    from aift.runtime import Runtime


def _finished(runtime: Runtime, job: JobInfo, quiet: bool) -> dict[str, Any]:
    """The result of a queued evaluation job, followed until it ends (a progress bar
    unless the output is for a program)."""
    if not quiet:
        console.print(f"queued evaluation job [bold]{job.id}[/] ({job.title})")
    return follow_job(runtime.jobs.get, job.id, quiet=quiet).result or {}


@eval_app.command("model")
def eval_model(
    model: Annotated[str, typer.Argument(help="Any served model (or ollama/NAME).")],
    dataset: Annotated[str, typer.Option(help="Dataset id (aift datasets list).")],
    split: Annotated[str, typer.Option(help="val or train.")] = "val",
    limit: Annotated[int, typer.Option(help="Score the first N rows.")] = 200,
    max_tokens: Annotated[int, typer.Option(help="Tokens per answer.")] = 64,
    show: Annotated[int, typer.Option(help="Answers to list (the misses first).")] = 10,
    judge: Annotated[
        str | None, typer.Option(help="Also ask this served model to judge each answer.")
    ] = None,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Exact match, contains and token F1 of a model's greedy answers to a dataset's
    questions (and, with --judge, an LLM judge's verdicts); a worker runs it as a job."""
    request = ModelEvalRequest.model_validate(
        {
            "model": model,
            "dataset": dataset,
            "split": split,
            "limit": limit,
            "max_tokens": max_tokens,
            "judge": judge,
        }
    )
    runtime = local_runtime(workspace)
    result = ModelEvalResult.model_validate(
        _finished(runtime, runtime.evaluation.submit(request), as_json)
    )
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    summary = result.summary
    console.print(
        f"{summary.examples} questions: exact match {summary.exact_match:.1%}, contains "
        f"{summary.contains:.1%}, F1 {summary.f1:.3f} ({summary.answers_per_second:.2f} "
        "answers/s)"
    )
    if summary.judge is not None:
        console.print(
            f"LLM judge ({summary.judge.model}): {summary.judge.agreed:.1%} of clear verdicts "
            f"say right, {summary.judge.unclear} unclear"
        )
    table = Table("row", "question", "expected", "answer", "EM", "F1")
    for answer in sorted(result.answers, key=lambda a: a.f1)[:show]:
        table.add_row(
            str(answer.row),
            answer.question[:60],
            answer.expected[:40],
            answer.answer[:60],
            "✓" if answer.exact_match else "",
            f"{answer.f1:.2f}",
        )
    console.print(table)


@eval_app.command("harness")
def eval_harness(
    model: Annotated[
        str, typer.Argument(help="Any served language model (GGUF and Ollama: generation tasks).")
    ],
    task: Annotated[
        list[str], typer.Option(help="lm-eval task or group (repeat the option for more).")
    ],
    limit: Annotated[int | None, typer.Option(help="Documents per task (the first).")] = 100,
    fewshot: Annotated[int | None, typer.Option(help="Few-shot examples.")] = None,
    chat_template: Annotated[
        bool, typer.Option(help="Render prompts with the model's chat template.")
    ] = False,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """lm-evaluation-harness tasks on a model: lm-eval's own (where their data is
    reachable) and the workspace's YAML tasks in data/eval_tasks/; a worker runs it."""
    request = HarnessEvalRequest(
        model=model,
        tasks=task,
        limit=limit,
        num_fewshot=fewshot,
        apply_chat_template=chat_template,
    )
    runtime = local_runtime(workspace)
    result = HarnessEvalResult.model_validate(
        _finished(runtime, runtime.evaluation.submit_harness(request), as_json)
    )
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    table = Table("task", "metric", "value", "samples")
    for name, figures in result.results.items():
        for metric, value in figures.items():
            if "stderr" in metric or metric == "sample_len":
                continue
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            table.add_row(name, metric, shown, str(result.samples.get(name, "")))
    console.print(table)


@eval_app.command("compare")
def eval_compare(
    evaluations: Annotated[
        list[str], typer.Argument(help="Job ids of answer evaluations; the first is the baseline.")
    ],
    show: Annotated[int, typer.Option(help="Differing questions to list.")] = 10,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Answer evaluations of the same questions side by side: each metric's delta against
    the first, its 95 % paired bootstrap interval and p-value, the questions that differ."""
    comparison = local_runtime(workspace).evaluation.compare(evaluations)
    if as_json:
        print(json.dumps(comparison.model_dump(mode="json"), indent=2))
        return
    for run in comparison.runs:
        console.print(
            f"[bold]{run.other_model}[/] ({run.other[:8]}) against [bold]{run.baseline_model}[/] "
            f"({run.baseline[:8]}) on {run.questions} questions"
        )
        table = Table("metric", "baseline", "other", "delta", "95% interval", "p")
        for m in run.metrics:
            table.add_row(
                m.metric,
                f"{m.baseline:.3f}",
                f"{m.other:.3f}",
                f"{m.delta:+.3f}",
                f"{m.interval[0]:+.3f} … {m.interval[1]:+.3f}",
                f"{m.p_value:.3g}",
            )
        console.print(table)
        for d in run.differences[:show]:
            console.print(
                f"  row {d.row}: {d.question[:60]!r} expected {d.expected[:30]!r}: "
                f"{d.baseline[:40]!r} ({d.baseline_f1:.2f}) → {d.other[:40]!r} ({d.other_f1:.2f})"
            )


@eval_app.command("rag", rich_help_panel=REMOTE)
@eval_app.command("answers", rich_help_panel=REMOTE, hidden=True)
def eval_answers(
    kb: Annotated[str, typer.Argument(help="Knowledge base name or id.")],
    questions: Annotated[
        Path, typer.Argument(help="JSONL/JSON/CSV: question, answer(s), document, page.")
    ],
    mode: Annotated[
        list[str] | None, typer.Option(help="Answer mode (repeat): generate, quotes, extractive.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Any served model.")] = None,
    context: Annotated[str, typer.Option(help="sentences, excerpts or chunks.")] = "sentences",
    background: Annotated[
        bool, typer.Option(help="Run as a job even when small (a large file always is).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer quality of a knowledge base on a question file, per answer mode: contains,
    F1, first citation on the expected page, citation recall, not-found handling, times.
    A large file runs as a job on the server; this waits for it."""
    if not questions.is_file():
        raise AiftError(f"{questions} does not exist.")
    form = {"modes": ",".join(mode or ["generate", "extractive"]), "context": context}
    if model:
        form["model"] = model
    if background:
        form["background"] = "true"
    with server() as client:
        found = client.evaluate_answers(kb, questions, form)
        if isinstance(found, JobInfo):
            job = follow_job(client.job, found.id, quiet=as_json)
            found = AnswerEvaluation.model_validate(job.result)
    result = found
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    table = Table(
        "setting",
        "contains",
        "F1",
        "1st citation",
        "cit. recall",
        "not found",
        "1st token",
        "total",
    )

    def cell(value: float | None, percent: bool = True) -> str:
        if value is None:
            return "-"
        return f"{value:.0%}" if percent else f"{value / 1000:.1f} s"

    for s in result.settings:
        table.add_row(
            s.setting,
            cell(s.contains),
            cell(s.f1),
            cell(s.first_citation_right),
            cell(s.citation_recall),
            cell(s.not_found_right),
            cell(s.first_token_ms_p50, percent=False),
            cell(s.total_ms_p50, percent=False),
        )
    console.print(f"{result.knowledge_base}: {result.questions} questions")
    console.print(table)
