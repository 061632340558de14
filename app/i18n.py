"""Interface language: choose it per request, and translate message ids with ``_()``.

The catalog (``app/i18n_catalog.py``) is keyed by the English text, so ``_("Search")``
is "Search" in English and "搜索" in Chinese; a message without a translation shows in
English.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from functools import lru_cache
from typing import Literal, Protocol

from app.i18n_catalog import CATALOGS

Lang = Literal["en", "zh"]
SUPPORTED: tuple[Lang, ...] = ("en", "zh")
DEFAULT: Lang = "en"
COOKIE_NAME = "lang"
# Each language named in itself, for the language switcher.
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh": "中文"}
# The <html lang="..."> value: the catalog is Simplified Chinese.
HTML_LANG: dict[str, str] = {"en": "en", "zh": "zh-Hans"}

# The label of a stored value on the pages, per kind of value: the message id that
# ``_()`` translates. A value missing from its table is shown as it is, untranslated.
LABELS: dict[str, dict[str, str]] = {
    "doc_type": {
        "pdf": "PDF",
        "markdown": "Markdown",
        "docx": "Word",
        "pptx": "PowerPoint",
        "html": "HTML",
        "xlsx": "Excel",
        "csv": "CSV",
        "image": "Image (OCR)",
    },
    "language": {"zh": "Chinese", "en": "English"},
    "kind": {"section": "Section", "faq": "FAQ", "question": "Exam question"},
    # Documents' and jobs' statuses, users' roles and upload results are their own ids.
    "status": {
        s: s for s in ("queued", "parsing", "embedding", "ready", "failed", "running", "done")
    },
    "role": {r: r for r in ("reader", "editor", "admin")},
    "upload_result": {r: r for r in ("accepted", "duplicate", "rejected")},
    # A job's kind (the jobs page).
    "job_kind": {"ingest": "Ingest", "reembed": "Re-embed"},
}

_PRIMARY: dict[str, Lang] = {"en": "en", "zh": "zh"}  # primary subtag -> language
_Q_VALUE = re.compile(r"q=([01](?:\.\d{0,3})?)", re.IGNORECASE)


class Translate(Protocol):
    """``_(msgid, **kwargs)``: the translation of ``msgid``, ``str.format``-ed with kwargs."""

    def __call__(self, msgid: str, /, **kwargs: object) -> str: ...


def match_language(tag: str) -> Lang | None:
    """The supported language for a tag such as "zh-CN", "zh-Hant-TW", "en_GB" or "EN"."""
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return _PRIMARY.get(primary)


def negotiate(accept_language: str | None, cookie: str | None) -> Lang:
    """The language for a request: a supported cookie, else Accept-Language, else English."""
    if cookie:
        chosen = match_language(cookie)
        if chosen is not None:
            return chosen
    if not accept_language:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.partition(";")
        tag = tag.strip()
        if not tag:
            continue
        q = 1.0
        if params.strip():
            m = _Q_VALUE.fullmatch(params.strip().replace(" ", ""))
            if m is None:
                continue  # a malformed weight: ignore the entry, as RFC 9110 allows
            q = float(m.group(1))
        if 0 < q <= 1:
            ranked.append((-q, position, tag))
    for _, _, tag in sorted(ranked):
        if tag == "*":
            return DEFAULT
        chosen = match_language(tag)
        if chosen is not None:
            return chosen
    return DEFAULT


def translator(lang: str) -> Translate:
    """The ``_()`` function for ``lang`` (English for an unsupported language)."""
    return _translator(match_language(lang) or DEFAULT)


@lru_cache(maxsize=len(SUPPORTED))
def _translator(lang: Lang) -> Translate:
    catalog = CATALOGS.get(lang, {})

    def translate(msgid: str, /, **kwargs: object) -> str:
        text = catalog.get(msgid, msgid)
        if not kwargs:
            return text
        try:
            return text.format(**kwargs)
        except (KeyError, IndexError, ValueError):
            # A broken translation must not break the page: show the English.
            return msgid.format(**kwargs)

    return translate


def label(translate: Translate, group: str, value: object) -> str:
    """The label of ``value`` (a language code, a chunk kind, a status...) from the
    ``LABELS[group]`` table, translated; a value the table lacks, as it is."""
    msgid = LABELS[group].get(str(value))
    return str(value) if msgid is None else translate(msgid)


def reason_translator(lang: str) -> Callable[[str | None], str]:
    """Translate a stored or formatted reason (a document's failure, a job's waiting
    message), which reaches a page as finished text: the catalog's formats are matched
    against it and the values they carry are translated too where the catalog has them."""
    return _reason_translator(match_language(lang) or DEFAULT)


@lru_cache(maxsize=len(SUPPORTED))
def _reason_translator(lang: Lang) -> Callable[[str | None], str]:
    catalog = CATALOGS.get(lang, {})
    patterns = [(p, msgid) for msgid in catalog if (p := _pattern(msgid)) is not None]

    def translate(text: str | None) -> str:
        if not text:
            return ""
        if text in catalog:
            return catalog[text]
        for pattern, msgid in patterns:
            m = pattern.fullmatch(text)
            if m is not None:
                # A value may itself be a reason ("retrying: <why>"): shorter, so this ends.
                values = {k: translate(v) for k, v in m.groupdict().items()}
                try:
                    return catalog[msgid].format(**values)
                except (KeyError, IndexError, ValueError):
                    return text
        return text

    return translate


def _pattern(msgid: str) -> re.Pattern[str] | None:
    """A regex for a catalog format such as "waiting: {cause}; next try at {time} UTC",
    or None when it has no plain fields or too little fixed text to be recognised."""
    parts: list[str] = []
    fixed = 0
    names: set[str] = set()
    for literal, name, spec, conversion in string.Formatter().parse(msgid):
        parts.append(re.escape(literal))
        fixed += len(literal.strip())
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion or name in names:
            return None
        names.add(name)
        parts.append(f"(?P<{name}>.+?)")
    if not names or fixed < 6:
        return None
    return re.compile("".join(parts), re.DOTALL)
