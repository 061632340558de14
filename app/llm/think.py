"""Hiding a reasoning model's ``<think>…</think>`` blocks from a streamed answer.

Qwen3, DeepSeek-R1 and their kin write their reasoning inside ``<think>`` tags when the
server does not split it off into ``reasoning_content``. A tag may arrive split across
stream chunks (``"<thi"`` then ``"nk>"``), so the filter holds back a tail that could
still become a tag and releases it once it cannot.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


def _partial_tail(text: str, tag: str) -> int:
    """The length of the longest end of ``text`` that is a proper beginning of ``tag``."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


class ThinkFilter:
    """Feed it chunks of model output; it returns the visible text of each.

    Whitespace that follows a think block (or opens the answer) is dropped, so the
    visible answer starts with its first word. ``flush()`` at the end of the stream.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._inside = False
        self._at_start = True  # nothing visible yet, or just after a think block

    def feed(self, text: str) -> str:
        self._buf += text
        out: list[str] = []
        while self._buf:
            if self._inside:
                i = self._buf.find(CLOSE)
                if i < 0:
                    keep = _partial_tail(self._buf, CLOSE)
                    self._buf = self._buf[len(self._buf) - keep :] if keep else ""
                    break
                self._buf = self._buf[i + len(CLOSE) :]
                self._inside = False
                self._at_start = True
                continue
            i = self._buf.find(OPEN)
            if i < 0:
                keep = _partial_tail(self._buf, OPEN)
                cut = len(self._buf) - keep
                out.append(self._visible(self._buf[:cut]))
                self._buf = self._buf[cut:]
                break
            out.append(self._visible(self._buf[:i]))
            self._buf = self._buf[i + len(OPEN) :]
            self._inside = True
        return "".join(out)

    def flush(self) -> str:
        """What is left at the end: an unfinished tag was text; an unclosed block is dropped."""
        rest, self._buf = self._buf, ""
        return "" if self._inside else self._visible(rest)

    def _visible(self, text: str) -> str:
        if self._at_start:
            text = text.lstrip()
            if text:
                self._at_start = False
        return text


def strip_think(text: str) -> str:
    """``text`` without its think blocks (a whole, non-streamed answer)."""
    f = ThinkFilter()
    return f.feed(text) + f.flush()
