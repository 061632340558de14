"""Pictures of PDF pages, and where a passage lies on its page (for the page preview).

A page is drawn with PDFium at :data:`PAGE_DPI` (twice that for high-density screens),
never above :data:`MAX_PIXELS`, and kept as a PNG beside the document's rendered text,
by content hash (``app.documents.rendered``; deleting the document removes it too):

    <render cache>/v<VERSION>/<hash[:2]>/<hash>/pages/p<page>-<dpi>dpi.png

A passage is found on its page by PDFium's characters: the page text and the chunk text
are both reduced to letters, digits and symbols (no spaces, punctuation or hyphens,
NFKC and case folded), so re-flowed lines, hyphenation and a heading joined to the text
still match; the chunk is then covered greedily by the longest pieces that occur on the
page (its sentences, or the part of a passage that continues on the next page). The
matched characters' boxes are merged into line rectangles, given as percentages of the
page, so that marks laid over the picture scale with it.

PDFium is not thread-safe: every call into it holds :data:`_pdfium_lock`. The pages
routes are synchronous handlers (they run in the thread pool, not on the event loop);
two requests for the same picture wait for one another, so it is drawn once.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import math
import threading
import unicodedata
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.documents.rendered import VERSION, _write

log = logging.getLogger(__name__)

# 120 dpi draws an A4 page 992 px wide: about the width of the main column (60rem less
# its padding, 928 px), so a picture is shown at close to its own size; the 2x picture
# (``srcset``) serves screens of two device pixels per CSS pixel.
PAGE_DPI = 120
SCALES = (1, 2)
# A page can be any size (a poster, a 200-inch strip): never draw more than this many
# pixels (RGB: 3 bytes each, so 8 MP is 24 MB while it is encoded), nor a side longer
# than MAX_SIDE; a bigger page is drawn at a lower resolution.
MAX_PIXELS = 8_000_000
MAX_SIDE = 6000
# The longest page text and chunk text compared (characters): beyond that a page is no
# ordinary page, and the marks cover what was matched within the limit.
MAX_PAGE_CHARS = 50_000
MAX_CHUNK_CHARS = 20_000
# A piece of a chunk counts as found on the page when at least this many normalised
# characters match in a row (fewer for Chinese, Japanese, Korean: each carries more).
MIN_MATCH = 12
MIN_MATCH_CJK = 5

_pdfium_lock = threading.Lock()
_key_locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
_key_locks_guard = threading.Lock()


class PreviewError(Exception):
    """A page cannot be shown; ``message`` is the English message id for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PageNotFound(PreviewError, LookupError):
    """The PDF has no such page."""


class Unreadable(PreviewError):
    """PDFium cannot open the PDF or draw the page."""


PAGE_MISSING = "This page is not in the document."
UNREADABLE = "This PDF cannot be read, so its pages cannot be shown."


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle on the page, in percent of the page's width and height."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Located:
    """A page of a PDF and where a passage lies on it."""

    page: int  # 1-based
    page_count: int
    width_px: int  # the 1x picture's size
    height_px: int
    boxes: tuple[Box, ...]  # the passage's lines; empty when it was not found

    @property
    def found(self) -> bool:
        return bool(self.boxes)


def dpi_for(width_pt: float, height_pt: float, scale: int) -> float:
    """The resolution a page of this size is drawn at, within the caps."""
    w, h = max(width_pt, 1.0) / 72, max(height_pt, 1.0) / 72  # inches
    dpi = min(float(PAGE_DPI * scale), MAX_SIDE / w, MAX_SIDE / h, math.sqrt(MAX_PIXELS / (w * h)))
    return max(dpi, 1.0)


def picture_path(cache_root: Path, content_hash: str, page: int, scale: int) -> Path:
    folder = cache_root / f"v{VERSION}" / content_hash[:2] / content_hash / "pages"
    return folder / f"p{page}-{PAGE_DPI * scale}dpi.png"


def etag(content_hash: str, page: int, scale: int) -> str:
    return f'"{content_hash[:32]}-p{page}-{PAGE_DPI * scale}-v{VERSION}"'


@dataclass(frozen=True, slots=True)
class Picture:
    """A drawn page: the cached file, or its bytes when the cache cannot be written."""

    path: Path | None
    data: bytes | None


