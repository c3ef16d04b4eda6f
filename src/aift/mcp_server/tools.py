"""The MCP tools and resources: what a desktop assistant, an IDE or an agent may ask of
aift's knowledge bases.

Tools: `list_knowledge_bases`, `search` (hits with document, page, section and every
score), `ask` (the checked answer with its citations and quotes; the answer mode is the
caller's choice), `get_page` (a cited page's extracted text) and, only on the server
built for callers who may write, `add_document`. Resources: the documents of a
knowledge base and the text of a page, by URI template.

Each call runs the same service methods the REST routes run, in a worker thread, acting
as the caller (`acting_as`): ownership and sharing apply unchanged, and a knowledge base
the caller may not see is "not found", as over REST.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError

from aift import __version__
from aift.auth.schemas import Principal
from aift.errors import AiftError
from aift.rag.schemas import AskRequest, SearchRequest
from aift.work.actor import Actor, acting_as

if TYPE_CHECKING:
    from aift.runtime import Runtime

T = TypeVar("T")
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


@dataclass(frozen=True)
class Caller:
    """Who an MCP call is made for (the services' actor, the credential's principal for
    the audit trail), and whether they may add documents."""

    actor: Actor
    can_write: bool
    principal: Principal | None = None


CallerOf = Callable[[Context], Caller]


async def _run(caller: Caller, work: Callable[[], T]) -> T:
    """`work` in a worker thread, as the caller; its errors as tool errors."""

    def as_caller() -> T:
        with acting_as(caller.actor):
            return work()

    with _tool_errors():
        return await anyio.to_thread.run_sync(as_caller)


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """aift's errors and invalid arguments as tool errors whose text says what went
    wrong (as the REST API's error body would)."""
    try:
        yield
    except AiftError as exc:
        raise ToolError(f"{type(exc).__name__}: {exc}") from None
    except ValidationError as exc:
        raise ToolError(f"Invalid arguments: {exc.errors(include_url=False)}") from None


def build(runtime: Runtime, caller_of: CallerOf, writable: bool) -> MCPServer:
    """An MCP server over `runtime`'s knowledge bases; `writable` adds `add_document`."""
    server = MCPServer(
        name="aift",
        version=__version__,
        title="aift knowledge bases",
        instructions="Search and ask the knowledge bases you may see; cite pages as given.",
    )
    _reading_tools(server, runtime, caller_of)
    _answer_tools(server, runtime, caller_of)
    _resources(server, runtime, caller_of)
    if writable:
        _writing_tools(server, runtime, caller_of)
    return server


def _reading_tools(server: MCPServer, runtime: Runtime, caller_of: CallerOf) -> None:
    @server.tool(annotations=READ_ONLY)
    async def list_knowledge_bases(ctx: Context) -> list[dict[str, Any]]:
        """The knowledge bases you may search: id, name, description, documents."""
        found = await _run(caller_of(ctx), runtime.knowledge.list)
        return [kb.model_dump(mode="json", include=KB_FIELDS) for kb in found]

    @server.tool(annotations=READ_ONLY)
    async def search(
        knowledge_base: Annotated[str, Field(description="Its id or name.")],
        query: Annotated[str, Field(min_length=1, max_length=2000)],
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=50)] = 5,
        mode: Literal["hybrid", "dense", "keywords"] = "hybrid",
    ) -> list[dict[str, Any]]:
        """Passages of a knowledge base that match the query, best first: document,
        pages, section, text and each score (dense, keyword, fused, re-ranked)."""
        request = SearchRequest(query=query, limit=limit, mode=mode)
        found = await _run(
            caller_of(ctx), lambda: runtime.knowledge.search(knowledge_base, request, record=True)
        )
        return [hit.model_dump(mode="json") for hit in found.hits]

    @server.tool(annotations=READ_ONLY)
    async def get_page(
        knowledge_base: Annotated[str, Field(description="Its id or name.")],
        document: Annotated[str, Field(description="The document's id or file name.")],
        page: Annotated[int, Field(ge=1, le=100_000)],
        ctx: Context,
    ) -> str:
        """The extracted text of one page of a document (what a citation points at)."""
        return await _run(
            caller_of(ctx), lambda: _page_text(runtime, knowledge_base, document, page)
        )


KB_FIELDS = {"id", "name", "description", "documents", "chunks", "embedding_model", "status"}


