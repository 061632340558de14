"""The language of a text's prose, from its script (enough to tell zh from en).

Only prose counts: code, identifiers and markup are written in ASCII whatever the language
of the text around them, so a Chinese manual full of LaTeX or a Chinese README with shell
commands would otherwise read as English. Left out before counting:

- fenced code blocks (```` ``` ````, ``~~~``) and indented code blocks (Markdown);
- lines that look like code: many symbols (``{};=<>\\$``) for their length, and the
  numbered lines of a code listing;
- in the other lines: inline code spans, URLs and e-mail addresses, TeX commands with
  their option brackets, brace groups without CJK text (``{fontenc}``; ``{汉字}`` keeps its
  text), inline math, HTML tags, file paths, and identifiers (``snake_case``,
  ``camelCase``, ``dotted.names``, ``--options``, ``utf8``, ``ALLCAPS``).

Long texts are sampled: a few windows spread over the text, not all of it.
"""

from __future__ import annotations

import re

from app.text.scripts import HAN, HANGUL_SYLLABLES, KANA

_CJK = re.compile(f"[{HAN}]")
_KANA = re.compile(f"[{KANA}]")
_HANGUL = re.compile(f"[{HANGUL_SYLLABLES}]")
# Latin words of two letters or more: single letters are mostly variables (x, f) and
# labels (A. B. C.), not English.
_LATIN = re.compile(r"[A-Za-z]{2,}")
_ANY_CJK = re.compile(f"[{HAN}{KANA}{HANGUL_SYLLABLES}]")

# How many windows a long text is sampled in.
_WINDOWS = 8

_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
_INDENTED = re.compile(r"(?: {4}|\t)")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]")
# A line of a numbered code listing (a PDF of documented source): its number, then text
# without CJK characters.
_NUMBERED_LINE = re.compile(f"[ \t]*\\d{{1,5}}[ \t]+[^{HAN}{KANA}{HANGUL_SYLLABLES}]*$")
_INLINE_CODE = re.compile(r"`+[^`\n]*`+")
_URL = re.compile(r"(?:\b[A-Za-z][A-Za-z0-9+.-]*://|\bwww\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.A)
# A TeX command (``\section``, ``\__xpinyin_if:nTF``, ``\xpinyin*``) with its option
# brackets, or a control symbol (``\\``, ``\{``).
_TEX_COMMAND = re.compile(r"\\(?:[A-Za-z@_:]+\*?(?:[ \t]*\[[^\[\]\n]*\])*|[^A-Za-z\s])")
_BRACES = re.compile(r"\{([^{}]*)\}")
_MATH = re.compile(r"\$[^$\n]{1,200}\$")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>\n]*>|<!--.*?-->")
_LINK_TARGET = re.compile(r"\]\([^()\s]*\)")
_PATH = re.compile(r"(?:\b[A-Za-z]:\\|~/|\.{1,2}/|/)?(?:[A-Za-z0-9_.+-]+/)+[A-Za-z0-9_.+-]*", re.A)
_IDENTIFIER = re.compile(
    r"""(?<![\w-])--?[A-Za-z][\w-]*   # --option, -o
    | \b\w*_\w*\b                    # snake_case, __dunder__, CONST_NAME
    | \b\w+(?:\.\w+)+\b              # dotted.names, file.ext, 1.2.3
    | \b[a-z]+[A-Z]\w*\b             # camelCase
    | \b[A-Z][a-z]+[A-Z]\w*\b        # CamelCase with inner capitals (CJKutf8)
    | \b[A-Za-z]+\d\w*\b             # utf8, zhong1
    | \b\d+[A-Za-z]\w*\b             # 3D, 0x1F
    | \b[A-Z]{2,}\b                  # ALLCAPS: acronyms, constants, man page headings
    """,
    re.A | re.X,
)
# Symbols that are rare in prose and common in code, and those prose uses too.
_STRONG = frozenset("{}<>=;\\$&^~@_`")
_WEAK = frozenset("()[]/\"':+*|#%")
_CODE_RATIO = 0.12
# With ``strict``: the least prose, in words (a CJK character is one), that tells a language.
_STRICT_MIN_WORDS = 3


