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
