"""Tell unreadable PDF text apart from real text, and read pages again with PDFium.

pypdf maps a font's character codes to Unicode through the font's ToUnicode map. A CJK
CID font without one (common in TeX output: ``pdffonts`` shows ``uni no``) comes out as
its raw glyph numbers read as code points: a salad of single letters from unrelated
scripts (Armenian, Hebrew, Tibetan, Myanmar ...), unassigned code points and symbols.
TeX math fonts without one give control characters. PDFium also maps CIDs through the
font's character collection (Adobe-GB1, -Japan1 ...) and reads the embedded font's own
tables, so it reads most such pages correctly.
"""

from __future__ import annotations

import ctypes
import logging
import math
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ingest.parse.pdf_columns import Piece, column_text, find_gutter, read_pieces
from ingest.parse.pdf_lines import Line, drop_hyphen_marks, read_lines

log = logging.getLogger(__name__)

# A page is unreadable when at least this share of its non-space characters is suspect ...
UNREADABLE_SHARE = 0.02
# ... or when it holds a "script salad": at least this many stray letters from at least
# this many different rare scripts (real text uses a rare script in words, not in single
# letters next to letters of other scripts), whatever their share of a long page.
SALAD_MIN_LETTERS = 3
SALAD_MIN_SCRIPTS = 3
# A run of this many Latin-1 symbols/letters (U+0080-U+00FF) with nothing else between is
# mojibake ("Ã©Â»"), not French or German, which put one or two in a word.
LATIN1_RUN = 3
_LATIN1_RUN = re.compile(f"[\\x80-\\x84\\x86-\\x9f\\xa1-\\xff]{{{LATIN1_RUN},}}")  # no NEL, NBSP
_NOT_PRINTABLE_ASCII = re.compile(r"[^ -~]")

# Code point ranges whose characters are plausible in any document: Latin, Greek and
# Cyrillic with their diacritics and phonetics, punctuation and symbols, CJK ideographs,
# kana, bopomofo, hangul syllables, full-width forms, math letters, emoji.
_PLAUSIBLE = (
    (0x0000, 0x052F),  # Latin, IPA, diacritics, Greek, Cyrillic (+ supplement)
    (0x1AB0, 0x1AFF),  # combining diacritical marks extended
    (0x1D00, 0x1FFF),  # phonetic extensions, Latin extended additional, Greek extended
    (0x2000, 0x2BFF),  # punctuation, super/subscripts, currency, letterlike, arrows, math ...
    (0x2C60, 0x2C7F),  # Latin extended-C
    (0x2DE0, 0x2E7F),  # Cyrillic extended-A, supplemental punctuation
    (0x2FF0, 0x303F),  # ideographic description characters, CJK symbols and punctuation
    (0x3040, 0x31FF),  # kana, bopomofo, hangul compatibility jamo, kanbun, CJK strokes
    (0x3200, 0x4DBF),  # enclosed CJK, CJK compatibility (units), extension A
    (0x4DC0, 0x9FFF),  # Yijing hexagrams, CJK unified ideographs
    (0xA640, 0xA69F),  # Cyrillic extended-B
    (0xA700, 0xA7FF),  # modifier tone letters, Latin extended-D
    (0xAC00, 0xD7AF),  # hangul syllables
    (0xFB00, 0xFB06),  # Latin ligatures (ﬁ, ﬂ)
    (0xFE00, 0xFE1F),  # variation selectors, vertical forms
    (0xFE20, 0xFE6F),  # combining half marks, CJK compatibility forms, small forms
    (0xFF00, 0xFFEF),  # half-width and full-width forms
    (0x1D400, 0x1D7FF),  # mathematical alphanumeric symbols
    (0x1F000, 0x1FAFF),  # mahjong, cards, enclosed alphanumerics, emoji, symbols
    (0x20000, 0x323AF),  # CJK extensions B-H, compatibility supplement
    (0xE0100, 0xE01EF),  # variation selectors supplement (CJK ideographic variants)
)
# CJK radicals and compatibility ideographs stand in for ordinary ideographs only in
# broken ToUnicode maps; a page made of them is garbage.
_RADICALS = ((0x2E80, 0x2FDF), (0xF900, 0xFAFF))