def detect_language(text: str, *, sample: int = 40000, strict: bool = False) -> str | None:
    """'zh', 'ja', 'ko', 'en' or None: the language of the text's prose.

    CJK characters weigh as words of Latin letters. When the text has no prose (only code,
    identifiers or digits) the letters of all of it decide. With ``strict``, a text with
    no prose or too little of it (under three words) gives None instead, so that a caller
    can fall back to what it knows (a chunk to its document).
    """
    s = _sample(text, sample)
    han = kana = hangul = latin = 0
    for line in _prose_lines(s):
        han += len(_CJK.findall(line))
        kana += len(_KANA.findall(line))
        hangul += len(_HANGUL.findall(line))
        latin += _letters(line)
    if strict:
        # A word or two ("Updated:", a lone command name) cannot tell a chunk's language.
        enough = han + kana + hangul + latin / 5 >= _STRICT_MIN_WORDS
        return _decide(han, kana, hangul, latin) if enough else None
    found = _decide(han, kana, hangul, latin)
    if found is not None:
        return found
    return _decide(
        len(_CJK.findall(s)), len(_KANA.findall(s)), len(_HANGUL.findall(s)), _letters(s)
    )


def _letters(text: str) -> int:
    return sum(len(w) for w in _LATIN.findall(text))


def _decide(han: int, kana: int, hangul: int, latin: int) -> str | None:
    latin_words = latin / 5  # ~5 letters a word; one CJK char ~ one word
    if kana > 0.1 * (han + kana) and kana + han > latin_words:
        return "ja"
    if hangul > latin_words and hangul > han:
        return "ko"
    if han > latin_words:
        return "zh"
    if latin_words >= 1:
        return "en"
    return None


def _sample(text: str, size: int) -> str:
    """All of ``text`` when it is short, else ``_WINDOWS`` windows spread over it (each cut
    to whole lines) adding up to about ``size`` characters."""
    if len(text) <= size:
        return text
    width = size // _WINDOWS
    step = (len(text) - width) / (_WINDOWS - 1)
    parts = []
    for i in range(_WINDOWS):
        start = round(i * step)
        end = start + width
        if start:  # begin at a line's start: a cut line is half a token, half a symbol
            nl = text.find("\n", start, end)
            start = nl + 1 if nl >= 0 else start
        parts.append(text[start:end])
    return "\n\n".join(parts)


def _prose_lines(text: str) -> list[str]:
    """The lines of ``text`` that are prose, with code, markup and identifiers cut out."""
    out: list[str] = []
    fence: str | None = None
    blank_before = True  # an indented code block starts after a blank line
    in_code = False  # inside an indented code block
    in_list = False  # indented lines under a list item continue it
    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        if not line.strip():
            blank_before = True
            continue
        indented = _INDENTED.match(line) is not None
        if indented and (in_code or blank_before) and not in_list:
            in_code = True
            blank_before = False
            continue
        in_code = False
        blank_before = False
        if not indented:
            in_list = _LIST_ITEM.match(line) is not None
        # Inline code and URLs are cut out first: prose quotes them, whatever they hold.
        line = _URL.sub(" ", _INLINE_CODE.sub(" ", line))
        if _NUMBERED_LINE.match(line) or _looks_like_code(line):
            continue
        prose = _strip_markup(line)
        if prose.strip():
            out.append(prose)
    return out


def _looks_like_code(line: str) -> bool:
    """Many code symbols for the line's length (CJK characters count as length)."""
    strong = weak = size = 0
    for ch in line:
        if ch in _STRONG:
            strong += 1
        elif ch in _WEAK:
            weak += 1
        if not ch.isspace():
            size += 1
    return strong >= 2 and (strong + weak / 2) > _CODE_RATIO * size


def _strip_markup(line: str) -> str:
    line = _LINK_TARGET.sub("]", line)
    line = _HTML_TAG.sub(" ", line)
    line = _TEX_COMMAND.sub(" ", line)
    line = _MATH.sub(lambda m: m.group(0) if _ANY_CJK.search(m.group(0)) else " ", line)
    for _ in range(4):  # innermost groups first: {a {b} c}
        line, n = _BRACES.subn(
            lambda m: f" {m.group(1)} " if _ANY_CJK.search(m.group(1)) else " ", line
        )
        if not n:
            break
    line = _PATH.sub(" ", line)
    return _IDENTIFIER.sub(" ", line)
