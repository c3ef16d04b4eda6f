"""Server-rendered pages of the web UI (data comes from the JSON API in the browser)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from aift import __version__
from aift.api.deps import get_runtime
from aift.api.middleware import API_KEY_COOKIE, keys_match
from aift.inference.engines import engines
from aift.inference.manager import SERVABLE_KINDS
from aift.web.dashboard import dashboard, human_size

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parents[2] / "web" / "templates"))
TEMPLATES.env.filters["size"] = human_size

router = APIRouter(include_in_schema=False)


def _render(request: Request, name: str, **context: object) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, {"version": __version__, **context})


@router.get("/", response_class=HTMLResponse)
async def dashboard_page(request: Request) -> HTMLResponse:
    board = await run_in_threadpool(dashboard, get_runtime(request))
    return _render(request, "dashboard.html", page="dashboard", board=board)


@router.get("/partials/dashboard", response_class=HTMLResponse)
async def dashboard_partial(request: Request) -> HTMLResponse:
    """The dashboard's body alone, which the page swaps in every few seconds (htmx)."""
    board = await run_in_threadpool(dashboard, get_runtime(request))
    return _render(request, "partials/dashboard.html", board=board)


@router.get("/models", response_class=HTMLResponse)
async def models_page(request: Request) -> HTMLResponse:
    return _render(request, "models.html", page="models", **await _models(request))


@router.get("/partials/models", response_class=HTMLResponse)
async def models_partial(request: Request) -> HTMLResponse:
    """The models page's tables alone, re-rendered after a load, unload or pull."""
    return _render(request, "partials/models.html", **await _models(request))


async def _models(request: Request) -> dict[str, object]:
    runtime = get_runtime(request)
    registry = await run_in_threadpool(runtime.models.scan)
    remote = await run_in_threadpool(runtime.model_manager.servable)
    names = {m.name for m in registry}
    return {
        "models": registry + [m for m in remote if m.name not in names],
        "loaded": await run_in_threadpool(runtime.model_manager.loaded),
        "engines": [name for name, spec in engines().items() if spec.available()],
        "servable": {kind.value for kind in SERVABLE_KINDS},
    }


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    return _render(request, "jobs.html", page="jobs")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _render(request, "login.html", page="login", error=None)


@router.post("/login", response_model=None)
def login(request: Request, api_key: str = Form(...)) -> HTMLResponse | RedirectResponse:
    settings = get_runtime(request).settings
    expected = settings.api_key.get_secret_value() if settings.api_key else None
    if expected is not None and not keys_match(api_key.strip(), expected):
        page = _render(request, "login.html", page="login", error="That key is not right.")
        page.status_code = 401
        return page
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(API_KEY_COOKIE, api_key.strip(), httponly=True, samesite="strict")
    return response
