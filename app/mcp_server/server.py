"""The MCP server: the ``search`` and ``ask`` tools, over stdio (one user: the token given
at start) or streamable HTTP (each request's own bearer token; none or a bad one is 401)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.deps import NotAuthenticated, PermissionDenied
from app.auth.models import User
from app.errors import AppError
from app.handlers import classify_database_error
from app.runtime import Runtime
from app.search.query import AskK, AskQuery, Kind, Language, Question, SearchK, SearchQuery
from app.search.service import MAX_FILTER_TAGS

from .access import authorize, bearer
from .tools import McpAskOut, McpSearchOut, run_ask, run_search

MCP_PATH = "/mcp"
INSTRUCTIONS = (
    "A team knowledge base with cross-lingual search: documents in English and Chinese "
    "(and other languages) are found by meaning, whatever the language of the query. "
    "Use `search` for a list of passages, `ask` for an answer: written from the passages "
    "and citing them when the knowledge base has an LLM configured, otherwise the passages "
    "that answer with their answering sentences marked. Each result has a `link` (a path on the "
    "knowledge base's web server). `weak_match: true` means nothing matches well: the "
    "results are only the closest passages, not an answer."
)
SEARCH_DESCRIPTION = (
    "Search the knowledge base by meaning and by words, in any language (an English query "
    "finds a Chinese passage and the other way round). Returns the best passages, best "
    "first: title, file, heading_path, page, kind, language, score, the whole passage "
    "`text`, a short `snippet` with highlight offsets, and a `link` into the document view; "
    "plus `weak_match` (true: nothing matches well, the hits are only the closest). "
    "Filters: collection, kind (section, faq or question), language (e.g. en, zh), tags "
    "(any of them)."
)
ASK_DESCRIPTION = (
    "Ask a question in any language. When the knowledge base has an LLM configured "
    "(`written: true`), `answer` is written from the best passages in the question's "
    "language, citing them as [n]: `citations` are the passages cited (title, file, page, "
    "`link` into the document view), `passages` all those it was given. Otherwise the "
    "answer is extractive (`written: false`): `answers` are the passages most likely to "
    "answer, each with its highlighted answer sentences (`sentences`: character offsets "
    "into the passage's `text`, with the sentence and its score) and a `link`; the "
    "sentences are quoted from the documents, not written by a model. On `weak_match: "
    "true` nothing answers: no answer is written, no sentences are marked, and the "
    "passages are only the closest."
)
Tags = Annotated[
    list[str] | None,
    Field(max_length=MAX_FILTER_TAGS, description="documents with any of these tags"),
]
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


@contextmanager
def _as_tool_errors() -> Iterator[None]:
    """A refusal or a failure a person can act on becomes the tool's error message
    (the same words the REST API answers with); anything else is the SDK's to report."""
    try:
        yield
    except (AppError, NotAuthenticated, PermissionDenied) as exc:
        raise ToolError(str(exc)) from exc
    except SQLAlchemyError as exc:
        known = classify_database_error(exc)
        raise ToolError(str(known) if known else "the database failed; try again") from exc


def build_server(rt: Runtime, *, token: str | None = None) -> MCPServer[Any]:
    """The MCP server with its tools. ``token``: the caller of a stdio server; over HTTP
    each request's ``Authorization: Bearer`` token is the caller."""
    server: MCPServer[Any] = MCPServer(
        name="kb", title="Team knowledge base", instructions=INSTRUCTIONS, log_level="WARNING"
    )

    def caller(ctx: Context) -> str | None:
        headers = ctx.headers  # None on stdio
        return token if headers is None else bearer(headers.get("authorization"))

    @server.tool(name="search", description=SEARCH_DESCRIPTION, annotations=READ_ONLY)
    def search_tool(
        query: Question,
        ctx: Context,
        collection: str | None = None,
        k: SearchK = 10,
        kind: Kind = None,
        language: Language = None,
        tags: Tags = None,
    ) -> McpSearchOut:
        with _as_tool_errors():
            params = SearchQuery(
                q=query, k=k, collection=collection, kind=kind, language=language, tag=tags
            )
            return run_search(rt, token=caller(ctx), params=params)

    @server.tool(name="ask", description=ASK_DESCRIPTION, annotations=READ_ONLY)
    def ask_tool(
        question: Question, ctx: Context, collection: str | None = None, k: AskK = 5
    ) -> McpAskOut:
        with _as_tool_errors():
            params = AskQuery(q=question, k=k, collection=collection)
            return run_ask(rt, token=caller(ctx), params=params)

    return server


def check_token(rt: Runtime, token: str | None) -> User:
    """The user a stdio server acts as; raises NotAuthenticated or PermissionDenied."""
    with rt.sessions() as session:
        user = authorize(rt, session, token)
        session.expunge(user)
        return user


class BearerGate:
    """Refuses an HTTP request without a valid token of a reader (or above): 401 with
    ``WWW-Authenticate: Bearer`` (403 for a lower role), before the MCP app reads it."""

    def __init__(self, app: ASGIApp, rt: Runtime) -> None:
        self.app = app
        self.rt = rt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = Headers(scope=scope).get("authorization")
            refusal = await anyio.to_thread.run_sync(self._refusal, header)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, authorization: str | None) -> Response | None:
        try:
            with self.rt.sessions() as session:
                authorize(self.rt, session, bearer(authorization))
        except NotAuthenticated as exc:
            return JSONResponse(
                {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        except PermissionDenied as exc:
            return JSONResponse({"detail": str(exc)}, status_code=403)
        except SQLAlchemyError as exc:
            known = classify_database_error(exc)
            detail = str(known) if known else "the database failed; try again"
            return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})
        return None


def http_app(rt: Runtime, *, host: str) -> ASGIApp:
    """The streamable HTTP app at :data:`MCP_PATH`, behind the bearer gate."""
    app = build_server(rt).streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    return BearerGate(app, rt)


def serve_stdio(rt: Runtime, *, token: str) -> None:
    """Serve on stdin/stdout until the client closes them."""
    build_server(rt, token=token).run("stdio")


def serve_http(rt: Runtime, *, host: str, port: int, uvicorn_options: dict[str, Any]) -> None:
    """Serve streamable HTTP on ``host:port`` until interrupted."""
    import uvicorn

    uvicorn.run(http_app(rt, host=host), host=host, port=port, log_level="info", **uvicorn_options)
