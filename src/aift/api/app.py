"""The FastAPI application factory: routers, middleware, error handlers, static files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

import aift.tasks  # noqa: F401 - registers the job kinds this app submits and lists
from aift import __version__
from aift.api.errors import API_ERRORS, OLLAMA_ERRORS, install_error_handlers
from aift.api.guards import BodyLimitMiddleware, CrossSiteGuardMiddleware, HostGuardMiddleware
from aift.api.middleware import (
    AuditMiddleware,
    AuthMiddleware,
    RequestIdMiddleware,
    UnexpectedErrorMiddleware,
)
from aift.api.routes import (
    account,
    admin,
    arena,
    conversations,
    datasets,
    evaluations,
    health,
    jobs,
    knowledge,
    metrics,
    models,
    ollama,
    openai,
    pages,
    sign_in,
    sign_up,
    system,
    tensorboard,
    training,
    ws,
)
from aift.auth.hosts import HostPolicy
from aift.auth.limits import AttemptLimiter
from aift.mcp_server.http import PATH as MCP_PATH
from aift.mcp_server.http import McpEndpoint
from aift.runtime import Runtime

log = logging.getLogger(__name__)


class LocalWorkerLike(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def status(self) -> dict: ...


STATIC_DIR = Path(__file__).parents[1] / "web" / "static"


AUDIT_PRUNE_SECONDS = 3600.0


async def _watch_orphans(runtime: Runtime) -> None:
    """Periodically mark jobs of dead or silent workers interrupted (any machine), and
    drop audit events past their retention (at the start, then hourly)."""
    interval = max(5.0, runtime.settings.job_heartbeat_timeout_seconds / 2)
    pruned_at = -AUDIT_PRUNE_SECONDS
    while True:
        try:
            if time.monotonic() - pruned_at >= AUDIT_PRUNE_SECONDS:
                pruned_at = time.monotonic()
                await run_in_threadpool(runtime.accounts.audit.prune)
            await asyncio.sleep(interval)
            await run_in_threadpool(runtime.jobs.recover_orphans)
        except Exception:  # noqa: BLE001 - a failed sweep must not stop the server
            log.exception("orphan sweep failed")


def _first_admin(runtime: Runtime) -> None:
    """With AIFT_ADMIN_EMAIL on a workspace without accounts: create that admin and print
    (to the console, never to the logs) the one-time link that sets the password."""
    settings = runtime.settings
    if not settings.admin_email:
        return
    token = runtime.accounts.bootstrap(settings.admin_email)
    if token is not None:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        print(
            f"aift: admin {settings.admin_email} created; set its password (link valid 7 days): "
            f"http://{host}:{settings.port}/setup/{token}",
            file=sys.stderr,
            flush=True,
        )


def _add_routes(app: FastAPI) -> None:
    """Every router (pages last: their paths are the broadest) and the static files."""
    for module in (
        health,
        metrics,
        system,
        jobs,
        models,
        datasets,
        training,
        evaluations,
        arena,
        account,
        admin,
        knowledge,
        conversations,
        openai,
        ws,
        tensorboard,
        sign_in,
        sign_up,
        pages,
    ):
        app.include_router(module.router, responses=API_ERRORS)
    app.include_router(knowledge.history_router, responses=API_ERRORS)
    app.include_router(ollama.router, responses=OLLAMA_ERRORS)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


def create_app(runtime: Runtime, worker: LocalWorkerLike | None = None) -> FastAPI:
    """Build the web app around an already started Runtime (and its local worker)."""

    mcp = McpEndpoint(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(lambda: runtime.index_syncer)  # open the index before requests
        await run_in_threadpool(_first_admin, runtime)
        if worker is not None:
            worker.start()
        sweeper = asyncio.create_task(_watch_orphans(runtime))
        async with mcp.running():
            yield
        sweeper.cancel()
        if worker is not None:
            await run_in_threadpool(worker.stop)
        await run_in_threadpool(runtime.close)

    app = FastAPI(
        title="aift",
        version=__version__,
        description="Fine-tune, ground (RAG) and serve open language models.",
        lifespan=lifespan,
        # Counted while the multipart body is parsed, not after it was all spooled: one
        # file more than allowed still reaches the route, which names the setting.
        form_limits={"max_files": runtime.settings.max_upload_files + 1, "max_fields": 64},
    )
    app.state.runtime = runtime
    app.state.worker = worker
    install_error_handlers(app)
    app.router.routes.append(Route(MCP_PATH, endpoint=mcp, methods=["GET", "POST", "DELETE"]))
    _add_routes(app)

    settings = runtime.settings
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    policy = HostPolicy.build(settings.host, settings.allowed_hosts, settings.cors_origins)
    app.state.login_limiter = AttemptLimiter(settings.login_attempts_per_minute)
    app.state.signup_limiter = AttemptLimiter(settings.login_attempts_per_minute)
    # Added innermost first. Outermost → innermost: request id → Host allow-list → CORS →
    # 500 bodies → body limits → cross-site check → authentication → audit → routes.
    app.add_middleware(AuditMiddleware, audit=runtime.accounts.audit)
    app.add_middleware(AuthMiddleware, api_key=api_key, accounts=runtime.accounts)
    app.add_middleware(CrossSiteGuardMiddleware, policy=policy)
    app.add_middleware(
        BodyLimitMiddleware,
        json_mb=settings.max_json_mb,
        upload_mb=settings.max_upload_request_mb,
        blob_mb=settings.max_blob_mb,
    )
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["x-request-id"],
    )
    app.add_middleware(HostGuardMiddleware, policy=policy)
    app.add_middleware(RequestIdMiddleware)
    return app
