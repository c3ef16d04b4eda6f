"""`aift datasets from-documents`, `aift datasets rows` and `aift datasets review`:
training data written from a knowledge base's documents, reviewed before it trains
(workspace commands: a worker runs the writing job)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from aift.cli.common import JsonOpt, WorkspaceOpt, console, follow_job, local_runtime, print_result
from aift.cli.training import datasets_app


@datasets_app.command("from-documents")
def from_documents(
    knowledge_base: str,
    model: Annotated[str | None, typer.Option(help="Served model that writes questions.")] = None,
    document: Annotated[
        list[str] | None, typer.Option(help="A document id (repeat; default: all).")
    ] = None,
    answers: Annotated[str, typer.Option(help="extractive or generated.")] = "extractive",
    pairs: Annotated[
        bool, typer.Option(help="Preference pairs: grounded vs unsupported answer (DPO).")
    ] = False,
    phrasings: Annotated[int, typer.Option(help="Questions per answer (1–3).")] = 2,
    max_rows: Annotated[int, typer.Option(help="Most rows written.")] = 500,
    name: Annotated[str | None, typer.Option(help="The dataset's name.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow progress until it ends.")] = True,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write a dataset of questions and supported answers from a knowledge base's
    documents; its rows wait for review (`aift datasets review`)."""
    from aift.training.schemas import DocumentDatasetRequest

    request = DocumentDatasetRequest.model_validate(
        {
            "knowledge_base": knowledge_base,
            "model": model,
            "documents": document or [],
            "answers": answers,
            "preference_pairs": pairs,
            "phrasings": phrasings,
            "max_rows": max_rows,
            "name": name,
        }
    )
    runtime = local_runtime(workspace)
    runtime.models.scan()
    started = runtime.document_datasets.submit(request)
    console.print(
        f"dataset [bold]{started.dataset.id}[/] {started.dataset.name}: job "
        f"[bold]{started.job.id}[/] writes its rows"
    )
    if wait:
        print_result(follow_job(runtime.jobs.get, started.job.id))


@datasets_app.command("rows")
def rows(
    dataset_id: str,
    status: Annotated[str | None, typer.Option(help="pending, accepted or rejected.")] = None,
    offset: int = 0,
    limit: int = 50,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """The generated rows of a dataset, with their source document and page."""
    from aift.training.schemas import DraftStatus

    wanted = DraftStatus(status) if status else None
    page = local_runtime(workspace).drafts.page(dataset_id, wanted, offset, limit)
    if as_json:
        console.print_json(page.model_dump_json())
        return
    table = Table("id", "status", "question", "answer", "source", "support")
    for row in page.rows:
        source = f"{row.document} p.{row.page}"
        table.add_row(
            str(row.id), row.status.value, row.question, row.answer, source, f"{row.support:.2f}"
        )
    console.print(table)
    console.print(json.dumps(page.counts.model_dump()))


@datasets_app.command("review")
def review(
    dataset_id: str,
    status: Annotated[str, typer.Argument(help="accepted, rejected or pending.")],
    ids: Annotated[list[int] | None, typer.Argument(help="Row ids.")] = None,
    all_with_status: Annotated[
        str | None, typer.Option(help="Instead of ids: every row with this status.")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Accept or reject generated rows; only accepted rows train."""
    from aift.training.schemas import DraftReview

    request = DraftReview.model_validate(
        {"status": status, "ids": ids or [], "all_with_status": all_with_status}
    )
    counts = local_runtime(workspace).drafts.review(dataset_id, request)
    console.print(json.dumps(counts.model_dump()))
