"""Lines of PDF text: reading the lines PDFium laid out, PDFium's hyphen marks, and
joining the lines of a paragraph that the page only wrapped.

Everything that turns PDFium's characters into line text goes through this module, so
a mark PDFium puts in place of a hyphen at a line end is handled once
(``drop_hyphen_marks``), whichever reader met it.
"""

from __future__ import annotations

import ctypes
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from app.text.scripts import BOPOMOFO, CJK_COMPAT_FORMS, CJK_RADICALS, HAN, KANA

# --- PDFium's hyphen marks ----------------------------------------------------------------

# PDFium marks a word it found hyphenated at a line end with U+0002 (U+FFFE in older
# builds) where the hyphen was, and keeps the word's halves together; a line break may
# follow the mark where the text was put together line by line.
HYPHEN_MARKS = frozenset({0x0002, 0xFFFE})
_HYPHEN_MARK = re.compile("[\u0002\ufffe]\n?")


def drop_hyphen_marks(text: str) -> str:
    """``text`` without PDFium's hyphen marks (each with the line feed right after it, if
    any), so the halves of a word PDFium found hyphenated join without the hyphen."""
    return _HYPHEN_MARK.sub("", text)


# --- Lines measured by PDFium ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One text line as PDFium laid it out, in its reading order on the page.

    Coordinates are PDF points with y growing upwards; ``size`` and ``weight`` are those
    of most of the line's characters; ``bold_share`` is the share of bold characters.
    """

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float
    weight: int
    bold_share: float

    @property
    def chars(self) -> int:
        return len("".join(self.text.split()))


# Font names that mean a heavy face even where the font declares no weight.
_BOLD_NAME = re.compile(r"bold|heavy|black|semibold|demi|[-_,]bd\b|cmbx|hei\b|heiti|黑", re.I)


def read_lines(textpage: Any) -> list[Line]:
    """The lines of a PDFium text page (``pypdfium2.raw`` FPDF_TEXTPAGE handle)."""
    import pypdfium2.raw as pdfium_c

    count = pdfium_c.FPDFText_CountChars(textpage)
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    boxes = (ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top))
    name_buffer = ctypes.create_string_buffer(128)
    flags = ctypes.c_int()
    lines: list[Line] = []
    chars: list[str] = []
    sizes: Counter[float] = Counter()
    weights: Counter[int] = Counter()
    bold = 0
    x0 = y0 = math.inf
    x1 = y1 = -math.inf
    name_bold: dict[int, bool] = {}

    def flush() -> None:
        nonlocal chars, sizes, weights, bold, x0, y0, x1, y1
        text = drop_hyphen_marks("".join(chars)).strip()
        if text and sizes:
            total = sum(sizes.values())
            lines.append(
                Line(
                    text=text,
                    x0=x0,
                    y0=y0,
                    x1=x1,
                    y1=y1,
                    size=sizes.most_common(1)[0][0],
                    weight=weights.most_common(1)[0][0],
                    bold_share=bold / total,
                )
            )
        chars, sizes, weights, bold = [], Counter(), Counter(), 0
        x0 = y0 = math.inf
        x1 = y1 = -math.inf

    for i in range(count):
        code = pdfium_c.FPDFText_GetUnicode(textpage, i)
        if code in (10, 13):
            # PDFium ends each line it laid out with a generated CR LF.
            if code == 10:
                flush()
            continue
        ch = chr(code) if 0 < code < 0x110000 else "\ufffd"
        chars.append(ch)
        if ch.isspace() or code in HYPHEN_MARKS:
            continue
        pdfium_c.FPDFText_GetCharBox(textpage, i, *boxes)
        x0, x1 = min(x0, left.value), max(x1, right.value)
        y0, y1 = min(y0, bottom.value), max(y1, top.value)
        size = round(pdfium_c.FPDFText_GetFontSize(textpage, i) * 2) / 2
        weight = int(pdfium_c.FPDFText_GetFontWeight(textpage, i))
        sizes[size] += 1
        weights[weight] += 1
        if weight >= 600:
            bold += 1
            continue
        # The font's name is asked once per weight value and font flags seen.
        pdfium_c.FPDFText_GetFontInfo(textpage, i, name_buffer, len(name_buffer), flags)
        key = hash((name_buffer.value, flags.value))
        if key not in name_bold:
            name = name_buffer.value.decode("utf-8", "replace")
            name_bold[key] = bool(_BOLD_NAME.search(name)) or bool(flags.value & 0x40000)
        bold += name_bold[key]
    flush()
    return lines


# --- Joining the lines of a paragraph -----------------------------------------------------

# CJK letters and punctuation; not the ideographic space (U+3000) nor the half-width
# forms (only U+FF01-FF60 of the full-width block).
_CJK = CJK_RADICALS + "\u3001-\u303f" + KANA + BOPOMOFO + HAN + CJK_COMPAT_FORMS + "\uff01-\uff60"
# A line break between two CJK characters (or CJK punctuation) is only a wrap.
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])")
# Justified CJK text is often extracted with a space between every two ideographs.
_CJK_SPACE = re.compile(rf"(?<=[{HAN}]) (?=[{HAN}])")
# A word hyphenated at a line end: "exam-\nple". A capital after the break ("Jean-\nPaul")
# or a digit keeps the hyphen.
_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_]{2})[-\u00ad\u2010]\n[ \t]*(?=[a-z])")
# A Latin line that runs on: it ends inside a sentence and the next line starts lower-case.
_LATIN_BREAK = re.compile(r"(?<=[a-z,;)\]])[ \t]*\n[ \t]*(?=[a-z(])")
# Lines that look like code or math are left as they are.
_CODE = re.compile(r"[\\{}=<>]|^\s{2,}|[;{]$")


def join_lines(text: str) -> str:
    """Join lines the page only wrapped: CJK with no space, hyphenated words without the
    hyphen, Latin prose with a space; other line breaks stay."""
    text = drop_hyphen_marks(text)
    text = _CJK_BREAK.sub("", text)
    text = _CJK_SPACE.sub("", text)
    text = _HYPHEN_BREAK.sub("", text)
    if "\n" not in text:
        return text
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        prev = out[-1]
        if (
            _LATIN_BREAK.search(prev[-1:] + "\n" + line[:1])
            and not _CODE.search(prev)
            and not _CODE.search(line)
        ):
            out[-1] = f"{prev.rstrip()} {line.lstrip()}"
        else:
            out.append(line)
    return "\n".join(out)
