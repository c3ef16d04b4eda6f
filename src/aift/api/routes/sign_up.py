"""Creating one's own account at /signup, where the admin allows it (`AIFT_SIGNUP`:
`viewer` or `member`, the role such an account gets; `off` by default, when the page is
a 404). Tries are limited per client address (AIFT_LOGIN_ATTEMPTS_PER_MINUTE, counted
apart from sign-ins), every one counted, so a script cannot mass-create accounts; each
account made is in the audit trail."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.api.routes.pages import render
from aift.api.routes.sign_in import audit_sign_in, client_of, signed_in
from aift.auth.limits import AttemptLimiter
from aift.auth.schemas import MAX_PASSWORD, MIN_PASSWORD, Role, UserCreate
from aift.errors import AiftError

router = APIRouter(include_in_schema=False)


def _open_to(request: Request) -> Role | None:
    """The role a new account gets here, or None when sign-up is closed (also before
    the first admin exists: that account comes from AIFT_ADMIN_EMAIL)."""
    runtime = get_runtime(request)
    if runtime.settings.signup == "off" or not runtime.accounts.exist():
        return None
    return Role(runtime.settings.signup)


def _page(request: Request, role: Role | None, error: str | None, status: int) -> HTMLResponse:
    page = render(
        request, "signup.html", page="login", role=role, error=error, minimum=MIN_PASSWORD
    )
    page.status_code = status if role is not None else 404
    return page


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request) -> HTMLResponse:
    role = await run_in_threadpool(_open_to, request)
    return _page(request, role, None, 200)


@router.post("/signup", response_model=None)
async def signup(
    request: Request,
    email: str = Form("", max_length=320),
    name: str = Form("", max_length=200),
    password: str = Form("", max_length=MAX_PASSWORD),
) -> Response:
    """Create the account with the password chosen here, and sign in."""
    role = await run_in_threadpool(_open_to, request)
    if role is None:
        return _page(request, None, None, 404)
    limiter: AttemptLimiter = request.app.state.signup_limiter
    client = client_of(request)
    wait = limiter.retry_after(client)
    if wait is not None:
        page = _page(request, role, f"Too many tries. Try again in {int(wait) + 1} seconds.", 429)
        page.headers["Retry-After"] = str(int(wait) + 1)
        return page
    limiter.failed(client)  # every sign-up counts against the client's allowance
    runtime = get_runtime(request)
    try:
        wanted = UserCreate(email=email.strip(), name=name.strip(), role=role, password=password)
        user, _ = await run_in_threadpool(runtime.accounts.users.create, wanted, chosen=True)
    except AiftError as exc:
        return _page(request, role, exc.message, exc.status_code)
    except ValueError:  # the schema's checks: an email, a long enough password
        error = f"Give an email address and a password of at least {MIN_PASSWORD} characters."
        return _page(request, role, error, 422)
    await audit_sign_in(request, "sign up", "/signup", 303, user.email)
    return await run_in_threadpool(signed_in, request, runtime, user.id, "/")
