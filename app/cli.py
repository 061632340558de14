"""The ``kb`` command: serve, worker, ingest, search, documents, reindex, migrate."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli_access import collection_cli, group_cli
from app.db import transaction
from app.documents import service as documents
from app.runtime import Runtime
from app.settings import Settings, get_settings

cli = typer.Typer(help="Team knowledge base with cross-lingual search.", no_args_is_help=True)
docs_cli = typer.Typer(help="List, show and delete documents.", no_args_is_help=True)
cli.add_typer(docs_cli, name="documents")
user_cli = typer.Typer(help="Manage users and their API tokens.", no_args_is_help=True)
cli.add_typer(user_cli, name="user")
cli.add_typer(collection_cli, name="collection")
cli.add_typer(group_cli, name="group")


@contextmanager
def open_runtime() -> Iterator[Runtime]:
    """The runtime of one command, closed when the command's work ends (errors included)."""
    rt = Runtime.create(get_settings())
    try:
        yield rt
    finally:
        rt.close()


def _quiet() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    worker: Annotated[bool, typer.Option(help="also run an ingest worker in this process")] = True,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="web processes sharing the port (default KB_WEB_PROCESSES, 1); each keeps "
            "its own copy of the search indexes in step, the vectors mapped from one file",
        ),
    ] = None,
) -> None:
    """Start the web server (and, by default, an ingest worker)."""
    import uvicorn

    from app import webprocs
    from app.main import announce_admin_password, create_app
    from ingest.worker import start_in_background

    settings = get_settings()
    run_worker = worker and settings.run_worker_in_server
    count = processes or settings.web_processes
    options: dict[str, Any] = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": "info",
        # Longer than a reverse proxy's or client's idle timeout (nginx and most load
        # balancers: 60 s), so the server never closes a kept-alive connection just as
        # the other side reuses it, which drops that request (uvicorn's default is 5 s).
        "timeout_keep_alive": 75,
        **proxy_options(settings),
    }
    if count == 1:
        app = create_app(settings, services=[start_in_background] if run_worker else [])
        uvicorn.run(app, **options)
        return
    # Several processes: Python runs one thread at a time per process, so a 2-core host
    # serves about twice the searches with two. This process migrates the database and
    # creates the first admin once (not each child at the same moment), runs the ingest
    # worker if asked, and supervises the children, which build their apps themselves.
    rt = Runtime.create(settings)
    rt.ensure_default_collection()
    generated = rt.ensure_first_admin()
    if generated:
        announce_admin_password(generated)
    stop = start_in_background(rt) if run_worker else None
    try:
        if webprocs.reuse_port_supported():
            status = webprocs.serve("app.cli:web_app", count, options)
            if status:
                raise typer.Exit(status)
        else:
            uvicorn.run("app.cli:web_app", factory=True, workers=count, **options)
    finally:
        if stop is not None:
            stop()
        rt.close()


def web_app() -> Any:
    """The app of one of ``kb serve --processes N``'s children (no ingest worker)."""
    from app.main import create_app

    return create_app(get_settings())


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options: X-Forwarded-For/-Proto are believed only from
    KB_TRUSTED_PROXIES (uvicorn's own default believes any loopback client, so one local
    client could pose as many addresses to the login rate limit)."""
    trusted = settings.trusted_proxy_list
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or []}


@cli.command("worker")
def worker_cmd() -> None:
    """Run ingest workers until interrupted (any number of processes can share one database)."""
    import signal
    import threading

    from ingest.worker import start_in_background

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with open_runtime() as rt:
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        stop = start_in_background(rt)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop()


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema (the server also does this on start)."""
    with open_runtime() as rt:
        rt.ensure_default_collection()
    typer.echo(f"database ready: {rt.settings.sqlalchemy_url}")


@cli.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (searched recursively)")],
    collection: Annotated[str | None, typer.Option(help="collection name")] = None,
    wait: Annotated[bool, typer.Option(help="wait until every file is ingested")] = True,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="a tag for every file (repeatable)")
    ] = None,
) -> None:
    """Add documents and (by default) ingest them here, showing progress."""
    from app.cli_ingest import run_ingest_command
    from ingest.worker import Worker

    _quiet()
    with open_runtime() as rt:
        code = run_ingest_command(
            rt, paths, collection=collection, wait=wait, make_worker=Worker, tags=tag or ()
        )
    raise typer.Exit(code)


