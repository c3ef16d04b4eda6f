"""`aift kb`, `aift ingest`, `aift search`, `aift ask` and `aift history` (server
commands: the server owns the vector index) and `aift eval retrieval` (a workspace
command: it builds its own throwaway index)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aift.cli.app import app
from aift.cli.common import (
    LOCAL,
    REMOTE,
    JsonOpt,
    WorkspaceOpt,
    console,
    follow_job,
    local_runtime,
    pages,
    score,
    server,
)
from aift.errors import AiftError
from aift.rag.schemas import (
    AskRequest,
    ChunkingSettings,
    KnowledgeBaseCreate,
    ReindexRequest,
    SearchRequest,
)

kb_app = typer.Typer(help="Knowledge bases (RAG) in the running server.", no_args_is_help=True)
app.add_typer(kb_app, name="kb", rich_help_panel=REMOTE)
history_app = typer.Typer(help="Past searches and questions.", no_args_is_help=True)
app.add_typer(history_app, name="history", rich_help_panel=REMOTE)
eval_app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)
app.add_typer(eval_app, name="eval", rich_help_panel=LOCAL)


@kb_app.command("create")
def kb_create(
    name: str,
    embedding_model: Annotated[
        str | None, typer.Option(help="Default: the configured one.")
    ] = None,
    chunk_tokens: Annotated[int, typer.Option(help="Tokens per chunk.")] = 512,
    overlap_tokens: Annotated[int, typer.Option(help="Tokens shared by neighbours.")] = 128,
    description: str = "",
) -> None:
    """Create a knowledge base bound to an embedding model."""
    request = KnowledgeBaseCreate(
        name=name,
        description=description,
        embedding_model=embedding_model,
        chunking=ChunkingSettings(chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens),
    )
    with server() as client:
        info = client.create_kb(request)
    console.print(
        f"created {info.name} ({info.id}): {info.embedding_model}, "
        f"{info.dimension} dims, chunks of {info.effective_chunk_tokens} tokens"
    )
    if info.warning:
        console.print(f"[yellow]{info.warning}[/yellow]")


@kb_app.command("list")
def kb_list(as_json: JsonOpt = False) -> None:
    """Knowledge bases with their model, documents and chunks."""
    with server() as client:
        items = client.kbs()
    if as_json:
        console.print_json(json.dumps([kb.model_dump(mode="json") for kb in items]))
        return
    table = Table("name", "id", "embedding model", "dims", "documents", "chunks", "status")
    for kb in items:
        table.add_row(
            kb.name,
            kb.id,
            kb.embedding_model,
            str(kb.dimension),
            str(kb.documents),
            str(kb.chunks),
            kb.status,
        )
    console.print(table)


@kb_app.command("show")
def kb_show(kb: str) -> None:
    """A knowledge base and the status of each of its documents."""
    with server() as client:
        info, documents = client.kb(kb), client.documents(kb)
    console.print_json(info.model_dump_json())
    table = Table("document", "id", "status", "pages", "OCR pages", "chunks", "error")
    for doc in documents:
        table.add_row(
            doc.name,
            doc.id,
            doc.status.value,
            str(doc.pages or "-"),
            str(doc.ocr_pages),
            str(doc.chunks),
            doc.error or "",
        )
    console.print(table)


@kb_app.command("rm")
def kb_rm(kb: str) -> None:
    """Delete a knowledge base with its documents and vectors."""
    with server() as client:
        client.delete_kb(kb)
    console.print(f"deleted {kb}")


@kb_app.command("rm-doc")
def kb_rm_doc(kb: str, document_id: str) -> None:
    """Delete one document (its rows, vectors and files)."""
    with server() as client:
        client.delete_document(kb, document_id)
    console.print(f"deleted {document_id}")


@kb_app.command("reindex")
def kb_reindex(
    kb: str,
    embedding_model: Annotated[str | None, typer.Option(help="Switch to this model.")] = None,
) -> None:
    """Re-embed every document (a job); search keeps working on the old index meanwhile."""
    with server() as client:
        job = client.reindex(kb, ReindexRequest(embedding_model=embedding_model))
        follow_job(client.job, job.id)


def _collect(paths: list[Path]) -> list[Path]:
    """Files under the given paths (folders recursively), hidden files skipped."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        elif path.is_file():
            found.append(path)
        else:
            raise AiftError(f"{path} does not exist.")
    if not found:
        raise AiftError("No files to ingest.")
    return found


