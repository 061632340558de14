"""Query-term highlighting for search results: terms, spans, safe HTML and snippets.

Latin terms (words, identifiers, numbers) match at word starts, so ``install`` marks
``installing``; terms with a digit (``E1234``, ``3.2``) match only whole, so ``5`` does not
mark ``50``. Chinese has no spaces, so a CJK run of the query becomes its overlapping
bigrams, which match anywhere.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from app.text.scripts import UNSPACED

Span = tuple[int, int]

# Scripts written without spaces between words: Han, kana, Hangul syllables.
_CJK_RANGES = UNSPACED
_CJK = f"[{_CJK_RANGES}]"
# A character of a spaced word: \w minus CJK (letters of any spaced script, digits, "_").
_WORD_CHAR = f"[^\\W{_CJK_RANGES}]"
# A query token: a CJK run, or a word / identifier with dotted numeric parts kept whole
# ("v1.0", "3.2", "E1234"); anything else ("\\", "-", "?") separates tokens.
_TOKEN = re.compile(f"(?P<cjk>{_CJK}+)|(?P<word>{_WORD_CHAR}+(?:\\.[0-9]+)*)")
_DIGIT = re.compile(r"\d")

_EN_STOPWORDS = frozenset(
    {
        "about", "all", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can",
        "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "his",
        "how", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or",
        "our", "she", "should", "so", "than", "that", "the", "their", "them", "then", "there",
        "these", "they", "this", "those", "to", "was", "we", "were", "what", "when", "where",
        "which", "who", "whom", "why", "will", "with", "would", "you", "your",
    }
)  # fmt: skip
# Question words and other function words a question is full of and a passage is not,
# and particles that only mark grammar. A query's CJK run is cut at them before taking
# bigrams, so "合同的违约金是多少" gives 合同, 违约, 约金 and no junk like "同的" or "金是".
_ZH_STOP_PHRASES = frozenset(
    {
        "为什么", "怎么样", "能不能", "是不是", "有没有", "可不可以", "怎么", "怎样", "什么",
        "如何", "是否", "为何", "哪些", "哪个", "哪里", "哪儿", "能否", "可否", "可以", "多少",
        "请问", "一下", "我们", "你们", "他们", "她们", "这个", "那个", "这些", "那些", "以及",
        "或者",
    }
)  # fmt: skip
_ZH_PARTICLES = "的了吗呢吧啊呀嘛么是"
_ZH_SPLIT = re.compile(
    "|".join(sorted(_ZH_STOP_PHRASES, key=len, reverse=True)) + f"|[{_ZH_PARTICLES}]"
)
# Single characters kept only when a piece is one character long and not one of these.
_ZH_STOP_CHARS = frozenset("在和与及或我你他她它有就都也还请把被对从向给这那个想要会能办")


def highlight_terms(query: str) -> list[str]:
    """The terms of ``query`` worth highlighting, casefolded, in order, without repeats.

    Words as typed (not stemmed, since :func:`highlight_spans` marks word starts, so
    ``backup`` marks ``backups``), without stopwords, and CJK bigrams cut at function
    words. Not the terms a query is matched by in the full-text index
    (``app.text.terms.match_terms``): those are stemmed and keep every bigram.
    """
    terms: list[str] = []
    for m in _TOKEN.finditer(query):
        if m.group("word") is not None:
            word = m.group("word").casefold()
            if _DIGIT.search(word) or (len(word) >= 2 and word not in _EN_STOPWORDS):
                terms.append(word)
        else:
            terms.extend(_cjk_terms(m.group("cjk")))
    return list(dict.fromkeys(terms))


def _cjk_terms(run: str) -> list[str]:
    out: list[str] = []
    for part in _ZH_SPLIT.split(run):
        if len(part) == 1:
            if part not in _ZH_STOP_CHARS:
                out.append(part)
        else:
            out.extend(part[i : i + 2] for i in range(len(part) - 1))
    return out


_WORD_CHAR_RE = re.compile(_WORD_CHAR)


def _is_word_char(ch: str) -> bool:
    return bool(_WORD_CHAR_RE.match(ch))


def highlight_spans(text: str, terms: list[str]) -> list[Span]:
    """Sorted, merged, non-overlapping ``(start, end)`` spans of ``text`` where terms occur.

    Latin terms match at a word start (a prefix: ``install`` marks ``installing``), terms
    with digits match whole words, CJK terms match anywhere, all case-insensitively.
    """
    if not text:
        return []
    # str.find on a lower-cased copy instead of one regex alternation: compiling a fresh
    # pattern per query cost ~100 ms on long passages. lower() keeps offsets for nearly all
    # text; where it would not (e.g. 'İ'), offsets are mapped back character by character.
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = "".join(ch.lower()[:1] or ch for ch in text)
    found: list[Span] = []
    for term in {t.lower() for t in terms if t}:
        starts_word = _is_word_char(term[0])
        whole_word = starts_word and bool(_DIGIT.search(term)) and _is_word_char(term[-1])
        pos = lowered.find(term)
        while pos != -1:
            end = pos + len(term)
            before_ok = not starts_word or pos == 0 or not _is_word_char(lowered[pos - 1])
            after_ok = not whole_word or end == len(lowered) or not _is_word_char(lowered[end])
            if before_ok and after_ok:
                found.append((pos, end))
            pos = lowered.find(term, pos + 1)
    found.sort()
    spans: list[Span] = []
    for start, end in found:
        if spans and start <= spans[-1][1]:
            if end > spans[-1][1]:
                spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


_TAG = re.compile(r"[a-z][a-z0-9]*")


def render_highlighted(text: str, spans: list[Span], *, tag: str = "mark") -> Markup:
    """``text`` HTML-escaped, with each span wrapped in ``<tag>``; safe for any input."""
    if not _TAG.fullmatch(tag):
        raise ValueError(f"not a plain HTML tag name: {tag!r}")
    parts: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        start, end = max(start, pos), min(end, len(text))
        if start >= end:
            continue
        parts.append(escape(text[pos:start]))
        parts.append(f"<{tag}>{escape(text[start:end])}</{tag}>")
        pos = end
    parts.append(escape(text[pos:]))
    return Markup("".join(parts))


ELLIPSIS = "…"
# How far a window edge may move to land on a sentence end or a space instead of mid-word.
_SNAP = 40
_SENTENCE_END = re.compile(r"[。！？；]\s*|[!?;.]\s+|\n\s*")
_SPACE = re.compile(r"\s+")


def snippet(text: str, spans: list[Span], *, max_chars: int = 600) -> tuple[str, list[Span]]:
    """A window of at most ``max_chars`` characters around the densest spans.

    Returns the window (with "…" where text was cut off) and the spans that fall inside
    it, shifted to the window's offsets (a leading "…" counted). Short texts are
    returned whole.
    """
    if max_chars < 3:
        raise ValueError("max_chars must be at least 3")
    if len(text) <= max_chars:
        return text, [(s, e) for s, e in spans if 0 <= s < e <= len(text)]
    width = max_chars - 2  # room for an ellipsis at each end
    start = _densest_start(sorted(spans), width, len(text))
    end = min(len(text), start + width)
    start, end = _snap(text, start, end, spans)
    # Trim whitespace at the cut edges (the ellipsis stands for it).
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    lead = ELLIPSIS if start > 0 else ""
    tail = ELLIPSIS if end < len(text) else ""
    shift = len(lead) - start
    shifted = [
        (max(s, start) + shift, min(e, end) + shift)
        for s, e in spans
        if max(s, start) < min(e, end)
    ]
    return lead + text[start:end] + tail, shifted


def _densest_start(spans: list[Span], width: int, length: int) -> int:
    """Start of a ``width`` window holding the most highlighted characters, spans centred."""
    if not spans:
        return 0
    prefix = [0]
    for s, e in spans:
        prefix.append(prefix[-1] + e - s)
    best_i, best_j, best_cover = 0, 0, -1
    j = 0
    for i, (s, _) in enumerate(spans):
        j = max(j, i)
        while j < len(spans) and spans[j][1] <= s + width:
            j += 1
        cover = prefix[j] - prefix[i]
        if cover > best_cover:
            best_i, best_j, best_cover = i, j, cover
    first = spans[best_i][0]
    last = spans[best_j - 1][1] if best_j > best_i else first + width
    slack = max(0, width - (last - first))
    return max(0, min(first - slack // 2, length - width))


def _snap(text: str, start: int, end: int, spans: list[Span]) -> tuple[int, int]:
    """Move the window edges a little so they fall on sentence ends or spaces."""
    first = min((s for s, _ in spans if start <= s < end), default=end)
    last = max((e for _, e in spans if start < e <= end), default=start)
    if start > 0:
        limit = min(start + _SNAP, first)
        for pattern in (_SENTENCE_END, _SPACE):
            m = pattern.search(text, start, limit)
            if m is not None:
                start = m.end()
                break
    if end < len(text) and not text[end].isspace():
        lower = max(end - _SNAP, last, start)
        for pattern in (_SENTENCE_END, _SPACE):
            hits = list(pattern.finditer(text, lower, end))
            if hits:
                end = hits[-1].end() if pattern is _SENTENCE_END else hits[-1].start()
                break
    return start, max(start, end)