@cli.command()
def search(
    query: Annotated[str | None, typer.Argument(help="the question, in any language")] = None,
    k: Annotated[int, typer.Option("--k", "-k", help="number of results")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    batch: Annotated[
        Path | None, typer.Option(help="JSON lines with 'id' and 'query'; writes JSON lines")
    ] = None,
    collection: Annotated[str | None, typer.Option(help="collection name")] = None,
) -> None:
    """Search by meaning; ``--batch`` runs a file of queries (dev-eval run format)."""
    from app.search.service import SearchError
    from app.search.service import search as run_search

    _quiet()
    if (query is None) == (batch is None):
        raise typer.BadParameter("give either a QUERY or --batch FILE")
    with open_runtime() as rt:
        if batch is not None:
            with open(batch, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    result = run_search(rt, query=item["query"], k=k, collection=collection)
                    row = {
                        "id": item["id"],
                        "weak_match": result.weak_match,
                        "results": [_hit_json(h) for h in result.hits],
                    }
                    sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        assert query is not None
        try:
            result = run_search(rt, query=query, k=k, collection=collection)
        except SearchError as exc:
            raise typer.BadParameter(str(exc)) from exc
        if as_json:
            from app.search.answers import hit_snippets

            snippets = hit_snippets(rt, result)
            out = {
                "query": result.query,
                "collection": result.collection,
                "weak_match": result.weak_match,
                "results": [
                    {**_hit_json(h), "snippet": {"text": s.text, "highlights": s.highlights}}
                    for h, s in zip(result.hits, snippets, strict=True)
                ],
            }
            typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
            return
        if result.weak_match:
            typer.secho(WEAK_MATCH, fg=typer.colors.YELLOW, err=True)
        for rank, h in enumerate(result.hits, 1):
            where = f"{h.file}" + (f" p.{h.page_start}" if h.page_start else "")
            typer.secho(f"{rank:2d}. {h.score:.3f}  {where}", bold=True)
            if h.heading_path:
                typer.echo("    " + " > ".join(h.heading_path))
            snippet = " ".join(h.text.split())
            typer.echo("    " + (snippet[:300] + ("…" if len(snippet) > 300 else "")))


WEAK_MATCH = "Nothing in the knowledge base matches this well; the closest passages are below."


def _hit_json(h: object) -> dict[str, object]:
    from app.search.service import SearchHit

    assert isinstance(h, SearchHit)
    return {
        "file": h.file,
        "text": h.text,
        "heading_path": " > ".join(h.heading_path),
        "page": h.page_start,
        "score": round(h.score, 6),
        "document_id": h.document_id,
        "chunk_id": h.chunk_id,
    }


@cli.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question, in any language")],
    k: Annotated[int, typer.Option("--k", "-k", help="passages given to the LLM")] = 8,
    collection: Annotated[str | None, typer.Option(help="collection name")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole answer as JSON")] = False,
) -> None:
    """An answer written by the LLM (KB_LLM_URL, KB_LLM_MODEL) from the best passages,
    streamed, then the numbered sources it cites."""
    from app.answer.terminal import run_ask
    from app.errors import AppError

    _quiet()
    with open_runtime() as rt:
        try:
            code = run_ask(rt, question=question, collection=collection, k=k, as_json=as_json)
        except AppError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None
    raise typer.Exit(code)


@cli.command()
def reindex(
    collection: Annotated[str | None, typer.Option(help="collection name (default: all)")] = None,
) -> None:
    """Rebuild the FAISS index from the vectors in SQL (no re-embedding) and snapshot it."""
    from app.collections import service as collections

    with open_runtime() as rt, rt.sessions() as s:
        cols = [rt.collection(s, collection)] if collection else collections.list_all(s)
        for col in cols:
            t0 = time.perf_counter()
            idx = rt.indexes.rebuild(s, col)
            typer.echo(f"{col.name}: {idx.count()} vectors in {time.perf_counter() - t0:.2f}s")
        s.commit()


@docs_cli.command("list")
def documents_list(
    collection: Annotated[str | None, typer.Option(help="collection name")] = None,
) -> None:
    """List documents with their status."""
    with open_runtime() as rt, rt.sessions() as s:
        col_id = rt.collection(s, collection).id if collection else None
        for d in documents.list_documents(s, collection_id=col_id, limit=100000):
            extra = f"  {d.error}" if d.error else ""
            typer.echo(f"{d.id:6d}  {d.status:9s} {d.chunk_count:5d} chunks  {d.filename}{extra}")


@docs_cli.command("delete")
def documents_delete(ids: Annotated[list[int], typer.Argument(help="document ids")]) -> None:
    """Delete documents from SQL, the index and the disk."""
    with open_runtime() as rt:
        for doc_id in ids:
            try:
                with transaction(rt.sessions) as s:
                    removed = documents.delete_document(s, documents.get(s, doc_id))
            except documents.DocumentNotFound as exc:
                typer.echo(str(exc), err=True)
                continue
            documents.remove_files(rt.settings, removed)
            typer.echo(f"deleted {doc_id}")


@user_cli.command("create")
def user_create(
    username: str,
    role: Annotated[str, typer.Option(help="reader, editor or admin")] = "reader",
    password: Annotated[
        str | None, typer.Option(help="default: asked for (or generated when not a terminal)")
    ] = None,
) -> None:
    """Create a user; prints a generated password when none is given and no terminal asks."""
    import secrets

    from app.auth import service as auth
    from app.auth.models import Role

    generated = None
    if password is None:
        if sys.stdin.isatty():
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        else:
            password = generated = secrets.token_urlsafe(12)
    with open_runtime() as rt:
        try:
            with transaction(rt.sessions) as s:
                auth.create_user(s, username=username, password=password, role=Role(role))
        except (auth.UserError, ValueError) as exc:
            raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"created {username} ({role})" + (f", password: {generated}" if generated else ""))


@user_cli.command("list")
def user_list() -> None:
    """Users with their roles."""
    from app.auth import service as auth

    with open_runtime() as rt, rt.sessions() as s:
        for u in auth.list_users(s):
            typer.echo(f"{u.username:20s} {u.role:7s} {'disabled' if u.disabled else ''}")


@user_cli.command("token")
def user_token(
    username: str, name: Annotated[str, typer.Option(help="what the token is for")] = "cli"
) -> None:
    """Create an API token for a user and print it (it is shown only this once)."""
    from app.auth import service as auth

    with open_runtime() as rt, transaction(rt.sessions) as s:
        user = auth.by_username(s, username)
        if user is None:
            raise typer.BadParameter(f"no user named {username!r}")
        _token, plain = auth.create_token(s, user, name)
    typer.echo(plain)


@user_cli.command("passwd")
def user_passwd(username: str) -> None:
    """Set a new password (asked for twice); ends the user's other sessions."""
    from app.auth import service as auth

    password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    with open_runtime() as rt, transaction(rt.sessions) as s:
        user = auth.by_username(s, username)
        if user is None:
            raise typer.BadParameter(f"no user named {username!r}")
        auth.set_password(s, user, password)
    typer.echo(f"password of {username} changed")


@cli.command("mcp")
def mcp_cmd(
    http: Annotated[
        bool, typer.Option("--http", help="serve streamable HTTP at /mcp instead of stdio")
    ] = False,
    host: Annotated[str | None, typer.Option(help="with --http: address to listen on")] = None,
    port: Annotated[int, typer.Option(help="with --http: port to listen on")] = 8010,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="KB_MCP_TOKEN",
            help="stdio: the API token of the user the agent acts as (reader or above); "
            "over HTTP each request sends its own 'Authorization: Bearer' token",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the MCP tools search and ask to agents (stdio by default, or --http)."""
    from app.auth.deps import NotAuthenticated, PermissionDenied
    from app.mcp_server.server import check_token, serve_http, serve_stdio

    _quiet()
    with open_runtime() as rt:
        if http:
            host = host or rt.settings.host
            typer.echo(f"MCP server at http://{host}:{port}/mcp", err=True)
            serve_http(rt, host=host, port=port, uvicorn_options=proxy_options(rt.settings))
            return
        try:
            user = check_token(rt, token)
        except (NotAuthenticated, PermissionDenied) as exc:
            typer.secho(
                f"error: {exc}. 'kb mcp' over stdio acts as one user: give their API token "
                "with --token or KB_MCP_TOKEN ('kb user token NAME' makes one).",
                fg="red",
                err=True,
            )
            raise typer.Exit(2) from None
        typer.echo(f"MCP server on stdio, acting as {user.username} ({user.role})", err=True)
        serve_stdio(rt, token=token or "")


def main() -> None:
    from app.collections.service import CollectionNotFound

    try:
        cli()
    except CollectionNotFound as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