def _in(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


@dataclass(frozen=True, slots=True)
class TextScore:
    """How readable a page's extracted text looks."""

    content: int  # non-space characters
    suspect: int  # of which look like extraction garbage
    salad_letters: int  # stray letters of rare scripts
    salad_scripts: int  # how many different rare scripts they come from

    @property
    def share(self) -> float:
        return self.suspect / self.content if self.content else 0.0

    @property
    def unreadable(self) -> bool:
        if not self.content:
            return False
        if self.share >= UNREADABLE_SHARE:
            return True
        return self.salad_letters >= SALAD_MIN_LETTERS and self.salad_scripts >= SALAD_MIN_SCRIPTS


_script_cache: dict[str, str | None] = {}


def _kind(ch: str) -> str | None:
    """None for a plausible character, "junk" for one that never is in real text,
    "radical", or the name of the rare script it belongs to ("HEBREW", "TIBETAN" ...)."""
    try:
        return _script_cache[ch]
    except KeyError:
        pass
    cp = ord(ch)
    category = unicodedata.category(ch)
    kind: str | None
    if category in ("Co", "Cn", "Cs") or ch == "\ufffd":
        kind = "junk"  # private use, unassigned, lone surrogate, replacement character
    elif category == "Cc":
        kind = None if ch.isspace() else "junk"
    elif category == "Cf":
        kind = None  # invisible format characters: soft hyphen, zero-width space, BOM ...
    elif _in(cp, _RADICALS):
        kind = "radical"
    elif _in(cp, _PLAUSIBLE):
        kind = None
    else:
        # The first word of the character's name is its script ("ARABIC LETTER ...",
        # "MYANMAR DIGIT ...", "HANGUL CHOSEONG ...").
        kind = unicodedata.name(ch, "RARE").split()[0]
    if len(_script_cache) < 65536:
        _script_cache[ch] = kind
    return kind


def score_text(text: str) -> TextScore:
    """Count the characters of ``text`` that look like extraction garbage.

    Suspect are: private-use, unassigned and control characters and U+FFFD; CJK radicals
    and compatibility ideographs; runs of ``LATIN1_RUN`` or more Latin-1 characters; and
    letters of rare scripts (not Latin, Greek, Cyrillic, CJK, kana, hangul syllables)
    that stand alone, without a neighbour of their own script: real Thai, Arabic or Hindi
    text writes words, garbage scatters single letters of many scripts.
    """
    content = len("".join(text.split()))
    suspect = salad = 0
    scripts: set[str] = set()
    in_runs: set[int] = set()
    for run in _LATIN1_RUN.finditer(text):
        # A run of one repeated character is a dot leader ("······"), not mojibake.
        if len(set(run.group())) > 1:
            suspect += len(run.group())
            in_runs.update(range(run.start(), run.end()))
    # Printable ASCII is never suspect: look only at the other characters.
    for match in _NOT_PRINTABLE_ASCII.finditer(text):
        i = match.start()
        ch = match.group()
        if i in in_runs or ch.isspace():
            continue
        kind = _kind(ch)
        if kind is None:
            continue
        if kind in ("junk", "radical"):
            suspect += 1
        elif (i == 0 or _kind(text[i - 1]) != kind) and (
            i + 1 == len(text) or _kind(text[i + 1]) != kind
        ):
            suspect += 1
            salad += 1
            scripts.add(kind)
    return TextScore(content, suspect, salad, len(scripts))


_T = TypeVar("_T")


def _column_pieces(textpage: Any) -> tuple[list[Piece], tuple[float, float]] | None:
    """The line pieces of a two-column page drawn out of column order, with its gutter;
    None for any other page."""
    import pypdfium2.raw as pdfium_c

    raw = textpage.raw
    # PDFium's text rectangles (one per run of a line, in drawing order) are cheap: the
    # characters are read only for a page that needs it.
    box = tuple(ctypes.c_double() for _ in range(4))
    refs = tuple(ctypes.byref(v) for v in box)
    rects = []
    for i in range(pdfium_c.FPDFText_CountRects(raw, 0, -1)):
        if pdfium_c.FPDFText_GetRect(raw, i, *refs):
            left, top, right, bottom = (v.value for v in box)
            rects.append((left, bottom, right, top))
    band = find_gutter(rects)
    if band is None:
        return None
    return read_pieces(raw, band), band


class PdfiumReader:
    """Reads single pages of one PDF with PDFium, opening the file on first use.

    PDFium is not thread-safe: all calls go through one lock. Any failure (PDFium
    missing, a file it cannot open, a page it cannot read) gives None, never an error:
    this is only a second opinion on pages pypdf already read.
    """

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self._path = path
        self._doc: Any = None
        self._failed = False

    def __enter__(self) -> PdfiumReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def page_text(self, index: int) -> str | None:
        """The text of the page with 0-based ``index``, or None when it cannot be read."""
        # get_text_bounded (unlike get_text_range) is not limited to UCS-2.
        text = self._read(index, "text", lambda textpage: str(textpage.get_text_bounded()))
        if text is None:
            return None
        # PDFium's own line breaks are CR LF: only the hyphen marks go.
        return drop_hyphen_marks(text)

    def page_lines(self, index: int) -> list[Line] | None:
        """The laid-out lines of the page with 0-based ``index`` (see ``read_lines``), or
        None when it cannot be read."""
        return self._read(index, "layout", lambda textpage: read_lines(textpage.raw))

    def column_text(self, index: int) -> str | None:
        """The text of the page with 0-based ``index`` in column order, when it is a
        two-column page drawn out of that order (see ``find_gutter``); else None."""
        found = self._read(index, "columns", _column_pieces)
        return column_text(*found) if found is not None else None

    def _read(self, index: int, what: str, read: Callable[[Any], _T]) -> _T | None:
        """``read(textpage)`` on the page with 0-based ``index``; None when it fails."""

        def on_textpage(page: Any) -> _T:
            textpage = page.get_textpage()
            try:
                return read(textpage)
            finally:
                textpage.close()

        return self._on_page(index, f"{what} unreadable", on_textpage)

    def _on_page(self, index: int, failure: str, use: Callable[[Any], _T]) -> _T | None:
        """``use(page)`` on the page with 0-based ``index``, the page closed after; None
        (and a warning naming the ``failure``) when there is no such page or it fails."""
        with self._lock:
            doc = self._open()
            if doc is None or index >= len(doc):
                return None
            try:
                page = doc[index]
                try:
                    return use(page)
                finally:
                    page.close()
            except Exception as exc:
                log.warning("pdfium: page %d %s: %s", index + 1, failure, exc)
                return None

    def has_images(self, index: int) -> bool | None:
        """Whether the page with 0-based ``index`` draws an image (None when unknown)."""

        def draws_image(page: Any) -> bool:
            import pypdfium2.raw as pdfium_c

            return any(
                obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE for obj in page.get_objects(max_depth=3)
            )

        return self._on_page(index, "objects unreadable", draws_image)

    def render(self, index: int, dpi: int, max_megapixels: float) -> Any:
        """The page with 0-based ``index`` as a grey PIL image at ``dpi`` (less where that
        would exceed ``max_megapixels``: a page can be any size), for OCR; None when it
        cannot be drawn."""

        def draw(page: Any) -> Any:
            width, height = page.get_size()  # points
            scale = dpi / 72
            pixels = max(width * height, 1.0) * scale * scale
            if pixels > max_megapixels * 1e6:
                scale *= math.sqrt(max_megapixels * 1e6 / pixels)
            bitmap = page.render(scale=scale, grayscale=True)
            try:
                return bitmap.to_pil().convert("L")  # a copy: the bitmap is freed
            finally:
                bitmap.close()

        return self._on_page(index, "cannot be rendered", draw)

    def close(self) -> None:
        with self._lock:
            if self._doc is not None:
                self._doc.close()
                self._doc = None

    def _open(self) -> Any:
        if self._doc is not None or self._failed:
            return self._doc
        try:
            import pypdfium2
        except ImportError:
            log.warning("pypdfium2 is not installed: unreadable PDF pages are kept as they are")
            self._failed = True
            return None
        try:
            self._doc = pypdfium2.PdfDocument(self._path, password="")
        except Exception as exc:
            log.warning("pdfium cannot open the PDF: %s", exc)
            self._failed = True
        return self._doc
