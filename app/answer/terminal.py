"""``kb ask``: the answer streamed to the terminal, then its numbered sources."""

from __future__ import annotations

import json
import sys

import typer

from app.answer.service import (
    CitationsEvent,
    DoneEvent,
    ErrorEvent,
    TokenEvent,
    collect,
    stream_answer,
)
from app.runtime import Runtime
from app.search.service import SearchFilters


def _where(p: dict[str, object]) -> str:
    title = p.get("title") or p.get("file")
    path = p.get("heading_path")
    heading = " > ".join(str(h) for h in path) if isinstance(path, list) else ""
    page = f", p. {p['page']}" if p.get("page") else ""
    return f"{title}" + (f" — {heading}" if heading else "") + page


def run_ask(
    rt: Runtime,
    *,
    question: str,
    collection: str | None,
    k: int,
    filters: SearchFilters | None = None,
    as_json: bool = False,
) -> int:
    """Write the answer to stdout (sources after it); the exit status: 0, or 1 when the
    LLM failed. Raises what the answer service raises before the answer starts."""
    events = stream_answer(rt, question=question, collection=collection, k=k, filters=filters)
    if as_json:
        typer.echo(json.dumps(collect(events).as_dict(), ensure_ascii=False, indent=2))
        return 0
    citations: list[dict[str, object]] = []
    for event in events:
        if isinstance(event, TokenEvent):
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, CitationsEvent):
            citations = event.citations
        elif isinstance(event, ErrorEvent):
            typer.echo("")
            typer.secho(f"error: {event.message}", fg=typer.colors.RED, err=True)
            _sources(citations)
            return 1
        elif isinstance(event, DoneEvent):
            if event.weak_match:
                typer.secho(event.notice or "", fg=typer.colors.YELLOW, err=True)
                _sources(event.passages, title="Closest passages:")
                return 0
            typer.echo("")
            if event.notice:
                typer.secho(event.notice, fg=typer.colors.YELLOW, err=True)
            _sources(citations)
    return 0


def _sources(items: list[dict[str, object]], *, title: str = "Sources:") -> None:
    if not items:
        return
    typer.echo("")
    typer.secho(title, bold=True)
    for p in items:
        typer.echo(f"[{p['n']}] {_where(p)}")
        typer.echo(f"    {p['file']}  {p['link']}")
