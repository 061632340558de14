"""Domain errors that carry their HTTP answer, mapped once in the app factory.

A service raises ``SomethingNotFound("no document with id {id}", id=5)``; the handler in
``app/main.py`` answers 404 with the formatted text as JSON for the API, or a page that
shows the message translated (``_(message, **params)``), so no route catches errors only
to turn them into statuses, and every reason a person reads exists in both languages.
"""

from __future__ import annotations

from typing import ClassVar


class AppError(Exception):
    """An error a person can act on; ``status`` is the HTTP status it is answered with."""

    status: ClassVar[int] = 400
    # Seconds a client should wait before trying again (503s); None: no Retry-After.
    retry_after: ClassVar[int | None] = None

    def __init__(self, message: str, /, **params: object) -> None:
        self.message = message
        self.params = params
        super().__init__(message.format(**params) if params else message)


class NotFound(AppError):
    status = 404


class Forbidden(AppError):
    """Signed in, and allowed to see the thing, but not to do this with it."""

    status = 403


class Conflict(AppError):
    status = 409


class Invalid(AppError):
    status = 422


class Unavailable(AppError):
    """A part the request needs is down or busy (the database, the embedding server)."""

    status = 503
    retry_after = 5


class StorageFull(AppError):
    """The server's disk is full: nothing was stored, retrying later may work."""

    status = 507
    retry_after = 60
