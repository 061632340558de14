"""Text helpers for the pages: query highlighting, sentence splitting, Markdown rendering.

Pure functions with no I/O; nothing heavy is built at import time.
"""

from app.text.highlight import highlight_spans, query_terms, render_highlighted, snippet
from app.text.render import Heading, render_markdown
from app.text.sentences import best_sentences, split_sentences

__all__ = [
    "Heading",
    "best_sentences",
    "highlight_spans",
    "query_terms",
    "render_highlighted",
    "render_markdown",
    "snippet",
    "split_sentences",
]
