"""Password hashing with Argon2id (argon2-cffi, the reference implementation's binding)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified when the username does not exist, so a wrong name costs as long as a wrong
# password and response times do not reveal which accounts exist.
_DUMMY = _hasher.hash("not a real password")

MIN_LENGTH = 8


class WeakPassword(ValueError):
    """The password is too short."""


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
