"""Pure text functions shared by the app and the ingest side: script ranges, token
counts, language detection, decoding, embed text, lexical terms, tags, sentences,
highlighting and Markdown rendering.

A leaf package: it imports nothing of ours outside ``app.text`` (tests/test_layers.py
checks). Pure functions with no I/O; nothing heavy is built at import time.
"""

from app.text.highlight import highlight_spans, highlight_terms, render_highlighted, snippet
from app.text.render import Heading, render_markdown
from app.text.sentences import best_sentences, split_sentences

__all__ = [
    "Heading",
    "best_sentences",
    "highlight_spans",
    "highlight_terms",
    "render_highlighted",
    "render_markdown",
    "snippet",
    "split_sentences",
]