def page_picture(
    cache_root: Path, content_hash: str, original: Path, page: int, scale: int
) -> Picture:
    """Page ``page`` (1-based) of the PDF ``original`` as a PNG, drawn once per content."""
    path = picture_path(cache_root, content_hash, page, scale)
    if path.is_file():
        return Picture(path, None)
    with _lock_for(str(path)):
        if path.is_file():  # drawn while this request waited
            return Picture(path, None)
        data = _draw(original, page, scale)
        if _write(path, data):
            return Picture(path, None)
        return Picture(None, data)


def locate(original: Path, page: int, text: str) -> Located:
    """Where ``text`` (a chunk's) lies on page ``page`` (1-based) of the PDF ``original``."""
    with _pdfium_lock, _opened(original) as doc:
        count = len(doc)
        pdf_page = _page(doc, page)
        try:
            width, height = pdf_page.get_size()
            dpi = dpi_for(width, height, 1)
            textpage = pdf_page.get_textpage()
            try:
                indices = _matched_chars(textpage, text)
                boxes = _line_boxes(pdf_page, textpage, indices)
            finally:
                textpage.close()
        except PreviewError:
            raise
        except Exception as exc:
            log.warning("preview: page %d of %s unreadable: %s", page, original.name, exc)
            raise Unreadable(UNREADABLE) from exc
        finally:
            pdf_page.close()
    return Located(
        page, count, math.ceil(width / 72 * dpi), math.ceil(height / 72 * dpi), tuple(boxes)
    )


# --- PDFium -------------------------------------------------------------------------------


@contextlib.contextmanager
def _lock_for(key: str) -> Iterator[None]:
    with _key_locks_guard:
        lock = _key_locks.get(key)
        if lock is None:
            lock = threading.Lock()
            _key_locks[key] = lock
    with lock:
        yield


@contextlib.contextmanager
def _opened(original: Path) -> Iterator[Any]:
    """The PDF open in PDFium (hold :data:`_pdfium_lock`)."""
    import pypdfium2

    try:
        doc = pypdfium2.PdfDocument(original, password="")
    except FileNotFoundError:
        raise
    except Exception as exc:
        log.warning("preview: PDFium cannot open %s: %s", original.name, exc)
        raise Unreadable(UNREADABLE) from exc
    try:
        yield doc
    finally:
        doc.close()


def _page(doc: Any, page: int) -> Any:
    if not 1 <= page <= len(doc):
        raise PageNotFound(PAGE_MISSING)
    try:
        return doc[page - 1]
    except Exception as exc:
        raise Unreadable(UNREADABLE) from exc


def _draw(original: Path, page: int, scale: int) -> bytes:
    with _pdfium_lock, _opened(original) as doc:
        pdf_page = _page(doc, page)
        try:
            width, height = pdf_page.get_size()
            dpi = dpi_for(width, height, scale)
            bitmap = pdf_page.render(scale=dpi / 72, fill_color=(255, 255, 255, 255))
            try:
                image = bitmap.to_pil().convert("RGB")  # a copy: the bitmap is freed
            finally:
                bitmap.close()
        except Exception as exc:
            log.warning("preview: page %d of %s cannot be drawn: %s", page, original.name, exc)
            raise Unreadable(UNREADABLE) from exc
        finally:
            pdf_page.close()
    out = io.BytesIO()  # encoded outside the lock: PIL is thread-safe
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _matched_chars(textpage: Any, text: str) -> list[int]:
    """Indices of the page's characters that the chunk text covers, in order."""
    import pypdfium2.raw as pdfium_c

    raw = textpage.raw
    count = min(pdfium_c.FPDFText_CountChars(raw), MAX_PAGE_CHARS)
    # One character per index (get_text_range would pair surrogates for characters
    # beyond the BMP and shift every index after them).
    page_chars = [pdfium_c.FPDFText_GetUnicode(raw, i) for i in range(count)]
    page_text = "".join(chr(c) if 0 < c < 0x110000 else " " for c in page_chars)
    page_norm, where = normalise(page_text)
    chunk_norm, _ = normalise(text[:MAX_CHUNK_CHARS])
    chosen: list[int] = []
    for start, end in match_spans(page_norm, chunk_norm):
        chosen.extend(range(where[start], where[end - 1] + 1))
    return sorted(set(chosen))


