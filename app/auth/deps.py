"""Who is asking: a Bearer API token or a session cookie; role checks; CSRF.

Every route declares the role it needs with one of the aliases at the bottom, so the
check happens on the server for every request, pages and API alike.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from app.auth import service
from app.auth.models import Role, User
from app.deps import SessionDep

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class NotAuthenticated(Exception):
    """No valid session or token: pages redirect to the login form, the API answers 401."""


class PermissionDenied(Exception):
    """Authenticated, but the role does not allow this (403)."""


class CsrfFailed(Exception):
    """A state-changing browser request without the session's CSRF token (403)."""


def _fingerprint(user: User) -> str:
    # Changing the password changes this, which ends every other session of the user.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def start_session(request: Request, user: User) -> None:
    """Log ``user`` in: a fresh session (new CSRF token) against session fixation."""
    request.session.clear()
    request.session.update(uid=user.id, pwv=_fingerprint(user), csrf=secrets.token_urlsafe(32))


def end_session(request: Request) -> None:
    request.session.clear()


async def verify_csrf(request: Request) -> None:
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise CsrfFailed("the form is missing its security token; reload the page and try again")


def _session_user(request: Request, session: SessionDep) -> User | None:
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        return None
    user = service.get_user(session, uid)
    if user is None or user.disabled or request.session.get("pwv") != _fingerprint(user):
        request.session.clear()
        return None
    return user


async def current_user(request: Request, session: SessionDep) -> User:
    """The authenticated user; raises NotAuthenticated."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        user = service.user_for_token(session, auth[7:].strip())
        if user is None:
            raise NotAuthenticated("invalid, revoked or disabled API token")
        if session.dirty:
            session.commit()  # records last_used_at (at most once a minute)
        # No CSRF check: a browser never adds an Authorization header on its own.
        request.state.user = user
        return user
    user = _session_user(request, session)
    if user is None:
        raise NotAuthenticated("log in first, or send 'Authorization: Bearer <token>'")
    if request.method not in SAFE_METHODS:
        await verify_csrf(request)
    request.state.user = user
    return user


def optional_user(request: Request, session: SessionDep) -> User | None:
    """The logged-in user of a page that also works without one (the login page)."""
    user = _session_user(request, session)
    request.state.user = user
    return user


def require(role: Role) -> Callable[..., User]:
    def dependency(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.can(role):
            raise PermissionDenied(f"this needs the {role.value} role")
        return user

    return dependency


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
ReaderUser = Annotated[User, Depends(require(Role.READER))]
EditorUser = Annotated[User, Depends(require(Role.EDITOR))]
AdminUser = Annotated[User, Depends(require(Role.ADMIN))]
