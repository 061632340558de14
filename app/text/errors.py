"""Library error messages made fit to show a person (the leaf text package)."""

from __future__ import annotations

import re

# A path in a library's message ("/tmp/tmpab12/x.xlsx"): only its last part is kept.
# A relative part name ("word/document.xml") is kept: only a slash that starts a word.
_PATH = re.compile(r"(?<![\w.~-])(?:/[^\s/'\"]+)+/?")


def error_detail(exc: BaseException, limit: int = 200) -> str:
    """A library's error message as a reason may quote it: on one line, at most
    ``limit`` characters, and without the server's directories (a reason is shown to
    readers, who must not learn where the server keeps its files)."""
    text = _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], str(exc))
    return " ".join(text.split())[:limit] or type(exc).__name__