def _page_text(runtime: Runtime, kb: str, document: str, page: int) -> str:
    texts, problems = runtime.knowledge.page_texts(kb, [(document, page)])
    if (document, page) not in texts:
        raise ToolError(problems.get((document, page), f"No text on page {page} of {document}."))
    return texts[(document, page)]


def _answer_tools(server: MCPServer, runtime: Runtime, caller_of: CallerOf) -> None:
    @server.tool(annotations=READ_ONLY)
    async def ask(
        knowledge_base: Annotated[str, Field(description="Its id or name.")],
        question: Annotated[str, Field(min_length=1, max_length=2000)],
        ctx: Context,
        answer_mode: Annotated[
            Literal["generate", "quotes", "extractive"],
            Field(
                description="generate: a model answers; quotes: that plus the source "
                "sentences; extractive: the source sentences alone (no model)."
            ),
        ] = "generate",
        model: Annotated[
            str | None, Field(description="A served model; default the server's.")
        ] = None,
    ) -> dict[str, Any]:
        """An answer from the knowledge base with checked citations [n] (document,
        pages, section) and the quotes that support it."""
        with _tool_errors(), acting_as(caller_of(ctx).actor):
            request = AskRequest(query=question, answer_mode=answer_mode, model=model)
            result = await runtime.knowledge.ask(knowledge_base, request)
        return result.model_dump(
            mode="json",
            include={
                "answer",
                "found",
                "answer_mode",
                "model",
                "citations",
                "quotes",
                "knowledge_base",
            },
        )


def _resources(server: MCPServer, runtime: Runtime, caller_of: CallerOf) -> None:
    @server.resource("aift://kb/{knowledge_base}/documents", mime_type="application/json")
    async def documents(knowledge_base: str, ctx: Context) -> list[dict[str, Any]]:
        """The documents of a knowledge base: id, name, pages, status."""
        try:
            found = await _run(caller_of(ctx), lambda: runtime.knowledge.documents(knowledge_base))
        except ToolError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return [
            d.model_dump(mode="json", include={"id", "name", "content_type", "pages", "status"})
            for d in found
        ]

    @server.resource("aift://kb/{knowledge_base}/documents/{document}/pages/{page}")
    async def page_text(knowledge_base: str, document: str, page: str, ctx: Context) -> str:
        """The extracted text of a page."""
        if not page.isdigit():
            raise ResourceNotFoundError(f"Page {page!r} is not a page number.")
        try:
            return await _run(
                caller_of(ctx), lambda: _page_text(runtime, knowledge_base, document, int(page))
            )
        except ToolError as exc:
            raise ResourceNotFoundError(str(exc)) from None


def _writing_tools(server: MCPServer, runtime: Runtime, caller_of: CallerOf) -> None:
    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
    async def add_document(
        knowledge_base: Annotated[str, Field(description="Its id or name.")],
        filename: Annotated[str, Field(min_length=1, max_length=255)],
        content: Annotated[str, Field(description="The text, or the file's bytes in base64.")],
        ctx: Context,
        base64_encoded: bool = False,
    ) -> dict[str, Any]:
        """Upload one document (PDF, Word, PowerPoint, Excel, CSV, HTML, EPUB, text or
        Markdown, judged by its bytes) and queue its ingestion; returns the job id."""
        caller = caller_of(ctx)
        if not caller.can_write:
            raise ToolError("This credential can only read; adding documents needs write.")
        data = _decoded(content, base64_encoded)
        limit = runtime.settings.max_upload_mb * 1024 * 1024
        if len(data) > limit:
            raise ToolError(
                f"{filename} is larger than the {runtime.settings.max_upload_mb} MB limit."
            )
        folder = runtime.workspace.temp_uploads
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"upload-{uuid.uuid4().hex}"
        path.write_bytes(data)
        try:
            result = await _run(
                caller, lambda: runtime.knowledge.add_files(knowledge_base, [(path, filename)])
            )
        finally:
            path.unlink(missing_ok=True)  # an accepted file was moved to data/ already
        await anyio.to_thread.run_sync(
            lambda: runtime.accounts.audit.record(
                caller.principal, "mcp add_document", f"{knowledge_base}/{filename}", status=202
            )
        )
        return result.model_dump(mode="json")


def _decoded(content: str, is_base64: bool) -> bytes:
    if not is_base64:
        return content.encode("utf-8")
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise ToolError(
            "content is not valid base64 (set base64_encoded to false for text)."
        ) from None