def _line_boxes(pdf_page: Any, textpage: Any, indices: list[int]) -> list[Box]:
    """The characters' boxes merged into one rectangle per line, in percent of the page."""
    import pypdfium2.raw as pdfium_c

    raw_page, raw_text = pdf_page.raw, textpage.raw
    rect = pdfium_c.FS_RECTF()
    dx, dy = ctypes.c_int(), ctypes.c_int()
    # Page space to a 10000 x 10000 device: the page's rotation and crop box applied,
    # and device units are hundredths of a percent.
    size = 10_000

    def device(x: float, y: float) -> tuple[float, float]:
        pdfium_c.FPDF_PageToDevice(raw_page, 0, 0, size, size, 0, x, y, dx, dy)
        return dx.value / 100, dy.value / 100

    lines: list[list[float]] = []  # [x0, y0, x1, y1] in percent
    for i in indices:
        ch = pdfium_c.FPDFText_GetUnicode(raw_text, i)
        if ch in (0, 32, 9, 10, 13, 0xA0) or pdfium_c.FPDFText_IsGenerated(raw_text, i) == 1:
            continue
        # The loose box: the font's height, so the lines of a paragraph are marked alike.
        ok = pdfium_c.FPDFText_GetLooseCharBox(raw_text, i, rect)
        if not ok or rect.right <= rect.left or rect.top <= rect.bottom:
            continue
        ax, ay = device(rect.left, rect.top)
        bx, by = device(rect.right, rect.bottom)
        x0, x1, y0, y1 = min(ax, bx), max(ax, bx), min(ay, by), max(ay, by)
        if lines:
            line = lines[-1]
            middle = (y0 + y1) / 2
            height = max(line[3] - line[1], y1 - y0, 0.1)
            same_line = line[1] <= middle <= line[3] or abs(middle - (line[1] + line[3]) / 2) < (
                height / 3
            )
            # Back to the left, or a wide gap (the next column): a new rectangle.
            if same_line and x0 >= line[0] - height and x0 - line[2] < 4 * height:
                line[0], line[1] = min(line[0], x0), min(line[1], y0)
                line[2], line[3] = max(line[2], x1), max(line[3], y1)
                continue
        lines.append([x0, y0, x1, y1])
    return [
        Box(round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2))
        for x0, y0, x1, y1 in lines
    ]


# --- matching -----------------------------------------------------------------------------

_HYPHENS = frozenset("-\u00ad\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d\x02")


def normalise(text: str) -> tuple[str, list[int]]:
    """``text`` reduced to what survives re-flowing and re-extraction (letters, digits,
    symbols: NFKC, case folded; no spaces, punctuation, hyphens or control characters),
    with the index in ``text`` of each character kept."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace() or ch in _HYPHENS:
            continue
        folded = unicodedata.normalize("NFKC", ch).casefold() if not ch.isascii() else ch.lower()
        for c in folded:
            if unicodedata.category(c)[0] in "LNSM":
                out.append(c)
                where.append(i)
    return "".join(out), where


def _cjk_heavy(text: str) -> bool:
    if not text:
        return False
    wide = sum(1 for c in text if ord(c) >= 0x2E80)
    return wide * 3 >= len(text)


def match_spans(page: str, chunk: str) -> list[tuple[int, int]]:
    """Spans of ``page`` that pieces of ``chunk`` match, the chunk read in order: at each
    place the longest piece of it that the page holds (the whole chunk, when the page
    holds it whole), preferring a place after the previous piece; characters that start
    no piece of :data:`MIN_MATCH` (a heading drawn elsewhere, text of the next page)
    are skipped."""
    if not page or not chunk:
        return []
    least = min(MIN_MATCH_CJK if _cjk_heavy(chunk) else MIN_MATCH, len(chunk))
    spans: list[tuple[int, int]] = []
    i, after = 0, 0
    while i + least <= len(chunk):
        if chunk[i : i + least] not in page:
            i += 1
            continue
        lo, hi = least, len(chunk) - i  # lo: a length that is found
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if chunk[i : i + mid] in page:
                lo = mid
            else:
                hi = mid - 1
        piece = chunk[i : i + lo]
        at = page.find(piece, after)
        if at < 0:
            at = page.find(piece)
        spans.append((at, at + lo))
        after = at + lo
        i += lo
    return spans
