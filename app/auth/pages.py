"""Login, logout, language switch, and the admin pages for users and API tokens."""

from __future__ import annotations

import secrets
import threading
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer

from app.auth import service
from app.auth.deps import (
    AdminUser,
    CurrentUser,
    OptionalUser,
    client_address,
    cross_site,
    end_session,
    start_session,
)
from app.auth.keys import secret_key
from app.auth.models import Role
from app.auth.passwords import WeakPassword
from app.auth.ratelimit import LoginLimiter
from app.deps import IdPath, SessionDep, runtime_of
from app.errors import AppError
from app.i18n import SUPPORTED
from app.web import LANG_COOKIE, render

router = APIRouter(include_in_schema=False)

# A browser that logged in as a user before skips that user's backoff (app/auth/ratelimit.py).
DEVICE_COOKIE = "kb_device"
DEVICE_USERS = 5  # usernames one browser is remembered for
_guard_lock = threading.Lock()


class _LoginGuard:
    """One app's login limiter and the signer of its known-device cookies."""

    def __init__(self, request: Request) -> None:
        settings = runtime_of(request).settings
        self.limiter = LoginLimiter()
        self.signer = URLSafeSerializer(secret_key(settings), salt="kb-known-device")
        self.secure = settings.cookie_secure


def _guard(request: Request) -> _LoginGuard:
    state = request.app.state
    with _guard_lock:
        guard = getattr(state, "login_guard", None)
        if guard is None:
            guard = state.login_guard = _LoginGuard(request)
    return guard


def _known_device(guard: _LoginGuard, request: Request) -> tuple[str, list[str]] | None:
    """The (id, usernames) of this browser's valid known-device cookie, if it has one."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        data = guard.signer.loads(raw)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    users = data.get("users")
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        return None
    return data["id"], users


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a login to another host."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


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
    """Check the password (rate-limited: app/auth/ratelimit.py) and start a session."""
    # The login form has no session to carry a CSRF token yet: a form posted by another
    # site (login CSRF: logging the victim into the attacker's account) is refused by its
    # Origin; SameSite=Lax cookies and a fresh session on success guard the rest.
    if cross_site(request):
        ctx: dict[str, object] = {
            "next": _safe_next(next),
            "error": ("This form was sent from another site.", {}),
        }
        return render(request, "login.html", ctx, status_code=403)
    guard, address = _guard(request), client_address(request)
    known = _known_device(guard, request)
    key = username.strip().casefold()
    device = known[0] if known is not None and key in known[1] else None
    wait = guard.limiter.retry_after(address, username, device=device)
    if wait:
        ctx = {
            "next": _safe_next(next),
            "error": ("Too many attempts; try again in {seconds} seconds.", {"seconds": wait}),
        }
        response = render(request, "login.html", ctx, status_code=429)
        response.headers["Retry-After"] = str(wait)
        return response
    user = service.authenticate(session, username, password)
    if user is None:
        guard.limiter.failed(address, username, device=device)
        ctx = {"next": _safe_next(next), "error": ("Invalid username or password.", {})}
        return render(request, "login.html", ctx, status_code=401)
    start_session(request, session, user)
    session.commit()
    guard.limiter.succeeded(address, username, device=device)
    response = RedirectResponse(_safe_next(next), status_code=303)
    device_id, users = known if known is not None else (secrets.token_urlsafe(16), [])
    users = [key, *(u for u in users if u != key)][:DEVICE_USERS]
    response.set_cookie(
        DEVICE_COOKIE,
        guard.signer.dumps({"id": device_id, "users": users}),
        max_age=365 * 24 * 3600,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=guard.secure,
    )
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, _user: CurrentUser) -> Response:
    """End this session on the server (its cookie stops working, even a copy of it)."""
    end_session(request, session)
    session.commit()
    return RedirectResponse("/login", status_code=303)


@router.post("/sessions/end-all")
def end_all_sessions(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Log out everywhere: every session of this user ends, this one included; API tokens
    stay (they are revoked one by one on this page)."""
    service.end_sessions(session, user)
    session.commit()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.post("/sessions/{session_id}/end")
def end_one_session(
    request: Request, session: SessionDep, user: CurrentUser, session_id: IdPath
) -> Response:
    try:
        service.end_session_by_id(session, session_id, by=user)
    except service.UserError:
        return _tokens_page(request, session, user)
    session.commit()
    if session_id == getattr(request.state, "session_id", None):
        request.session.clear()
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/tokens", status_code=303)


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/") -> Response:
    """Remember the chosen interface language in a cookie."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if code in SUPPORTED:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="lax")
    return response


# --- admin: users -------------------------------------------------------------------


def _reason(exc: Exception) -> str | AppError:
    return exc if isinstance(exc, AppError) else str(exc)


def _users_page(
    request: Request,
    session: SessionDep,
    *,
    error: str | AppError | None = None,
    status: int = 200,
) -> Response:
    """The users page; ``error``: a reason, or an AppError the page translates with its
    parameters (a username in it is shown as it is, never looked up in the catalog)."""
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
        return _users_page(request, session, error=_reason(exc), status=400)
    session.commit()
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}")
def update_user(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    user_id: IdPath,
    role: Annotated[Role | None, Form()] = None,
    disabled: Annotated[Literal["true", "false"] | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
) -> Response:
    """Change a user's role, enable or disable them, or set a new password.

    Disabling ends the user's sessions and revokes their API tokens; enabling restores
    neither. A new password ends their sessions (an admin's own current one excepted)."""
    user = service.get_user(session, user_id)
    if user is None:
        return _users_page(request, session, error="no such user", status=404)
    try:
        if role is not None:
            service.set_role(session, user, role)
        if disabled is not None:
            service.set_disabled(session, user, disabled == "true")
        if password:
            own = getattr(request.state, "session_id", None) if user.id == admin.id else None
            service.set_password(session, user, password, keep_session=own)
    except (service.UserError, WeakPassword) as exc:
        session.rollback()
        return _users_page(request, session, error=_reason(exc), status=400)
    session.commit()
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/logout")
def logout_user(
    request: Request, session: SessionDep, _admin: AdminUser, user_id: IdPath
) -> Response:
    """Log a user out everywhere (their API tokens stay; revoke them on the tokens page)."""
    user = service.get_user(session, user_id)
    if user is None:
        return _users_page(request, session, error="no such user", status=404)
    service.end_sessions(session, user)
    session.commit()
    return RedirectResponse("/admin/users", status_code=303)


# --- API tokens (every user manages their own; admins see all) ------------------------


def _tokens_page(
    request: Request, session: SessionDep, user: CurrentUser, *, new_token: str | None = None
) -> Response:
    tokens = service.list_tokens(session, user=None if user.can(Role.ADMIN) else user)
    ctx = {
        "tokens": tokens,
        "new_token": new_token,
        "sessions": service.list_sessions(session, user),
        "this_session": getattr(request.state, "session_id", None),
    }
    return render(request, "admin/tokens.html", ctx)


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
    request: Request, session: SessionDep, user: CurrentUser, token_id: IdPath
) -> Response:
    try:
        service.revoke_token(session, token_id, by=user)
    except service.UserError:
        return _tokens_page(request, session, user)
    session.commit()
    return RedirectResponse("/tokens", status_code=303)
