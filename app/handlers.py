"""One place that turns errors into HTTP answers: JSON for the API, a readable page else.

Domain errors carry their status (:mod:`app.errors`); database and disk failures are
classified here so a person never sees a bare 500 when the database restarts, the pool is
exhausted or the disk is full: they get 503 (or 507) with ``Retry-After`` and a reason.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import outages
from app.auth.deps import CsrfFailed, NotAuthenticated, PermissionDenied
from app.errors import AppError, Conflict, Invalid, StorageFull, Unavailable
from app.web import api_error, is_api_path, is_htmx, render

log = logging.getLogger(__name__)

DISK_FULL = (
    "The server's disk is full, so nothing was changed; try again later or tell an administrator."
)
READ_ONLY = "The server cannot write its files (read-only or not permitted); tell an administrator."
DB_DOWN = "The database is not answering; try again in a few seconds."
BUSY = "The server is busy; try again in a few seconds."
OUT_OF_RANGE = "A value in the request cannot be stored (out of range, or not valid text)."
CONFLICT = "Someone changed this at the same time; reload the page and try again."


def is_api(request: Request) -> bool:
    return is_api_path(request.url.path)


def classify_database_error(exc: sa_exc.SQLAlchemyError) -> AppError | None:
    """The answer for a database failure, or None for a bug (left a 500)."""
    outage = outages.transient_cause(exc)
    if outage == outages.DISK_FULL:
        return StorageFull(DISK_FULL)
    if outage == outages.DATABASE_BUSY:
        return Unavailable(BUSY)
    if outage == outages.DISK_UNWRITABLE:
        return Unavailable(READ_ONLY)
    if outage == outages.DATABASE_UNAVAILABLE or isinstance(
        exc, sa_exc.OperationalError | sa_exc.InterfaceError
    ):
        return Unavailable(DB_DOWN)
    if isinstance(exc, sa_exc.DataError):  # e.g. PostgreSQL's "integer out of range"
        return Invalid(OUT_OF_RANGE)
    if isinstance(exc, sa_exc.IntegrityError):
        return Conflict(CONFLICT)
    return None


def classify_os_error(exc: OSError) -> AppError | None:
    outage = outages.transient_cause(exc)
    if outage == outages.DISK_FULL:
        return StorageFull(DISK_FULL)
    if outage == outages.DISK_UNWRITABLE:
        return Unavailable(READ_ONLY)
    return None


def answer(request: Request, error: AppError) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    if is_api(request):
        return api_error(request.url.path, str(error), error.status, headers)
    ctx = {"message_id": error.message, "params": error.params, "status": error.status}
    response = render(request, "error.html", ctx, status_code=error.status)
    if headers:
        response.headers.update(headers)
    return response


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        return answer(request, exc)

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if is_api(request):
            return api_error(request.url.path, str(exc), 401, {"WWW-Authenticate": "Bearer"})
        target = "/login?next=" + quote(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    def forbidden(request: Request, exc: Exception, message_id: str) -> Response:
        if is_api(request):
            return api_error(request.url.path, str(exc), 403)
        ctx = {"message_id": message_id, "status": 403}
        return render(request, "error.html", ctx, status_code=403)

    @app.exception_handler(PermissionDenied)
    async def permission_denied(request: Request, exc: PermissionDenied) -> Response:
        return forbidden(request, exc, "You do not have permission to do this.")

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        return forbidden(request, exc, "Your session expired; reload the page and try again.")

    @app.exception_handler(sa_exc.SQLAlchemyError)
    async def database_error(request: Request, exc: sa_exc.SQLAlchemyError) -> Response:
        error = classify_database_error(exc)
        if error is None:
            raise exc
        log.warning("%s %s: database: %s", request.method, request.url.path, exc.__class__.__name__)
        return answer(request, error)

    @app.exception_handler(OSError)
    async def os_error(request: Request, exc: OSError) -> Response:
        error = classify_os_error(exc)
        if error is None:
            raise exc
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return answer(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if is_api(request):
            return await request_validation_exception_handler(request, exc)
        message = "Some values in the request are not valid."
        return render(
            request, "error.html", {"message_id": message, "status": 422}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request) or request.url.path.startswith("/static/"):
            return api_error(request.url.path, exc.detail, exc.status_code, exc.headers)
        message = "Page not found" if exc.status_code == 404 else str(exc.detail)
        return render(
            request,
            "error.html",
            {"message_id": message, "status": exc.status_code},
            status_code=exc.status_code,
        )
