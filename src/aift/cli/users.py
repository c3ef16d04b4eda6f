"""`aift users`: accounts of the workspace, for whoever runs the machine (workspace
commands: no server or sign-in needed, the shell is the credential) — create a user
(an initial password, or a one-time link), list, make a new link, change a role,
disable or enable."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from aift.auth.schemas import Role, UserCreate, UserUpdate
from aift.cli.app import app
from aift.cli.common import LOCAL, JsonOpt, WorkspaceOpt, console, local_runtime
from aift.errors import NotFound

users_app = typer.Typer(help="Accounts: create, list, links, roles.", no_args_is_help=True)
app.add_typer(users_app, name="users", rich_help_panel=LOCAL)


def _link(base: str, token: str) -> str:
    return f"{base.rstrip('/')}/setup/{token}"


@users_app.command("create")
def create(
    email: Annotated[str, typer.Argument(help="The user's email (their sign-in name).")],
    role: Annotated[Role, typer.Option(help="admin, member or viewer.")] = Role.member,
    password: Annotated[
        str | None,
        typer.Option(help="An initial password (changed at the first sign-in); none: a link."),
    ] = None,
    url: Annotated[str, typer.Option(help="The server's address, for the link.")] = (
        "http://127.0.0.1:8050"
    ),
    workspace: WorkspaceOpt = None,
) -> None:
    """Create a user; prints the one-time link that sets the password (valid 7 days)."""
    runtime = local_runtime(workspace)
    user, token = runtime.accounts.users.create(
        UserCreate(email=email, role=role, password=password)
    )
    console.print(f"created {user.email} ({user.role.value})")
    if token:
        print(f"set the password at: {_link(url, token)}")


@users_app.command("list")
def list_users(as_json: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Every user: role, state, last sign-in."""
    users = local_runtime(workspace).accounts.users.users()
    if as_json:
        print(json.dumps([u.model_dump(mode="json") for u in users], indent=2))
        return
    table = Table("id", "email", "role", "state", "last sign-in")
    for u in users:
        state = "disabled" if u.disabled else ("active" if u.has_password else "invited")
        last = u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "-"
        table.add_row(u.id, u.email, u.role.value, state, last)
    console.print(table)


@users_app.command("link")
def link(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    url: Annotated[str, typer.Option(help="The server's address, for the link.")] = (
        "http://127.0.0.1:8050"
    ),
    workspace: WorkspaceOpt = None,
) -> None:
    """A new one-time link that sets the user's password (a forgotten password)."""
    users = local_runtime(workspace).accounts.users
    user = users.by_email(email)
    if user is None:
        raise NotFound(f"No user {email!r}.")
    print(f"set the password at: {_link(url, users.new_link(user.id))}")


@users_app.command("update")
def update(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    role: Annotated[Role | None, typer.Option(help="A new role.")] = None,
    disable: Annotated[
        bool | None, typer.Option("--disable/--enable", help="Disable or enable.")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Change a user's role, or disable (signing them out) or enable them."""
    users = local_runtime(workspace).accounts.users
    user = users.by_email(email)
    if user is None:
        raise NotFound(f"No user {email!r}.")
    done = users.update(user.id, UserUpdate(role=role, disabled=disable))
    console.print(f"{done.email}: {done.role.value}{', disabled' if done.disabled else ''}")
