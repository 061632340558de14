"""Plain text of a Markdown heading, the same for the ingest parser and the page renderer,
so a chunk's heading path can be matched to a rendered heading by text."""

from __future__ import annotations

from markdown_it.token import Token


def inline_text(inline: Token) -> str:
    """Plain text of an inline token: markup dropped, code spans and image alt kept."""
    parts: list[str] = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(inline_text(child))
        elif child.type in ("s_open", "s_close"):
            # Only the renderer enables strikethrough; the ingest parser keeps "~~" as text.
            parts.append(child.markup)
    return "".join(parts)