@app.command(rich_help_panel=REMOTE)
def ingest(
    kb: str,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursively).")],
    password: Annotated[str | None, typer.Option(help="For encrypted PDFs.")] = None,
) -> None:
    """Upload documents into a knowledge base and follow their ingestion."""
    files = _collect(paths)
    with server() as client:
        result = client.upload(kb, files, password)
        for rejected in result.rejected:
            console.print(f"[red]rejected[/red] {rejected.name}: {rejected.reason}")
        for duplicate in result.duplicates:
            console.print(f"{duplicate.file}: already in {kb} as {duplicate.name}")
        if not result.job_id:
            return
        follow_job(client.job, result.job_id)
        ids = {d.id for d in result.accepted}
        documents = [d for d in client.documents(kb) if d.id in ids]
    for doc in documents:
        indexed = doc.status.value == "indexed"
        colour = "green" if indexed else "red"
        detail = f"{doc.pages} pages, {doc.chunks} chunks" if indexed else doc.error
        console.print(f"[{colour}]{doc.status.value}[/{colour}] {doc.name}: {detail}")


@app.command("search", rich_help_panel=REMOTE)
def search_command(
    kb: str,
    query: str,
    mode: Annotated[str, typer.Option(help="hybrid, dense or keywords.")] = "hybrid",
    fusion: Annotated[str, typer.Option(help="weighted or rrf.")] = "weighted",
    limit: int = 5,
    rerank: Annotated[bool, typer.Option(help="Re-rank with a cross-encoder.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Search a knowledge base; shows each hit's document, pages and scores."""
    request = SearchRequest.model_validate(
        {"query": query, "mode": mode, "fusion": fusion, "limit": limit, "rerank": rerank}
    )
    with server() as client:
        result = client.search(kb, request)
    if as_json:
        console.print_json(result.model_dump_json())
        return
    for note in result.notes:
        console.print(f"[yellow]{note}[/yellow]")
    if result.rerank_skipped:
        console.print(f"[dim]not re-ranked: {result.rerank_skipped}[/dim]")
    table = Table("#", "document", "pages", "dense", "keyword", "fused", "rerank", "text")
    for number, hit in enumerate(result.hits, start=1):
        table.add_row(
            str(number),
            hit.document,
            pages(hit.page_start, hit.page_end),
            score(hit.dense_score),
            score(hit.keyword_score),
            score(hit.fused_score),
            score(hit.rerank_score),
            hit.text[:80].replace("\n", " "),
        )
    console.print(table)
    console.print(f"{result.latency_ms:.0f} ms")


@app.command("ask", rich_help_panel=REMOTE)
def ask_command(
    kb: str,
    question: str,
    model: Annotated[str | None, typer.Option(help="Any served model.")] = None,
    max_tokens: int = 320,
    limit: Annotated[int, typer.Option(help="Sources given to the model.")] = 5,
    mode: Annotated[
        str, typer.Option(help="generate, quotes (answer + supporting quotes) or extractive.")
    ] = "generate",
    context: Annotated[
        str,
        typer.Option(help="What the model reads: sentences (best few), excerpts or chunks."),
    ] = "sentences",
    unsupported: Annotated[
        str,
        typer.Option(
            help="An answer the sources do not support: flag (keep it, marked) or not_found."
        ),
    ] = "flag",
) -> None:
    """Ask a knowledge base; the answer streams, then its citations (attributed to the
    sources' sentences) with pages. An answer the sources support nowhere is marked."""
    request = AskRequest.model_validate(
        {
            "query": question,
            "model": model,
            "max_tokens": max_tokens,
            "limit": limit,
            "answer_mode": mode,
            "context": context,
            "unsupported": unsupported,
        }
    )
    done: dict[str, Any] | None = None
    streamed = ""
    with server() as client:
        for event, data in client.ask(kb, request):
            if event == "token":
                streamed += data["text"]
                console.out(data["text"], end="", highlight=False)
            elif event == "done":
                done = data
    console.print()
    if done is None:
        raise AiftError("The answer stream ended early.")
    if done["answer"] != streamed.strip():  # citations were attributed or corrected
        console.print(f"\n[bold]With citations:[/bold] {done['answer']}", highlight=False)
    if done["found"] and done["statements"] and not done["supported"]:
        console.print("[bold yellow]UNSUPPORTED[/bold yellow]: the sources back none of it.")
    for quote in done.get("quotes", []):
        console.print(f"  “{quote['text']}” [{quote['number']}] page {quote['page']}")
    for cited in done["citations"]:
        support = cited.get("support")
        place = (
            f"page {support['page']}" if support else pages(cited["page_start"], cited["page_end"])
        )
        console.print(f"[{cited['number']}] {cited['document']}, {place}")
    for source in done["uncited_sources"]:
        place = pages(source["page_start"], source["page_end"])
        console.print(f"[dim]not cited: [{source['number']}] {source['document']}, {place}[/dim]")
    for note in done["notes"]:
        console.print(f"[yellow]{note}[/yellow]")
    if done.get("rerank_skipped"):
        console.print(f"[dim]not re-ranked: {done['rerank_skipped']}[/dim]")


@history_app.command("list")
def history_list(kb: str | None = None, limit: int = 20, as_json: JsonOpt = False) -> None:
    """Recent searches and questions."""
    with server() as client:
        entries = client.history(kb, limit)
    if as_json:
        console.print_json(json.dumps([e.model_dump(mode="json") for e in entries]))
        return
    table = Table("id", "when", "kind", "knowledge base", "query", "model", "ms")
    for e in entries:
        table.add_row(
            e.id,
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.kind,
            e.kb_name,
            e.query[:50],
            e.model or "-",
            f"{e.latency_ms:.0f}",
        )
    console.print(table)


@history_app.command("show")
def history_show(entry_id: str) -> None:
    """One search or question with its hits and answer."""
    with server() as client:
        console.print_json(client.history_entry(entry_id).model_dump_json())


@history_app.command("rm")
def history_rm(entry_id: str) -> None:
    """Delete a history entry."""
    with server() as client:
        client.delete_history(entry_id)
    console.print(f"deleted {entry_id}")


@eval_app.command("retrieval")
def eval_retrieval(
    files: Annotated[list[Path], typer.Argument(help="SQuAD-format JSON files.")],
    embedding_model: Annotated[
        str | None, typer.Option(help="Default: the configured one.")
    ] = None,
    reranker: Annotated[str | None, typer.Option(help="Default: the configured one.")] = None,
    max_questions: Annotated[int | None, typer.Option(help="Evaluate only the first N.")] = None,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Recall@1/5/10, MRR@10, nDCG@10 of dense, keyword, hybrid and re-ranked search."""
    from aift.rag.evaluation import evaluate

    runtime = local_runtime(workspace)
    runtime.models.scan()  # packaged and workspace models into the registry
    knowledge = runtime.knowledge
    embedder, _, warning = knowledge.embedder_for(embedding_model)
    if warning and not as_json:
        console.print(f"[yellow]{warning}[/yellow]")
    loaded_reranker, why = knowledge.rerankers.get(reranker)
    reports = []
    for path in files:
        if not path.is_file():
            raise AiftError(f"{path} does not exist.")
        reports.append(
            evaluate(
                path,
                embedder,
                loaded_reranker,
                runtime.settings,
                max_questions=max_questions,
                progress=lambda m: None if as_json else console.print(f"[dim]{m}[/dim]"),
            )
        )
        if why:
            reports[-1]["notes"] = [why]
    if as_json:
        print(json.dumps(reports, indent=2))
        return
    for report in reports:
        console.print(
            f"{report['file']}: {report['paragraphs']} paragraphs, "
            f"{report['questions']} questions, {report['embedding_model']}"
        )
        table = Table("method", "recall@1", "recall@5", "recall@10", "MRR@10", "nDCG@10")
        for name, m in report["methods"].items():
            table.add_row(
                name,
                *(
                    f"{m[k]:.3f}"
                    for k in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
                ),
            )
        console.print(table)
        for note in report.get("notes", []):
            console.print(f"[yellow]{note}[/yellow]")
