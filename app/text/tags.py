"""Tags: how labels read from front matter or typed on upload are split and normalised,
in one place, so that the parser, the upload form and the tag store agree on what one
tag is."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Separators between tags written in one string: ASCII and full-width commas, the Chinese
# enumeration comma, semicolons.
TAG_SPLIT = re.compile(r"[,，、;；]")
MAX_TAGS = 50
MAX_TAG_LENGTH = 100


def tag_identity(tag: str) -> str:
    """Two spellings are the same tag when this is equal: whitespace collapsed, lower case.

    The one tag normaliser: ingest, upload, search filters and the tag list all compare
    tags by it. ``lower()`` rather than ``casefold()``, because search filters compare it
    with the database's ``lower()`` of the stored tag (PostgreSQL lowers as Python does;
    SQLite folds ASCII only, so filters also match the exact spelling), and a casefold
    key ("strasse" for "Straße") would match neither.
    """
    return " ".join(tag.split()).lower()


def normalise_tags(parts: Iterable[object]) -> list[str]:
    """Tags from already split parts: whitespace collapsed, cut to ``MAX_TAG_LENGTH``,
    unique by :func:`tag_identity` (first spelling kept), at most ``MAX_TAGS``.

    Numbers count as text; anything else (booleans, nested YAML) is skipped, because
    ``str()`` of a structure built from YAML aliases can be huge.
    """
    tags: list[str] = []
    seen: set[str] = set()
    for part in parts:
        if not isinstance(part, str | int | float) or isinstance(part, bool):
            continue
        tag = " ".join(str(part).split())[:MAX_TAG_LENGTH].strip()
        if tag and tag_identity(tag) not in seen:
            seen.add(tag_identity(tag))
            tags.append(tag)
        if len(tags) == MAX_TAGS:
            break
    return tags
