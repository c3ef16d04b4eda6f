"""The `aift` command line, one module per command group.

Where a command runs follows one rule, stated in `aift --help`: workspace commands work
in-process on the workspace; server commands call the running server's API through
`aift.client.AiftClient`. Errors a user can fix print a message and exit 2.
"""

from __future__ import annotations

import importlib
import sys

from aift.cli.app import app
from aift.cli.common import err_console
from aift.errors import AiftError

__all__ = ["app", "main"]

# Each module adds its commands to `app`; this order is the order of `aift --help`.
COMMAND_MODULES = (
    "service",
    "jobs",
    "models",
    "training",
    "document_datasets",
    "export",
    "knowledge",
    "evaluation",
    "chat",
    "operations",
    "users",
)
for _module in COMMAND_MODULES:
    importlib.import_module(f"aift.cli.{_module}")


def main() -> None:
    """Entry point: user errors print a message and exit 2, never a traceback."""
    from pydantic import ValidationError

    try:
        app()
    except AiftError as exc:
        err_console.print(f"[red]error:[/] {exc.message}")
        sys.exit(2)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            err_console.print(f"[red]error:[/] {field}: {err['msg']}")
        sys.exit(2)
