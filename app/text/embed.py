"""What the embedder (and the reranker) sees for a passage."""

from __future__ import annotations

from collections.abc import Sequence


def embed_text_for(heading_path: Sequence[str], text: str) -> str:
    """What the embedder sees for a chunk: its heading path, a blank line, its text.

    Also used to re-embed stored chunks with another model, so it must not change.
    """
    if not heading_path:
        return text
    return f"{' > '.join(heading_path)}\n\n{text}"
