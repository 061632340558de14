"""Blocks -> chunks: one per section along the headings, split when over a token budget.

A section is the body after a heading up to the next heading. Its heading path lists
the ancestor headings and its own. A section over budget is packed greedily by block;
a block over budget is cut at line ends, then sentence ends, then (last resort) between
tokens. Nothing but whitespace at chunk edges is ever dropped. Text before the first
heading gets an empty heading path (the document title is the store's to add).

FAQ and exam structure (see ``ingest.structure``) divides a section further into units:
each FAQ question with its answer, and each exam question with its options, answer and
explanation, is packed on its own, so two questions never share a chunk and a question
is parted from its answer only when the unit alone is over budget (every piece keeps
the unit's kind and question). An exam part header found in the text ("二、选择题") is
added to the heading path of the questions under it.

In a man page converted to Markdown, each option of an option list (its term line and
description) is packed on its own in the same way, and its term as plain text is added
to the heading path ("OPTIONS > -A NUM, --after-context=NUM"), so a passage starts with
the option it describes and never ends with the next option's name. Like sections,
short options are not merged with their neighbours.

Parsers that know structure say so with ``Block.hint`` (``ingest.types.BlockHint``): a
block marked as a record (a spreadsheet row of an FAQ or question bank) is one unit of
the given kind and question; a table with ``header_lines`` that is over budget is cut
between rows, its header lines repeated atop every piece.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise

from app.text.tokens import TOKEN_RE, count_tokens
from ingest.structure import looks_like_man_page, question_headings, units
from ingest.types import Block, BlockKind, Chunk, ParsedDocument

# End of a sentence: CJK stops need no space after them, Latin ones do (3.14, e.g).
_SENTENCE_END = re.compile(r"[。！？；]+[」』”’)）]*\s*|[.!?;]+[\"'”’)\]）]*\s+")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")


@dataclass(slots=True)
class _Section:
    path: tuple[str, ...]
    heading: Block | None
    body: list[Block] = field(default_factory=list)


def chunk(doc: ParsedDocument, *, max_tokens: int = 400) -> list[Chunk]:
    """Cut a parsed document into chunks of at most ``max_tokens`` along its headings."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    chunks: list[Chunk] = []
    man_page = looks_like_man_page(doc.blocks)
    for path, blocks, question in _section_bodies(doc.blocks):
        for unit in units(path, blocks, question, man_page=man_page):
            unit_path = (*path, unit.part) if unit.part else path
            for text, pages in _pack(list(unit.blocks), max_tokens, lead=unit.option):
                known = [p for p in pages if p is not None]
                chunks.append(
                    Chunk(
                        ordinal=len(chunks),
                        heading_path=unit_path,
                        text=text,
                        page_start=min(known) if known else None,
                        page_end=max(known) if known else None,
                        token_count=count_tokens(text),
                        kind=unit.kind,
                        question=unit.question,
                    )
                )
    return chunks


def _sections(blocks: Iterable[Block]) -> list[_Section]:
    """Group blocks into sections, tracking the heading stack for any level jumps."""
    stack: list[tuple[int, str]] = []
    current = _Section((), None)
    sections = [current]
    for block in blocks:
        if block.kind is BlockKind.HEADING:
            level = max(1, block.level)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, block.text.strip()))
            current = _Section(tuple(text for _, text in stack), block)
            sections.append(current)
        elif block.text.strip():
            current.body.append(block)
    return sections


def _section_bodies(
    blocks: Iterable[Block],
) -> Iterator[tuple[tuple[str, ...], list[Block], str | None]]:
    """Each section's path, body and question heading; an empty leaf heading is its body."""
    sections = _sections(blocks)
    questions = question_headings([s.path for s in sections if s.heading is not None])
    for i, section in enumerate(sections):
        if section.body:
            yield section.path, section.body, questions.get(section.path)
            continue
        heading = section.heading
        if heading is None or not heading.text.strip():
            continue
        following = sections[i + 1].heading if i + 1 < len(sections) else None
        has_children = following is not None and following.level > heading.level
        if not has_children:
            # Without this the heading's words would appear in no chunk text at all.
            yield (
                section.path,
                [Block(BlockKind.PARAGRAPH, heading.text, page=heading.page)],
                None,
            )


