"""Rows of cells -> a Markdown pipe table block, shared by the Word and sheet parsers."""

from __future__ import annotations

from ingest.types import Block, BlockHint, BlockKind


def pipe_table(rows: list[list[str]]) -> Block:
    """A Markdown pipe table of ``rows`` (the first is the header), whose header and rule
    the chunker repeats when it splits the table between rows."""

    def line(row: list[str]) -> str:
        return "| " + " | ".join(_cell(c) for c in row) + " |"

    head, *body = rows
    text = "\n".join([line(head), "|" + "---|" * len(head), *(line(r) for r in body)])
    return Block(BlockKind.TABLE, text, hint=BlockHint(header_lines=2))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
