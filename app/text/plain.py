"""A passage as a person reads it: Markdown source -> plain text, for search hits.

A hit shows a chunk's text, and a Markdown chunk's text is its source (``**-A**``,
``\\[2\\]``, ``[text](url)``, ``> ``). :func:`markdown_plain` walks markdown-it's tokens
instead of stripping characters with regexes, so what is markup goes and what is text
stays: emphasis and strike markers dropped, code spans as their content, links as their
text, images as their alt text, backslash escapes and entities resolved, HTML tags
dropped (their text kept), headings without their ``#``s, list items as "• " or "1. ",
table rows as cells joined by " | ". The result is text, not HTML: pages escape it.

Only Markdown documents are rendered (:func:`plain_passage`); a PDF's text is already
plain, and a line of it that starts with "1." or "*" must stay as it is.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

from app.text.filetypes import MARKUP_DOC_TYPES

BULLET = "• "
_INDENT = "  "
_CELL_SEP = " | "
# An HTML comment, or a tag (opening, closing, self-closing, declaration).
_HTML_TAG = re.compile(r"<!--.*?-->|<[!?/]?[A-Za-z][^<>]*>", re.DOTALL)
_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # What the ingest parser and the document page see (CommonMark, tables, front
    # matter, strikethrough), plus definition lists ("term\n: definition", as man pages
    # converted to Markdown write options). html=True so that tags are recognised as tags
    # and dropped, not kept as text: nothing here is ever rendered as HTML.
    return (
        MarkdownIt("commonmark", {"html": True})
        .enable(["table", "strikethrough"])
        .use(front_matter_plugin)
        .use(deflist_plugin)
    )


def plain_passage(text: str, doc_type: str) -> str:
    """The readable text of a chunk: Markdown rendered as plain text, anything else as is."""
    return markdown_plain(text) if doc_type in MARKUP_DOC_TYPES else text


# Search renders each hit's passage for its snippet: the passages people find again and
# again are parsed once (a parse is ~0.5 ms, ten hits per search).
@lru_cache(maxsize=4096)
def markdown_plain(source: str) -> str:
    """Plain text of Markdown ``source``: blocks on their own lines, paragraphs apart."""
    return _Writer().run(_parser().parse(source.removeprefix("\ufeff")))


class _Writer:
    """Walks block tokens, writing each block's text with its list marker or indent."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.lists: list[list[int] | None] = []  # per open list: [next number] or None (bullet)
        self.marker = ""  # the list marker the next line of text starts with
        self.nested = 0  # open blockquotes, lists, definition lists and tables
        self.row: list[str] | None = None  # the cells of the table row being read
        self.fresh = False  # a top-level list, quote or table opened: set it apart

    def run(self, tokens: list[Token]) -> str:
        for tok in tokens:
            self.token(tok)
        return _BLANK_LINES.sub("\n\n", "".join(self.blocks)).strip()

    def token(self, tok: Token) -> None:
        kind = tok.type
        if kind == "bullet_list_open":
            self.lists.append(None)
        elif kind == "ordered_list_open":
            start = tok.attrGet("start")
            self.lists.append([int(start) if isinstance(start, int | str) else 1])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
        elif kind == "list_item_open":
            counter = self.lists[-1] if self.lists else None
            if counter is None:
                self.marker = BULLET
            else:
                number = tok.info if tok.info.isdigit() else str(counter[0])
                self.marker = f"{number}{tok.markup or '.'} "
                counter[0] = int(number) + 1
        elif kind == "tr_open":
            self.row = []
        elif kind == "tr_close":
            if self.row is not None and any(self.row):
                self.write(_CELL_SEP.join(self.row))
            self.row = None
        elif kind == "inline":
            text = inline_plain(tok)
            if self.row is not None:
                self.row.append(text.strip())
            else:
                self.write(text)
        elif kind in ("fence", "code_block"):
            self.write(tok.content.rstrip("\n"))
        elif kind == "html_block":
            self.write(strip_tags(tok.content).strip("\n"))
        if kind.endswith("_open") and kind.split("_")[0] in _NESTING:
            self.fresh = self.fresh or self.nested == 0
            self.nested += 1
        elif kind.endswith("_close") and kind.split("_")[0] in _NESTING:
            self.nested -= 1
        # hr, front matter, headings' and paragraphs' own markers: nothing to write.

    def write(self, text: str) -> None:
        if not text.strip():
            return
        depth = max(0, len(self.lists) - 1)
        indent = _INDENT * len(self.lists)
        first, *rest = text.split("\n")
        lines = [_INDENT * depth + self.marker + first if self.marker else indent + first]
        lines += [indent + line if line.strip() else "" for line in rest]
        self.marker = ""
        if self.blocks:
            # Items of lists and rows of tables follow each other; paragraphs stand apart.
            self.blocks.append("\n" if self.nested and not self.fresh else "\n\n")
        self.fresh = False
        self.blocks.append("\n".join(lines))


_NESTING = frozenset({"blockquote", "bullet", "ordered", "table", "dl"})


def inline_plain(inline: Token) -> str:
    """The text of an inline token: markup dropped, code spans, link texts and alt kept."""
    parts: list[str] = []
    for child in inline.children or []:
        kind = child.type
        if kind in ("text", "text_special", "code_inline"):
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "image":
            parts.append(inline_plain(child))
        elif kind == "html_inline" and _BREAK_TAG.fullmatch(child.content.strip()):
            parts.append("\n")
        # em/strong/s/link open and close, other html_inline: markup only.
    return "".join(parts)


def strip_tags(source: str) -> str:
    """The text of an HTML fragment: tags and comments dropped, entities resolved."""
    return html.unescape(_HTML_TAG.sub("", _BREAK_TAG.sub("\n", source)))
