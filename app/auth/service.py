"""Users, passwords and API tokens. The caller owns the transaction."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from app.auth.models import ApiToken, Role, User, UserSession
from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.db import utcnow
from app.errors import AppError

TOKEN_PREFIX = "kb_"
_USERNAME = re.compile(r"^[\w.@-]{1,100}$")


class UserError(AppError, ValueError):
    """A user operation cannot be done; the message is for a person."""


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username.strip())).first()


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def create_user(session: Session, *, username: str, password: str, role: Role) -> User:
    """A new enabled user (flushed)."""
    username = username.strip()
    if not _USERNAME.match(username):
        raise UserError("a username is 1–100 letters, digits, '.', '_', '-' or '@'")
    if by_username(session, username) is not None:
        raise UserError("the username {username!r} is taken", username=username)
    user = User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The enabled user with these credentials, or None (same cost either way)."""
    user = by_username(session, username)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def set_password(
    session: Session, user: User, password: str, *, keep_session: int | None = None
) -> None:
    """A new password ends every session of the user (but ``keep_session``, the one that
    set it); API tokens stay: they are separate credentials, listed and revoked on their own."""
    user.password_hash = hash_password(password)
    end_sessions(session, user, keep=keep_session)


def _admins_left(session: Session, excluding: User) -> int:
    return int(
        session.scalar(
            select(func.count(User.id)).where(
                User.role == Role.ADMIN, User.disabled.is_(False), User.id != excluding.id
            )
        )
        or 0
    )


def set_role(session: Session, user: User, role: Role) -> None:
    if user.role == Role.ADMIN and role != Role.ADMIN and _admins_left(session, user) == 0:
        raise UserError("the last admin cannot lose the admin role")
    user.role = role


def set_disabled(session: Session, user: User, disabled: bool) -> None:
    """Disabling ends the user's sessions and revokes their API tokens; enabling restores
    neither: the user logs in again and makes new tokens."""
    if disabled and user.role == Role.ADMIN and _admins_left(session, user) == 0:
        raise UserError("the last admin cannot be disabled")
    if disabled and not user.disabled:
        end_sessions(session, user)
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    user.disabled = disabled


def ensure_first_admin(session: Session, password: str | None) -> str | None:
    """Create the user ``admin`` when there are no users yet.

    Uses ``password`` when given; otherwise generates one and returns it, so the caller
    can print it once. Returns None when nothing was created or nothing is to be shown.
    """
    if session.scalar(select(func.count(User.id))):
        return None
    generated = password is None
    pw = password if password is not None else secrets.token_urlsafe(12)
    create_user(session, username="admin", password=pw, role=Role.ADMIN)
    return pw if generated else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new API token for ``user``; the plain token is returned once and never stored."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name.strip()[:200] or "token",
        token_hash=_token_hash(plain),
        prefix=plain[:10],
    )
    session.add(token)
    session.flush()
    return token, plain


# Built once: building the statement (the eager-load option above all) cost more CPU than
# running it, on every API request.
_TOKEN = (
    select(ApiToken)
    .options(joinedload(ApiToken.user))  # one query, not two, per API request
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def token_for(session: Session, plain: str) -> ApiToken | None:
    """The live token ``plain`` of an enabled user, or None. Reads only."""
    token = session.scalars(_TOKEN, {"token_hash": _token_hash(plain)}).first()
    if token is None or token.revoked_at is not None or token.user.disabled:
        return None
    return token


def record_token_use(session: Session, uses: dict[int, datetime]) -> None:
    """Note when tokens were last used (token id -> time); never moves a time back."""
    for token_id, when in uses.items():
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id)
            .where(or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < when))
            .values(last_used_at=when)
        )


def list_tokens(session: Session, *, user: User | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id.desc())
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))


def revoke_token(session: Session, token_id: int, *, by: User) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != by.id and not by.can(Role.ADMIN)):
        raise UserError("no such token")
    if token.revoked_at is None:
        token.revoked_at = utcnow()


# --- browser sessions ------------------------------------------------------------------


def _session_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start_session(
    session: Session, user: User, *, lifetime_s: int, address: str = "", user_agent: str = ""
) -> tuple[UserSession, str]:
    """A new session row (flushed) and its secret for the cookie, which is never stored.

    Expired rows of every user are swept here: a login is a write anyway."""
    now = utcnow()
    session.execute(delete(UserSession).where(UserSession.expires_at <= now))
    secret = secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user.id,
        secret_hash=_session_hash(secret),
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime_s),
        address=address[:100],
        user_agent=user_agent[:300],
    )
    session.add(row)
    session.flush()
    return row, secret


def session_for(session: Session, secret: str) -> UserSession | None:
    """The live session of an enabled user behind a cookie's secret, or None. Reads only."""
    row = session.scalars(
        select(UserSession)
        .options(joinedload(UserSession.user))
        .where(UserSession.secret_hash == _session_hash(secret))
    ).first()
    if row is None or row.expires_at <= utcnow() or row.user.disabled:
        return None
    return row


def end_session(session: Session, secret: str) -> None:
    session.execute(delete(UserSession).where(UserSession.secret_hash == _session_hash(secret)))


def end_session_by_id(session: Session, session_id: int, *, by: User) -> None:
    """End one of ``by``'s own sessions (admins: anyone's)."""
    row = session.get(UserSession, session_id)
    if row is None or (row.user_id != by.id and not by.can(Role.ADMIN)):
        raise UserError("no such session")
    session.delete(row)


def end_sessions(session: Session, user: User, *, keep: int | None = None) -> int:
    """End every session of ``user`` (but the one with id ``keep``); returns how many."""
    query = delete(UserSession).where(UserSession.user_id == user.id)
    if keep is not None:
        query = query.where(UserSession.id != keep)
    return int(getattr(session.execute(query), "rowcount", 0) or 0)


def list_sessions(session: Session, user: User) -> list[UserSession]:
    """The user's live sessions, newest first."""
    return list(
        session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user.id, UserSession.expires_at > utcnow())
            .order_by(UserSession.created_at.desc(), UserSession.id.desc())
        )
    )
