"""``GET /v1/models`` and ``POST /v1/chat/completions``: the knowledge base as an
OpenAI-compatible server for Open WebUI, LibreChat or any OpenAI client (base URL
``http://host:8000/v1``, API key: a kb API token of a reader or above).

Every refusal and failure is answered in OpenAI's error shape,
``{"error": {"message", "type", "param", "code"}}``, by :class:`OpenAIRoute`, so the
clients show the reason (the app's own handlers answer pages and ``/api/`` routes).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.auth.deps import NotAuthenticated, PermissionDenied, authenticated_user
from app.auth.models import Role, User
from app.collections.access import access_for
from app.deps import RuntimeDep, SessionDep
from app.errors import AppError
from app.handlers import classify_database_error, classify_os_error
from app.text.tokens import count_tokens

from . import service
from .service import ChatRequest, ModelNotFound, Piece

NO_TOKEN = "send a kb API token as 'Authorization: Bearer <token>' (the API key)"


def error_body(
    message: str, *, kind: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(exc: Exception) -> Response | None:
    """OpenAI's error answer for ``exc``, or None for a bug (left to the app: a 500)."""
    if isinstance(exc, NotAuthenticated):
        body = error_body(str(exc), kind="invalid_request_error", code="invalid_api_key")
        return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, PermissionDenied):
        body = error_body(str(exc), kind="invalid_request_error", code="permission_denied")
        return JSONResponse(body, status_code=403)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        message = str(first.get("msg", "invalid request"))
        param = ".".join(loc) or None
        text = f"{param}: {message}" if param else message
        return JSONResponse(
            error_body(text, kind="invalid_request_error", code="invalid_value", param=param),
            status_code=400,
        )
    if isinstance(exc, StarletteHTTPException):
        kind = "server_error" if exc.status_code >= 500 else "invalid_request_error"
        return JSONResponse(
            error_body(str(exc.detail), kind=kind), status_code=exc.status_code, headers=exc.headers
        )
    known: AppError | None
    if isinstance(exc, sa_exc.SQLAlchemyError):
        known = classify_database_error(exc)
    elif isinstance(exc, OSError):
        known = classify_os_error(exc)
    else:
        known = exc if isinstance(exc, AppError) else None
    if known is None:
        return None
    status = 400 if known.status == 422 else known.status  # OpenAI says 400 to bad values
    code = "model_not_found" if isinstance(known, ModelNotFound) else None
    kind = "server_error" if status >= 500 else "invalid_request_error"
    headers = {"Retry-After": str(known.retry_after)} if known.retry_after else None
    return JSONResponse(
        error_body(str(known), kind=kind, code=code), status_code=status, headers=headers
    )


class OpenAIRoute(APIRoute):
    """A route whose refusals and failures (authentication, validation, domain errors,
    database outages) are answered in OpenAI's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                response = error_response(exc)
                if response is None:
                    raise
                return response

        return route_handler


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)


def api_token_reader(request: Request, rt: RuntimeDep, session: SessionDep) -> User:
    """The reader (or above) behind the request's bearer API token; a session cookie is
    not enough (a chat client always sends its API key)."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() != "bearer " or not auth[7:].strip():
        raise NotAuthenticated(NO_TOKEN)
    user = authenticated_user(request, rt, session)
    if not user.can(Role.READER):
        raise PermissionDenied(f"this needs the {Role.READER.value} role")
    return user


TokenReader = Annotated[User, Depends(api_token_reader)]


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class MessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChoiceOut(BaseModel):
    index: int = 0
    message: MessageOut
    finish_reason: str
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: Usage


@router.get("/models", response_model=ModelList)
def models(session: SessionDep, user: TokenReader) -> ModelList:
    """Each collection you may read as a model, ``kb:<collection>``."""
    access = access_for(session, user)
    return ModelList.model_validate({"data": service.list_models(session, access)})


def usage(question: str, content: str) -> Usage:
    """Token counts, estimated (the question; the content sent back)."""
    asked, said = count_tokens(question), count_tokens(content)
    return Usage(prompt_tokens=asked, completion_tokens=said, total_tokens=asked + said)


def sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def chunks(
    content: Iterator[Piece], *, cid: str, model: str, question: str, include_usage: bool
) -> Iterator[str]:
    """``chat.completion.chunk`` events, then ``data: [DONE]``."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"id": cid, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [choice]}  # fmt: skip

    yield sse(chunk({"role": "assistant", "content": ""}))
    said: list[str] = []
    for piece in content:
        if piece.text:
            said.append(piece.text)
            yield sse(chunk({"content": piece.text}))
        if piece.finish:
            yield sse(chunk({}, piece.finish))
    if include_usage:
        tokens = usage(question, "".join(said)).model_dump()
        yield sse({"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "choices": [], "usage": tokens})  # fmt: skip
    yield sse("[DONE]")


@router.post(
    "/chat/completions",
    response_model=CompletionOut,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def chat_completions(
    request: Request, rt: RuntimeDep, session: SessionDep, user: TokenReader, body: ChatRequest
) -> Any:
    """The grounded answer to the last user message, from the collection named by
    ``model``, with its sources appended (see :mod:`app.openai_facade.service`)."""
    base_url = str(request.base_url)
    prepared = service.prepare(
        rt, request=body, session=session, base_url=base_url, access=access_for(session, user)
    )
    session.close()  # the answer needs no database: give the connection back now
    content = service.pieces(prepared, base_url=base_url)
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(
            chunks(
                content,
                cid=cid,
                model=body.model,
                question=prepared.question,
                include_usage=include_usage,
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    parts = list(content)
    text = "".join(p.text for p in parts).strip()
    finish = next((p.finish for p in reversed(parts) if p.finish), "stop")
    return CompletionOut(
        id=cid,
        created=int(time.time()),
        model=body.model,
        choices=[ChoiceOut(message=MessageOut(content=text), finish_reason=finish)],
        usage=usage(prepared.question, text),
    )
