"""Signing in and out of the web UI: an account's email and password, or the server's
API key (the bootstrap admin); the one-time links that set a password; the account page.

A sign-in trades the credential for a server-side session: the cookie holds a random
token (HttpOnly, SameSite=Strict, Secure over HTTPS) that lasts AIFT_SESSION_HOURS.
Failed tries are limited per client address (AIFT_LOGIN_ATTEMPTS_PER_MINUTE), and every
try, good or bad, is in the audit trail.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_principal, get_runtime
from aift.api.middleware import SESSION_COOKIE, keys_match, session_cookie
from aift.api.routes.pages import render
from aift.auth.limits import AttemptLimiter
from aift.auth.schemas import MAX_PASSWORD, MIN_PASSWORD
from aift.errors import AiftError
from aift.monitoring.logging import request_id_var
from aift.runtime import Runtime

router = APIRouter(include_in_schema=False)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def audit_sign_in(request: Request, action: str, path: str, status: int, actor: str) -> None:
    """Record a sign-in, sign-up or password setting (these routes audit themselves:
    whoever made the request is not known to the middleware)."""
    audit = get_runtime(request).accounts.audit
    await run_in_threadpool(
        lambda: audit.record(
            None,
            action,
            path,
            status=status,
            client=client_of(request),
            request_id=request_id_var.get() or "",
            actor=actor,
        )
    )


def _login_page(request: Request, error: str | None, status: int = 200) -> HTMLResponse:
    runtime = get_runtime(request)
    page = render(
        request,
        "login.html",
        page="login",
        error=error,
        with_key=runtime.settings.api_key is not None,
        with_accounts=runtime.accounts.exist(),
        signup=runtime.settings.signup != "off",
    )
    page.status_code = status
    return page


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _login_page(request, None)


def signed_in(request: Request, runtime: Runtime, user_id: str | None, to: str) -> Response:
    new = runtime.accounts.sessions.create(user_id)
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        new.token,
        max_age=int(runtime.settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _check(
    runtime: Runtime, email: str, password: str, api_key: str
) -> tuple[bool, str | None, bool]:
    """(right, user id, must change password) of a sign-in try."""
    expected = runtime.settings.api_key.get_secret_value() if runtime.settings.api_key else None
    if api_key:
        return expected is not None and keys_match(api_key.strip(), expected), None, False
    user = runtime.accounts.users.authenticate(email, password) if email else None
    if user is None:
        return False, None, False
    return True, user.id, user.must_change_password


@router.post("/login", response_model=None)
async def login(
    request: Request,
    email: str = Form("", max_length=320),
    password: str = Form("", max_length=MAX_PASSWORD),
    api_key: str = Form("", max_length=500),
) -> Response:
    """Sign in with an account or the API key."""
    runtime = get_runtime(request)
    if runtime.settings.api_key is None and not await run_in_threadpool(runtime.accounts.exist):
        return RedirectResponse("/", status_code=303)  # nothing to sign in to
    limiter: AttemptLimiter = request.app.state.login_limiter
    client = client_of(request)
    wait = limiter.retry_after(client)
    if wait is not None:
        page = await run_in_threadpool(
            _login_page,
            request,
            f"Too many wrong tries. Try again in {int(wait) + 1} seconds.",
            429,
        )
        page.headers["Retry-After"] = str(int(wait) + 1)
        return page
    right, user_id, must_change = await run_in_threadpool(_check, runtime, email, password, api_key)
    actor = email.strip().lower() if email and not api_key else "api key"
    action = "sign in" if right else "sign in failed"
    await audit_sign_in(request, action, "/login", 303 if right else 401, actor)
    if not right:
        limiter.failed(client)
        wrong = "That email and password, or key, is not right."
        return await run_in_threadpool(_login_page, request, wrong, 401)
    limiter.succeeded(client)
    to = "/account" if must_change else "/"
    return await run_in_threadpool(signed_in, request, runtime, user_id, to)


@router.post("/logout", response_model=None)
async def logout(request: Request) -> Response:
    """End this browser's session on the server and drop its cookie."""
    token = session_cookie(request.headers.get("cookie"))
    if token:
        await run_in_threadpool(get_runtime(request).accounts.sessions.end, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response


@router.get("/setup/{token}", response_class=HTMLResponse)
async def setup_page(request: Request, token: str) -> HTMLResponse:
    """The page of a one-time link: set the password of the account it is for."""
    user = await run_in_threadpool(get_runtime(request).accounts.users.link_user, token)
    page = render(request, "setup.html", page="login", user=user, error=None, minimum=MIN_PASSWORD)
    if user is None:
        page.status_code = 404
    return page


@router.post("/setup/{token}", response_model=None)
async def setup(
    request: Request, token: str, password: str = Form("", max_length=MAX_PASSWORD)
) -> Response:
    """Set the password, spend the link, and sign in."""
    runtime = get_runtime(request)
    user = await run_in_threadpool(runtime.accounts.users.link_user, token)
    if user is None or len(password) < MIN_PASSWORD:
        error = None if user is None else f"Use at least {MIN_PASSWORD} characters."
        page = render(
            request, "setup.html", page="login", user=user, error=error, minimum=MIN_PASSWORD
        )
        page.status_code = 404 if user is None else 422
        return page
    try:
        done = await run_in_threadpool(runtime.accounts.users.use_link, token, password)
    except AiftError as exc:
        page = render(
            request, "setup.html", page="login", user=None, error=exc.message, minimum=MIN_PASSWORD
        )
        page.status_code = exc.status_code
        return page
    await audit_sign_in(request, "set password", "/setup", 303, done.email)
    return await run_in_threadpool(signed_in, request, runtime, done.id, "/")


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request) -> HTMLResponse:
    """The signed-in user's account: password, API tokens, signing out everywhere."""
    principal = get_principal(request)
    user = None
    if principal.user_id:
        user = await run_in_threadpool(get_runtime(request).accounts.users.get, principal.user_id)
    return render(request, "account.html", page="account", user=user, minimum=MIN_PASSWORD)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request) -> HTMLResponse:
    """Users, groups and the audit trail (the policy lets only admins here)."""
    signup = get_runtime(request).settings.signup
    return render(request, "admin.html", page="admin", signup=signup)
