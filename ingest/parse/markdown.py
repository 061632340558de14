"""Markdown (CommonMark) and plain text -> blocks with heading levels.

Block text is the *source* of each top-level block (sliced by ``token.map`` line
ranges), so code, tables, lists and HTML survive exactly as written; heading blocks
carry the heading's plain inline text instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

from app.text.inline import inline_text
from app.text.tags import TAG_SPLIT, normalise_tags
from ingest.errors import IngestError
from ingest.parse.detect import EMPTY_FILE, decode_text
from ingest.types import Block, BlockKind, ParsedDocument

_LINE_BREAK = re.compile(r"\r\n?|\n")

# Opening token of a top-level block -> kind of block it becomes.
_KINDS: dict[str, BlockKind] = {
    "paragraph_open": BlockKind.PARAGRAPH,
    "fence": BlockKind.CODE,
    "code_block": BlockKind.CODE,
    "bullet_list_open": BlockKind.LIST,
    "ordered_list_open": BlockKind.LIST,
    "table_open": BlockKind.TABLE,
    "blockquote_open": BlockKind.QUOTE,
    "html_block": BlockKind.OTHER,
}


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # CommonMark plus GFM tables (tables are common in team docs and otherwise parse as
    # paragraphs) and YAML front matter, which must not become an <hr> + setext heading.
    return MarkdownIt("commonmark").enable("table").use(front_matter_plugin)


def parse_markdown_bytes(data: bytes) -> ParsedDocument:
    """Decode a Markdown or text file's bytes and parse them."""
    return parse_markdown(decode_text(data))


def parse_markdown(text: str) -> ParsedDocument:
    """Parse Markdown source into heading and body blocks, in reading order."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise IngestError(EMPTY_FILE)
    # The same line breaks markdown-it counts in token.map; str.splitlines would also
    # break at form feeds and U+2028 and shift every later block.
    lines = _LINE_BREAK.split(text)
    tokens = _parser().parse(text)
    blocks: list[Block] = []
    title: str | None = None
    tags: tuple[str, ...] = ()
    covered = 0  # source lines before this index belong to an emitted block (or are skipped)
    for i, tok in enumerate(tokens):
        if tok.level != 0 or tok.map is None or tok.nesting == -1:
            continue
        start, end = tok.map
        # Lines the parser consumed without a token (link reference definitions) are
        # kept as text so that nothing of the source is lost.
        _add_source(blocks, lines, covered, start, BlockKind.OTHER)
        covered = max(covered, end)
        if tok.type == "front_matter":
            meta = _load_yaml(tok.content)
            if isinstance(meta, dict):
                title = _meta_title(meta)
                tags = _meta_tags(meta)
            else:
                # Not YAML metadata after all: keep it as text rather than lose it.
                _add_source(blocks, lines, start, end, BlockKind.OTHER)
        elif tok.type == "heading_open":
            heading = inline_text(tokens[i + 1]).strip()
            if heading:
                blocks.append(Block(BlockKind.HEADING, heading, level=int(tok.tag[1:])))
        elif tok.type == "hr":
            continue  # a thematic break is decoration, not text
        else:
            _add_source(blocks, lines, start, end, _KINDS.get(tok.type, BlockKind.OTHER))
    _add_source(blocks, lines, covered, len(lines), BlockKind.OTHER)
    if not blocks:
        raise IngestError(
            "The file contains no text, only Markdown markup (rules or front matter). "
            "Add content and upload it again."
        )
    meta_title = title
    if title is None:
        title = next((b.text for b in blocks if b.kind is BlockKind.HEADING and b.level == 1), None)
    return ParsedDocument(blocks=tuple(blocks), title=title, tags=tags, meta_title=meta_title)


def _add_source(
    blocks: list[Block], lines: Sequence[str], start: int, end: int, kind: BlockKind
) -> None:
    """Append the source lines [start, end) as one block, trimmed of blank edges."""
    chunk = lines[start:end]
    while chunk and not chunk[0].strip():
        chunk = chunk[1:]
    while chunk and not chunk[-1].strip():
        chunk = chunk[:-1]
    if chunk:
        blocks.append(Block(kind, "\n".join(chunk)))


def _load_yaml(source: str) -> object:
    try:
        return yaml.safe_load(source)
    except yaml.YAMLError:
        return None


def _meta_title(meta: dict[object, object]) -> str | None:
    """The ``title`` of front matter, if it is a non-empty scalar."""
    value = meta.get("title")
    # Only scalars: str() of a nested structure built from YAML aliases can be huge.
    if not isinstance(value, str | int | float):
        return None
    return str(value).strip() or None


# Front-matter keys that hold labels (Jekyll/Hugo "tags" and "categories", "keywords").
_TAG_KEYS = ("tags", "tag", "keywords", "categories", "category")


def _meta_tags(meta: dict[object, object]) -> tuple[str, ...]:
    """Tags from front matter: lists, or strings separated like typed tags."""
    parts: list[object] = []
    for key in _TAG_KEYS:
        value = meta.get(key)
        if isinstance(value, str):
            parts.extend(TAG_SPLIT.split(value))
        elif isinstance(value, list):
            parts.extend(value)
    return tuple(normalise_tags(parts))
