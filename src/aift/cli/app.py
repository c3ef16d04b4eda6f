"""The root `aift` command; command groups add themselves to it."""

from __future__ import annotations

import typer

app = typer.Typer(
    help=(
        "aift: fine-tune, ground (RAG) and serve open language models.\n\n"
        "One rule says where a command runs. Workspace commands read and change what is "
        "stored (jobs, models on disk, datasets, training runs) directly in the workspace, "
        "here (--workspace or AIFT_WORKSPACE); they work with or without a server. Server "
        "commands need what lives in the running server's memory (loaded models, the "
        "vector index of knowledge bases) and call its API at AIFT_SERVER_URL (with "
        "AIFT_API_KEY)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _setup() -> None:
    """Warnings and errors go to stderr; `serve` and `worker` configure fuller logging."""
    from aift.monitoring.logging import setup_logging

    setup_logging("WARNING", fmt="%(levelname)s: %(message)s")
