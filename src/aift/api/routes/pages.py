"""Server-rendered pages of the web UI (data comes from the JSON API in the browser)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from aift import __version__
from aift.api.deps import get_runtime
from aift.api.middleware import API_KEY_COOKIE, keys_match

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parents[2] / "web" / "templates"))

router = APIRouter(include_in_schema=False)


def _render(request: Request, name: str, **context: object) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, {"version": __version__, **context})


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/jobs", status_code=303)


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
    response = RedirectResponse("/jobs", status_code=303)
    response.set_cookie(API_KEY_COOKIE, api_key.strip(), httponly=True, samesite="strict")
    return response
