"""`aift chat`: talk to a model the running server serves (a server command)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aift.cli.app import app
from aift.cli.common import REMOTE, console, server


@app.command(rich_help_panel=REMOTE)
def chat(
    model: str,
    system: Annotated[str | None, typer.Option(help="A system prompt.")] = None,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.7,
    max_tokens: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Chat with a model served by the running server (streams; /bye or Ctrl-D ends)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    console.print(f"[dim]chatting with {model} — /bye to end[/]")
    with server() as client:
        while True:
            try:
                line = console.input("[bold]>>> [/]")
            except (EOFError, KeyboardInterrupt):
                break
            if line.strip() in ("/bye", "/exit", "/quit"):
                break
            if not line.strip():
                continue
            messages.append({"role": "user", "content": line})
            body = {
                "model": model,
                "messages": messages,
                "temperature": temperature,
                "max_tokens": max_tokens,
            }
            reply = []
            for delta in client.chat(body):
                reply.append(delta)
                console.print(delta, end="", markup=False, highlight=False)
            console.print()
            messages.append({"role": "assistant", "content": "".join(reply)})
