"""Users, passwords and API tokens. The caller owns the transaction."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.models import ApiToken, Role, User
from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.db import utcnow

TOKEN_PREFIX = "kb_"
_USERNAME = re.compile(r"^[\w.@-]{1,100}$")


class UserError(ValueError):
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
        raise UserError(f"the username {username!r} is taken")
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


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)


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
    if disabled and user.role == Role.ADMIN and _admins_left(session, user) == 0:
        raise UserError("the last admin cannot be disabled")
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


def user_for_token(session: Session, plain: str) -> User | None:
    """The enabled owner of a live token (and note when it was used)."""
    token = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(plain))
    ).first()
    if token is None or token.revoked_at is not None or token.user.disabled:
        return None
    now = utcnow()
    # A write per API call would serialise busy clients on SQLite; a minute's precision is
    # enough to tell used tokens from forgotten ones.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return token.user


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
