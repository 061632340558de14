"""Who calls the MCP tools: the user behind an API token, checked as the REST API checks.

The same tokens as ``Authorization: Bearer`` on the REST API (``app.auth.service``), the
same role search needs there (reader or above, ``app.auth.deps.ReaderUser``), and the same
exceptions, so a message reads alike on both.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.auth import service
from app.auth.deps import NotAuthenticated, PermissionDenied
from app.auth.models import Role, User
from app.runtime import Runtime

# What searching and asking need, as on GET /api/v1/search and /api/v1/ask.
SEARCH_ROLE = Role.READER
NO_TOKEN = "no API token: send 'Authorization: Bearer <token>' (make one with 'kb user token NAME')"


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def authorize(rt: Runtime, session: Session, token: str | None) -> User:
    """The user of ``token`` when it may search; raises NotAuthenticated (no, or an
    invalid, revoked or disabled token) or PermissionDenied (a role below reader).
    Reads only: the token's use is noted for the background writer, as the API does."""
    if not token:
        raise NotAuthenticated(NO_TOKEN)
    found = service.token_for(session, token)
    if found is None:
        raise NotAuthenticated("invalid, revoked or disabled API token")
    rt.token_usage.note(found.id, found.last_used_at)
    if not found.user.can(SEARCH_ROLE):
        raise PermissionDenied(f"this needs the {SEARCH_ROLE.value} role")
    return found.user
