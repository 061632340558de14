"""Markdown -> safe HTML for the document page, with an anchor on every heading.

Two layers keep a document's author from running script in a reader's browser:
markdown-it with raw HTML disabled (``<script>`` in a document stays text) and its
link validation (no ``javascript:``/``vbscript:``/``file:`` links, only ``data:`` images),
then nh3 (ammonia) on the result, allowing only what markdown-it itself produces.

The document page keeps what this renders, by content hash: a change to the HTML it
produces needs ``app.documents.rendered.VERSION`` bumped, or old pages stay cached.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from mdit_py_plugins.front_matter import front_matter_plugin

from app.text.inline import inline_text


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading of a rendered document: its level (1-6), plain text and element id."""

    level: int
    text: str
    anchor: str


_ALLOWED_TAGS = frozenset(
    {
        "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
        "img", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th",
        "thead", "tr", "ul",
    }
)  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    **{f"h{n}": {"id"} for n in range(1, 7)},
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "ol": {"start"},
    "th": {"style"},  # text-align of a table column, the only style property kept
    "td": {"style"},
}
_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_CODE_CLASS = re.compile(r"language-[\w+#.-]{1,40}")
_SLUG_JUNK = re.compile(r"[\W_]+")
_SLUG_MAX = 48
_REFERENCE_LINE = re.compile(r"^ {0,3}\[[^\n]*\]:", re.MULTILINE)
_MAX_REFERENCE_SOURCE = 1 << 20


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # The tokens the ingest parser sees (CommonMark + tables + front matter), so heading
    # texts here equal the chunks' heading paths; html=False renders raw HTML as text.
    return (
        MarkdownIt("commonmark", {"html": False})
        .enable(["table", "strikethrough"])
        .use(front_matter_plugin)
    )


def render_markdown(
    source: str,
    *,
    anchor_prefix: str = "sec",
    references: Mapping[str, object] | None = None,
) -> tuple[Markup, list[Heading]]:
    """Render Markdown to sanitised HTML; every heading gets ``id="sec-<n>-<slug>"``.

    A part of a longer document (see ``app.text.parts``) gets its own ``anchor_prefix``,
    and the ``references`` (from :func:`link_references`) of the whole document, so that
    ``[text][label]`` links work whichever part defines the label.
    """
    md = _parser()
    env: dict[str, object] = {"references": dict(references)} if references else {}
    tokens = md.parse(source.removeprefix("\ufeff"), env)
    headings: list[Heading] = []
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open":
            continue
        text = inline_text(tokens[i + 1]).strip()
        slug = _slug(text)
        n = len(headings) + 1
        anchor = f"{anchor_prefix}-{n}-{slug}" if slug else f"{anchor_prefix}-{n}"
        tok.attrSet("id", anchor)
        headings.append(Heading(level=int(tok.tag[1:]), text=text, anchor=anchor))
    # The front_matter token renders to nothing: metadata is not content.
    html = md.renderer.render(tokens, md.options, env)
    return Markup(_sanitise(html)), headings


def link_references(text: str, *, max_chars: int = _MAX_REFERENCE_SOURCE) -> dict[str, object]:
    """The link reference definitions (``[label]: url "title"``) of a whole document.

    Only the lines that can start a definition (and the two after each, where a URL or a
    title may continue it) are parsed, at most ``max_chars`` of them.
    """
    pieces: list[str] = []
    size, covered = 0, 0
    for m in _REFERENCE_LINE.finditer(text):
        start = max(m.start(), covered)
        end = start
        for _ in range(3):
            nl = text.find("\n", end)
            end = len(text) if nl < 0 else nl + 1
        covered = end
        if start >= end:
            continue
        size += end - start
        if size > max_chars:
            break
        pieces.append(text[start:end])
    if not pieces:
        return {}
    env: dict[str, object] = {}
    _parser().parse("\n".join(pieces), env)
    references = env.get("references")
    return dict(references) if isinstance(references, dict) else {}


def _sanitise(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(_ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in _ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(_URL_SCHEMES),
        attribute_filter=_filter_attribute,
        filter_style_properties={"text-align"},
        link_rel="noopener noreferrer",
    )


def _filter_attribute(tag: str, attr: str, value: str) -> str | None:
    """Drop attribute values markdown-it would not have produced (or that are unsafe)."""
    if tag == "img" and attr == "src":
        # http(s) or relative only: no data:, no mailto: (url_schemes allows it for links).
        scheme = urlsplit(value.strip()).scheme.lower()
        return value if scheme in ("", "http", "https") else None
    if tag == "code" and attr == "class":
        return value if _CODE_CLASS.fullmatch(value) else None
    if tag == "ol" and attr == "start":
        return value if value.isdigit() else None
    return value


def _slug(text: str) -> str:
    """Lower-case words (CJK kept) joined by "-", at most ``_SLUG_MAX`` characters."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    slug = _SLUG_JUNK.sub("-", folded).strip("-")
    return slug[:_SLUG_MAX].rstrip("-")
