"""Login, logout, language switch, and the admin pages for users and API tokens."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.auth import service
from app.auth.deps import (
    AdminUser,
    CurrentUser,
    OptionalUser,
    end_session,
    start_session,
)
from app.auth.models import Role
from app.auth.passwords import WeakPassword
from app.auth.ratelimit import LoginLimiter
from app.deps import SessionDep
from app.i18n import SUPPORTED
from app.web import LANG_COOKIE, render

router = APIRouter(include_in_schema=False)
limiter = LoginLimiter()


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a login to another host."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/login")
def login_form(request: Request, user: OptionalUser, next: str = "/") -> Response:
    if user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the password (rate-limited per address and username) and start a session."""
    # The login form has no session to carry a CSRF token yet; SameSite=Lax cookies and
    # a fresh session id on success (start_session) guard it instead.
    address = _client(request)
    wait = limiter.retry_after(address, username)
    if wait:
        ctx = {
            "next": _safe_next(next),
            "error": ("Too many attempts; try again in {seconds} seconds.", {"seconds": wait}),
        }
        return render(request, "login.html", ctx, status_code=429)
    user = service.authenticate(session, username, password)
    if user is None:
        limiter.failed(address, username)
        ctx = {"next": _safe_next(next), "error": ("Invalid username or password.", {})}
        return render(request, "login.html", ctx, status_code=401)
    session.commit()
    limiter.succeeded(address, username)
    start_session(request, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, _user: CurrentUser) -> Response:
    end_session(request)
    return RedirectResponse("/login", status_code=303)


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/") -> Response:
    """Remember the chosen interface language in a cookie."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if code in SUPPORTED:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="lax")
    return response


# --- admin: users -------------------------------------------------------------------


def _users_page(
    request: Request, session: SessionDep, *, error: str | None = None, status: int = 200
) -> Response:
    ctx = {"users": service.list_users(session), "roles": list(Role), "error": error}
    return render(request, "admin/users.html", ctx, status_code=status)


@router.get("/admin/users")
def users_page(request: Request, session: SessionDep, _admin: AdminUser) -> Response:
    return _users_page(request, session)


@router.post("/admin/users")
def create_user(
    request: Request,
    session: SessionDep,
    _admin: AdminUser,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[Role, Form()],
) -> Response:
    try:
        service.create_user(session, username=username, password=password, role=role)
    except (service.UserError, WeakPassword) as exc:
        session.rollback()
        return _users_page(request, session, error=str(exc), status=400)
    session.commit()
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}")
def update_user(
    request: Request,
    session: SessionDep,
    _admin: AdminUser,
    user_id: int,
    role: Annotated[Role | None, Form()] = None,
    disabled: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
) -> Response:
    """Change a user's role, enable or disable them, or set a new password."""
    user = service.get_user(session, user_id)
    if user is None:
        return _users_page(request, session, error="no such user", status=404)
    try:
        if role is not None:
            service.set_role(session, user, role)
        if disabled is not None:
            service.set_disabled(session, user, disabled == "true")
        if password:
            service.set_password(session, user, password)
    except (service.UserError, WeakPassword) as exc:
        session.rollback()
        return _users_page(request, session, error=str(exc), status=400)
    session.commit()
    return RedirectResponse("/admin/users", status_code=303)


# --- API tokens (every user manages their own; admins see all) ------------------------


def _tokens_page(
    request: Request, session: SessionDep, user: CurrentUser, *, new_token: str | None = None
) -> Response:
    tokens = service.list_tokens(session, user=None if user.can(Role.ADMIN) else user)
    return render(request, "admin/tokens.html", {"tokens": tokens, "new_token": new_token})


@router.get("/tokens")
def tokens_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _tokens_page(request, session, user)


@router.post("/tokens")
def create_token(
    request: Request, session: SessionDep, user: CurrentUser, name: Annotated[str, Form()]
) -> Response:
    """Create a token for the API; its value is shown on this one page only."""
    _token, plain = service.create_token(session, user, name)
    session.commit()
    return _tokens_page(request, session, user, new_token=plain)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, session: SessionDep, user: CurrentUser, token_id: int
) -> Response:
    try:
        service.revoke_token(session, token_id, by=user)
    except service.UserError:
        return _tokens_page(request, session, user)
    session.commit()
    return RedirectResponse("/tokens", status_code=303)
