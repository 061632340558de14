"""Sentence spans for mixed Chinese/English text, and picking the sentences that answer.

The splitter works on offsets into the original text, so a caller can highlight the
chosen sentences in place. It is a set of rules, not a model: Chinese sentence marks
always end a sentence; a "." ends one only before a space and a capital letter, a CJK
character or the end (so "e.g. Python", "3.2", "v1.0" and "setup.py" stay whole); line
breaks end a sentence only around line-oriented items (list items, table rows, headings,
Q:/A: lines), since PDF text is hard-wrapped mid-sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from app.text.scripts import UNSPACED

Span = tuple[int, int]

MAX_SENTENCE = 400  # longer sentences are cut at commas (else spaces, else hard)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A line that starts an item of its own: bullets, numbered items ("1.", "2)", "3、",
# "（一）", "一、", "第三条"), table rows, headings, FAQ "Q:"/"A:"/"问："/"答：" lines.
_ITEM_START = re.compile(
    r"""\s*(?:
        [-*+•·▪‣◦](?:\s|$)
      | \d{1,3}[.)．](?:\s|$) | \d{1,3}、
      | [(（][一二三四五六七八九十\d]{1,3}[)）]
      | [一二三四五六七八九十]{1,3}、
      | 第[一二三四五六七八九十百零〇\d]{1,5}[章节条款部分篇]
      | \|
      | \#{1,6}(?:\s|$)
      | (?:Q|A|问|答)\s*[:：]
    )""",
    re.VERBOSE,
)
# A line after which a new sentence starts even without punctuation.
_LINE_ITEM_END = re.compile(r"\s*(?:\||#{1,6}(?:\s|$))")

_CJK = UNSPACED
_CLOSERS = "\"'”’」』）)\\]》〉】"
# A run of sentence marks and the closing quotes/brackets after it.
_TERMINATOR = re.compile(f"[。！？；!?;.]+[{_CLOSERS}]*")
_FULL_WIDTH_MARKS = frozenset("。！？；")
# After an ASCII "!?;": a space, the end, or a CJK character ("a != b" is not a sentence end).
_AFTER_MARK = re.compile(f"\\s|$|[{_CJK}]")
# After a ".": space(s) then a capital, a CJK character or an opening quote; or the end.
_AFTER_DOT = re.compile(f'\\s+[A-Z{_CJK}"“‘(（\\[「]|\\s*$')
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "cf", "al", "approx", "dept"}
)  # fmt: skip
_INITIALS = re.compile(r"[a-z](?:\.[a-z])*")  # "J", "e.g", "u.s"
_LAST_TOKEN = re.compile(r"(\S*)$")
_LIST_NUMBER = re.compile(r"\s*[-*+]?\s*\d{1,3}")
_COMMA = re.compile(r"[,，、:：]")


def split_sentences(text: str) -> list[Span]:
    """Sentence spans ``(start, end)`` of ``text``: in order, trimmed, never empty.

    Together the spans cover every non-whitespace character of ``text``.
    """
    spans: list[Span] = []
    for block_start, block_end in _blocks(text):
        for start, end in _sentences(text, block_start, block_end):
            for piece_start, piece_end in _cut_long(text, start, end):
                trimmed = _trim(text, piece_start, piece_end)
                if trimmed is not None:
                    spans.append(trimmed)
    return spans


def _lines(text: str) -> list[Span]:
    """Content ranges of the lines of ``text`` (line breaks excluded)."""
    lines: list[Span] = []
    pos = 0
    for m in _LINE_BREAK.finditer(text):
        lines.append((pos, m.start()))
        pos = m.end()
    lines.append((pos, len(text)))
    return lines


def _blocks(text: str) -> list[Span]:
    """Runs of lines separated by blank lines and by line-oriented items."""
    blocks: list[Span] = []
    start: int | None = None
    end = 0
    prev_ends_item = False
    for line_start, line_end in _lines(text):
        line = text[line_start:line_end]
        if not line.strip():
            if start is not None:
                blocks.append((start, end))
                start = None
            continue
        if start is not None and (prev_ends_item or _ITEM_START.match(line)):
            blocks.append((start, end))
            start = None
        if start is None:
            start = line_start
        end = line_end
        prev_ends_item = _LINE_ITEM_END.match(line) is not None
    if start is not None:
        blocks.append((start, end))
    return blocks


def _sentences(text: str, start: int, end: int) -> list[Span]:
    """Split ``text[start:end]`` (one block) after its sentence-ending marks."""
    out: list[Span] = []
    pos = start
    for m in _TERMINATOR.finditer(text, start, end):
        if _ends_sentence(text, m, end):
            out.append((pos, m.end()))
            pos = m.end()
    if pos < end:
        out.append((pos, end))
    return out


def _ends_sentence(text: str, m: re.Match[str], end: int) -> bool:
    marks = m.group().rstrip(_CLOSERS)
    if any(c in _FULL_WIDTH_MARKS for c in marks):
        return True
    if marks[-1] != ".":
        return _AFTER_MARK.match(text, m.end(), end) is not None
    if _AFTER_DOT.match(text, m.end(), end) is None:
        return False
    line_start = max(text.rfind("\n", 0, m.start()), text.rfind("\r", 0, m.start())) + 1
    # Only the last word matters; a bounded look-back keeps long lines linear.
    before = text[max(line_start, m.start() - 40) : m.start()]
    token_match = _LAST_TOKEN.search(before)
    token = token_match.group(1).lstrip("\"'“‘(（[").lower() if token_match else ""
    if token in _ABBREVIATIONS or _INITIALS.fullmatch(token):
        return False
    # "1. First step" at the start of a line is a list number, not a sentence.
    return not (m.start() - line_start <= 40 and _LIST_NUMBER.fullmatch(before))


def _cut_long(text: str, start: int, end: int) -> list[Span]:
    """Cut a span longer than ``MAX_SENTENCE`` after commas, else at spaces, else hard."""
    trimmed = _trim(text, start, end)
    if trimmed is None:
        return []
    start, end = trimmed
    pieces: list[Span] = []
    pos = start
    while end - pos > MAX_SENTENCE:
        limit = pos + MAX_SENTENCE
        cut = _last_cut(text, pos, limit)
        pieces.append((pos, cut))
        pos = cut
    pieces.append((pos, end))
    return pieces


def _last_cut(text: str, pos: int, limit: int) -> int:
    """The latest good cut in ``(pos, limit]``: after a comma, before a space, or ``limit``."""
    window = text[pos + 1 : limit]
    commas = [m.end() for m in _COMMA.finditer(window)]
    if commas:
        return pos + 1 + commas[-1]
    for i in range(len(window) - 1, -1, -1):
        if window[i].isspace():
            return pos + 1 + i
    return limit


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def best_sentences(
    question_vec: npt.NDArray[np.floating[Any]],
    sentence_vecs: npt.NDArray[np.floating[Any]],
    spans: Sequence[Span],
    *,
    top: int = 2,
    min_ratio: float = 0.85,
) -> list[tuple[int, int, float]]:
    """The sentences closest to the question, as ``(start, end, score)`` in text order.

    Vectors are L2-normalised, so cosine is the inner product. The best sentence is
    always kept; each further one (up to ``top``) only while its score is at least
    ``min_ratio`` times the best, so one clear answer is not padded with weak ones.
    """
    vecs = np.asarray(sentence_vecs, dtype=np.float32)
    if vecs.ndim != 2 or vecs.shape[0] != len(spans):
        raise ValueError(f"{len(spans)} spans but sentence vectors of shape {vecs.shape}")
    if not spans or top < 1:
        return []
    scores = vecs @ np.asarray(question_vec, dtype=np.float32)
    order = np.argsort(-scores, kind="stable")
    best = float(scores[order[0]])
    chosen = [int(order[0])]
    if best > 0:
        chosen += [int(i) for i in order[1:top] if float(scores[i]) >= min_ratio * best]
    return sorted((spans[i][0], spans[i][1], float(scores[i])) for i in chosen)