def _pack(
    blocks: list[Block], max_tokens: int, *, lead: bool = False
) -> Iterator[tuple[str, list[int | None]]]:
    """Greedily pack blocks (or the pieces of an oversized one) into texts within budget.

    With ``lead`` (a man-page option), a first piece of one line (the option's term) is
    never a chunk alone: the piece after it is cut to fit beside it.
    """
    parts: list[str] = []
    pages: list[int | None] = []
    used = 0
    only_lead = False  # the chunk so far is the lead line alone
    started = False  # a piece has been placed
    for block in blocks:
        cost = count_tokens(block.text)
        if cost <= max_tokens:
            pieces = [(block.text, cost)]
            sep = "\n\n"
        else:
            # Start an oversized block on a fresh chunk so it is cut at its own seams.
            if parts and not only_lead:
                yield _join(parts), pages
                parts, pages, used = [], [], 0
            pieces = _split_block(block.text, max_tokens)
            sep = ""  # the pieces keep their own line ends and spaces
        # Each piece with what goes before it (the pieces of an oversized block keep their
        # own line ends; its first may follow a lead line).
        queue = deque(
            (piece, piece_cost, "\n\n" if k == 0 else sep)
            for k, (piece, piece_cost) in enumerate(pieces)
        )
        header_lines = block.hint.header_lines if block.hint is not None else 0
        if cost > max_tokens and header_lines > 0:
            # A table a parser wrote: whole rows per piece, each under its header rows.
            queue = deque(_table_pieces(block.text, header_lines, max_tokens) or queue)
        while queue:
            piece, piece_cost, piece_sep = queue.popleft()
            if parts and used + piece_cost > max_tokens:
                if only_lead and used < max_tokens:
                    # Cut the piece so that its start fits beside the lead.
                    head, *rest = _split_block(piece, max_tokens - used)
                    queue.extendleft((text, c, "") for text, c in reversed(rest))
                    piece, piece_cost = head
                else:
                    yield _join(parts), pages
                    parts, pages, used = [], [], 0
            if parts and piece_sep:
                parts.append(piece_sep)
            only_lead = lead and not started and "\n" not in piece.strip()
            started = True
            parts.append(piece)
            pages.append(block.page)
            used += piece_cost
    if parts and _join(parts):
        yield _join(parts), pages


def _table_pieces(text: str, header_lines: int, max_tokens: int) -> list[tuple[str, int, str]]:
    """A table cut between rows, its first ``header_lines`` lines repeated atop each piece,
    as (text, tokens, separator) pieces; [] when the header alone leaves no room."""
    lines = text.splitlines()
    head = "\n".join(lines[:header_lines])
    if count_tokens(head) >= max_tokens:
        return []
    out: list[tuple[str, int, str]] = []
    group = ""  # rows under the header so far

    def flush() -> None:
        nonlocal group
        if group:
            piece = f"{head}\n{group}"
            out.append((piece, count_tokens(piece), "\n\n"))
            group = ""

    for row in lines[header_lines:]:
        if not row.strip():
            continue
        candidate = f"{head}\n{group}\n{row}" if group else f"{head}\n{row}"
        if count_tokens(candidate) <= max_tokens:
            group = f"{group}\n{row}" if group else row
            continue
        flush()
        if count_tokens(f"{head}\n{row}") <= max_tokens:
            group = row
        else:  # a row longer than a chunk: cut it alone, at its own seams
            pieces = _split_block(row, max_tokens)
            out.extend((p, c, "\n\n" if k == 0 else "") for k, (p, c) in enumerate(pieces))
    flush()
    return out


def _join(parts: list[str]) -> str:
    return _LEADING_BLANK_LINES.sub("", "".join(parts)).rstrip()


def _split_block(text: str, max_tokens: int) -> list[tuple[str, int]]:
    """Cut a block into pieces within budget whose concatenation is exactly ``text``."""
    pieces: list[tuple[str, int]] = []
    for line in text.splitlines(keepends=True):
        cost = count_tokens(line)
        if cost <= max_tokens:
            pieces.append((line, cost))
            continue
        for sentence in _sentences(line):
            cost = count_tokens(sentence)
            if cost <= max_tokens:
                pieces.append((sentence, cost))
            else:
                pieces.extend(_hard_split(sentence, max_tokens))
    return pieces


def _sentences(text: str) -> list[str]:
    """Cut after sentence ends, keeping the punctuation and following space."""
    cuts = [m.end() for m in _SENTENCE_END.finditer(text)]
    bounds = [0, *(c for c in cuts if 0 < c < len(text)), len(text)]
    return [text[a:b] for a, b in pairwise(bounds) if b > a]


def _hard_split(text: str, max_tokens: int) -> list[tuple[str, int]]:
    """Cut between tokens (inside a word only when the word alone is over budget)."""
    pieces: list[tuple[str, int]] = []
    start = used = 0
    for m in TOKEN_RE.finditer(text):
        pos, end = m.start(), m.end()
        cost = (end - pos + 3) // 4
        if used + cost > max_tokens and used > 0:
            pieces.append((text[start:pos], used))
            start, used = pos, 0
        while cost > max_tokens:
            # A run longer than a whole chunk (a hash, base64): slice it at 4 chars/token.
            cut = pos + 4 * max_tokens
            pieces.append((text[start:cut], max_tokens))
            start = pos = cut
            cost = (end - pos + 3) // 4
        used += cost
    if start < len(text):
        pieces.append((text[start:], used))
    return pieces
