"""PDF -> per-page paragraph blocks, with headings from the PDF outline (bookmarks)."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

from app.text.titles import declared_title
from ingest.errors import IngestError, error_detail
from ingest.parse.outline import OutlineEntry, place_headings
from ingest.parse.pdf_furniture import furniture, running_keys, strip_repeats
from ingest.parse.pdf_headings import find_headings
from ingest.parse.pdf_lines import Line, join_lines
from ingest.parse.pdf_text import PdfiumReader, score_text
from ingest.types import Block, BlockKind, ParsedDocument

log = logging.getLogger(__name__)

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


# Which extractor produced a page's text (Block.extractor).
PYPDF = "pypdf"
PDFIUM = "pdfium"
OCR = "ocr"  # read from the rendered page by OCR (ingest/parse/ocr.py)

# A page with fewer non-space characters than this that draws an image has no usable
# text layer (a scan, maybe with a page number on it): it is read by OCR where enabled.
_SCAN_MAX_TEXT = 20


@dataclass(frozen=True, slots=True)
class _Page:
    number: int  # 1-based
    text: str
    extractor: str = PYPDF


def parse_pdf(path: Path) -> ParsedDocument:
    """Parse a PDF file into heading and paragraph blocks that carry their page."""
    reader = _open(path)
    try:
        page_count = len(reader.pages)
    except Exception as exc:
        raise _damaged(exc, path) from exc
    if page_count == 0:
        raise IngestError("The PDF has no pages. Export the document again and re-upload it.")

    pages, failed, over_limit = _extract_pages(reader, page_count)
    with PdfiumReader(path) as pdfium:
        retry = [i for i in failed if i not in over_limit]
        pages, rescued = _read_failed_again(pdfium, pages, retry)
        pages, garbled = _read_unreadable_again(pdfium, pages)
        fallback = sum(p.extractor != PYPDF for p in pages)
        pages, reordered = _read_columns_again(pdfium, pages)
        pages, ocr_notes, confidence = _read_scanned(reader, pdfium, pages, set(over_limit))
        if not any(p.text.strip() for p in pages):
            raise _no_text(reader, pdfium, page_count, len(failed))

        # Running headers, footers and page numbers are no part of any section.
        keys = running_keys([p.text.split("\n") for p in pages])
        texts = strip_repeats([p.text for p in pages], keys)
        pages = [replace(p, text=text) for p, text in zip(pages, texts, strict=True)]

        outline = _read_outline(reader, page_count)
        strict = False
        if not outline:
            outline = _font_headings(pdfium, page_count, keys, set(over_limit))
            strict = True

    notes: list[str] = []
    if outline:
        notes.append("pdf-font-headings" if strict else "pdf-outline")
    if len(failed) > rescued:
        notes.append(f"pdf-unreadable-pages={len(failed) - rescued}")
    if fallback:
        notes.append(f"pdf-fallback-pages={fallback}")
    if reordered:
        notes.append(f"pdf-column-pages={reordered}")
    if garbled:
        notes.append(f"pdf-garbled-pages={garbled}")
    notes.extend(ocr_notes)

    blocks: list[Block] = []
    by_page: dict[int, list[OutlineEntry]] = {}
    for entry in outline:
        by_page.setdefault(entry.page, []).append(entry)
    for page in pages:
        for piece in place_headings(page.text, by_page.get(page.number, []), strict=strict):
            if isinstance(piece, OutlineEntry):
                blocks.append(
                    Block(BlockKind.HEADING, piece.title, piece.level, page.number, page.extractor)
                )
            else:
                blocks.extend(_paragraphs(piece, page.number, page.extractor))
    if confidence:
        blocks = [
            replace(b, ocr_confidence=confidence.get(b.page or 0)) if b.extractor == OCR else b
            for b in blocks
        ]
    if strict and not any(b.kind is BlockKind.HEADING for b in blocks):
        notes = [n for n in notes if n != "pdf-font-headings"]  # none was found in the text

    meta_title = _metadata_title(reader)
    title = meta_title or (outline[0].title if outline and not strict else None)
    return ParsedDocument(
        blocks=tuple(blocks),
        title=title,
        page_count=page_count,
        notes=tuple(notes),
        meta_title=meta_title,
    )


def _open(path: Path) -> PdfReader:
    """Open the PDF, decrypting it when it has no user password."""
    try:
        reader = PdfReader(path)
        if not reader.is_encrypted:
            return reader
        # An empty user password opens files that only restrict editing or printing
        # (pypdf already tries it on open; asking again tells us whether it worked).
        result = reader.decrypt("")
    except DependencyError as exc:
        raise IngestError(
            "The PDF is encrypted with AES, which this server cannot decrypt (the "
            "'cryptography' package is missing). Ask an administrator to install it, "
            "or upload an unencrypted copy."
        ) from exc
    except Exception as exc:
        # pypdf raises many kinds of errors (and plain ValueError, KeyError ...) for
        # damaged files; all of them mean the same to the person who uploaded it.
        raise _damaged(exc, path) from exc
    if result == PasswordType.NOT_DECRYPTED:
        raise _needs_password()
    return reader


def _extract_pages(reader: PdfReader, page_count: int) -> tuple[list[_Page], list[int], list[int]]:
    """Text of every page (empty when a page fails), the 0-based indices of the pages that
    failed, and of those the ones over pypdf's decompression limit."""
    pages: list[_Page] = []
    failed: list[int] = []
    over_limit: list[int] = []
    for index in range(page_count):
        try:
            text = reader.pages[index].extract_text() or ""
        except FileNotDecryptedError as exc:
            raise _needs_password() from exc
        except MemoryError:
            raise  # the sandbox turns it into a clear failure; a page must not hide it
        except LimitReachedError as exc:
            failed.append(index)
            text = ""
            # A stream that inflates past pypdf's cap is a decompression bomb far more
            # often than a real page, and PDFium has no cap: such a page is not retried.
            # pypdf raises the same error for reference loops, which PDFium may read.
            if "decompress" in str(exc) or "exceeds" in str(exc):
                log.warning("pdf page %d: over the size limit, skipped: %s", index + 1, exc)
                over_limit.append(index)
            else:
                log.warning("pdf page %d: text extraction failed: %s", index + 1, exc)
        except Exception as exc:
            # One broken page should not lose the rest of the document.
            log.warning("pdf page %d: text extraction failed: %s", index + 1, exc)
            failed.append(index)
            text = ""
        pages.append(_Page(index + 1, _clean(text)))
    return pages, failed, over_limit


def _read_failed_again(
    pdfium: PdfiumReader, pages: list[_Page], failed: list[int]
) -> tuple[list[_Page], int]:
    """Pages pypdf could not read, read with PDFium; also how many of them it could."""
    out = list(pages)
    rescued = 0
    for i in failed:
        text = pdfium.page_text(i)
        if text is not None and (text := _clean(text)).strip():
            out[i] = _Page(pages[i].number, text, PDFIUM)
            rescued += 1
    if failed:
        log.info("pdf: %d of %d failed pages read with pdfium", rescued, len(failed))
    return out, rescued


def _read_unreadable_again(pdfium: PdfiumReader, pages: list[_Page]) -> tuple[list[_Page], int]:
    """Pages whose pypdf text looks like garbage, read again with PDFium where that is
    better; also how many pages still look like garbage afterwards."""
    # Fonts without a ToUnicode map (CJK CID fonts, TeX math fonts) make pypdf return
    # glyph numbers as text; PDFium also reads the embedded fonts' own tables.
    flagged = [
        i
        for i, page in enumerate(pages)
        if page.extractor == PYPDF and score_text(page.text).unreadable
    ]
    if not flagged:
        return pages, 0
    out = list(pages)
    garbled = 0
    for i in flagged:
        text = pdfium.page_text(i)
        if text is not None and _better(text := _clean(text), pages[i].text):
            out[i] = _Page(pages[i].number, text, PDFIUM)
        garbled += score_text(out[i].text).unreadable
    log.info("pdf: %d of %d pages read again with pdfium", len(flagged), len(pages))
    return out, garbled


def _read_columns_again(pdfium: PdfiumReader, pages: list[_Page]) -> tuple[list[_Page], int]:
    """Two-column pages drawn interleaved (left line, right line, ...: Word and some
    generators do), read again with PDFium in column order; also how many."""
    out = list(pages)
    reordered = 0
    for i, page in enumerate(pages):
        if not page.text.strip():
            continue
        text = pdfium.column_text(i)
        if text is None or not (text := _clean(text)).strip():
            continue
        new, old = score_text(text), score_text(page.text)
        # Not when PDFium misses text that pypdf read, or reads it worse.
        if new.content * 10 < old.content * 9 or (new.unreadable and not old.unreadable):
            continue
        out[i] = _Page(page.number, text, PDFIUM)
        reordered += 1
    if reordered:
        log.info("pdf: %d of %d pages read again in column order", reordered, len(pages))
    return out, reordered


def _read_scanned(
    reader: PdfReader, pdfium: PdfiumReader, pages: list[_Page], skip: Collection[int]
) -> tuple[list[_Page], list[str], dict[int, float | None]]:
    """Pages without a usable text layer that draw an image, read by OCR (where it is
    enabled; see ``ocr.gate_pdf_pages``); also the OCR notes and each OCR'd page's mean
    confidence by page number."""
    from ingest.parse import ocr

    scanned = [
        i
        for i, page in enumerate(pages)
        if i not in skip
        and len("".join(page.text.split())) < _SCAN_MAX_TEXT
        and _has_images(reader, pdfium, i)
    ]
    if not scanned:
        return pages, [], {}
    others = any(p.text.strip() for i, p in enumerate(pages) if i not in scanned)
    if not ocr.gate_pdf_pages(len(scanned), total=len(pages), any_text=others):
        log.info("pdf: %d scanned pages left unread (OCR off, or over its cap)", len(scanned))
        return pages, [f"ocr-skipped-pages={len(scanned)}"], {}
    read = ocr.ocr_pdf_pages(pdfium.render, scanned)
    out = list(pages)
    confidence: dict[int, float | None] = {}
    low: list[int] = []
    for i, result in read.items():
        text = _clean(result.text)
        # A page whose text layer says more than OCR could read keeps its text.
        if len("".join(text.split())) <= len("".join(pages[i].text.split())):
            continue
        out[i] = _Page(pages[i].number, text, OCR)
        confidence[pages[i].number] = result.confidence
        if (
            result.confidence is not None
            and result.confidence < ocr.current_config().low_confidence
        ):
            low.append(pages[i].number)
    log.info("pdf: %d of %d scanned pages read by OCR", len(confidence), len(scanned))
    if not others and not confidence:
        raise IngestError(ocr.NO_TEXT_FOUND)
    return out, ocr.ocr_notes(len(confidence), low), confidence


def _font_headings(
    pdfium: PdfiumReader, page_count: int, running: frozenset[str], skip: Collection[int]
) -> list[OutlineEntry]:
    """Headings guessed from the fonts and numbering of the PDFium-measured lines (pages in
    ``skip`` are not measured: PDFium would inflate their oversized streams)."""
    measured: dict[int, list[Line]] = {}
    for index in range(page_count):
        if index in skip:
            continue
        lines = pdfium.page_lines(index)
        if lines is None:
            continue
        drop = furniture([line.text for line in lines], running)
        measured[index + 1] = [line for i, line in enumerate(lines) if i not in drop]
    return find_headings(measured)


def _no_text(reader: PdfReader, pdfium: PdfiumReader, page_count: int, failed: int) -> IngestError:
    """Why a PDF gave no text at all, in words its uploader can act on."""
    if any(_has_images(reader, pdfium, i) for i in range(page_count)):
        return IngestError(
            "The PDF has no text layer: it looks scanned (pages are images) and needs OCR. "
            "Run it through OCR (for example 'ocrmypdf') and upload the result."
        )
    if failed == page_count:
        return IngestError(
            "The PDF's pages could not be read: the file is damaged, or its content "
            "streams are over the size limit. Export or download it again and re-upload it."
        )
    if not any(_has_content(reader, i) for i in range(page_count)):
        return IngestError(
            "The PDF's pages are blank: they have no text and no images. "
            "Check that the right file was uploaded."
        )
    return IngestError(
        "The PDF's text could not be extracted: its pages draw no images, but their "
        "content streams are damaged, over the size limit, or draw text as shapes only. "
        "Export the document again (as PDF with text) and re-upload it."
    )


def _has_images(reader: PdfReader, pdfium: PdfiumReader, index: int) -> bool:
    """True when the page draws an image, as listed in its resources (or, when they cannot
    be read, as PDFium sees it)."""
    # The resources are enough and cheap: PDFium would have to parse (and decompress)
    # the content stream, which may be the very bomb that left the page empty.
    try:
        return _resources_have_image(reader.pages[index].get("/Resources"), depth=0)
    except Exception as exc:
        log.warning("pdf page %d: resources unreadable: %s", index + 1, exc)
    return bool(pdfium.has_images(index))


def _resources_have_image(resources: Any, depth: int) -> bool:
    # Images can hide inside form XObjects (one level is common, more is rare).
    if resources is None or depth > 3:
        return False
    resources = resources.get_object()
    xobjects = resources.get("/XObject")
    if xobjects is None:
        return False
    for ref in xobjects.get_object().values():
        xobject = ref.get_object()
        subtype = xobject.get("/Subtype")
        if subtype == "/Image":
            return True
        if subtype == "/Form" and _resources_have_image(xobject.get("/Resources"), depth + 1):
            return True
    return False


def _has_content(reader: PdfReader, index: int) -> bool:
    """True when the page has a content stream with any bytes (not decoded)."""
    try:
        contents = reader.pages[index].get("/Contents")
        if contents is None:
            return False
        contents = contents.get_object()
        streams = contents if isinstance(contents, list) else [contents]
        return any(len(s.get_object()._data or b"") > 0 for s in streams)
    except Exception:
        return True


def _better(candidate: str, current: str) -> bool:
    """True when ``candidate`` has a smaller share of garbage than ``current`` and is not
    much shorter (a page PDFium reads as nearly empty keeps pypdf's text)."""
    new, old = score_text(candidate), score_text(current)
    return new.share < old.share and new.content * 2 >= old.content


def _clean(text: str) -> str:
    """Normalise line ends and strip trailing spaces from every line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _paragraphs(text: str, page: int, extractor: str = PYPDF) -> list[Block]:
    """Split page text into paragraph blocks at blank lines, joining wrapped lines."""
    blocks = []
    for part in _PARAGRAPH_BREAK.split(text):
        part = join_lines(part.strip("\n"))
        if part.strip():
            blocks.append(Block(BlockKind.PARAGRAPH, part, page=page, extractor=extractor))
    return blocks


def _read_outline(reader: PdfReader, page_count: int) -> list[OutlineEntry]:
    """The outline flattened in reading order, with levels; bad entries are skipped."""
    try:
        outline = reader.outline
    except Exception as exc:
        log.warning("pdf outline unreadable: %s", exc)
        return []
    entries: list[OutlineEntry] = []
    _walk(reader, outline, 1, page_count, entries)
    return entries


def _walk(
    reader: PdfReader, items: Any, level: int, page_count: int, out: list[OutlineEntry]
) -> None:
    # pypdf's outline is a list of destinations, where a nested list holds the
    # children of the destination just before it.
    for item in items:
        if isinstance(item, list):
            _walk(reader, item, level + 1, page_count, out)
            continue
        try:
            title = " ".join(str(item.title or "").split())
            page_index = reader.get_destination_page_number(item)
        except Exception:
            continue
        if title and page_index is not None and 0 <= page_index < page_count:
            out.append(OutlineEntry(title=title, level=level, page=page_index + 1))


def _metadata_title(reader: PdfReader) -> str | None:
    try:
        meta = reader.metadata
        title = meta.title if meta else None
    except Exception:
        return None
    # Tools stamp placeholders ("untitled" is reportlab's default, "Microsoft Word -
    # a.doc", a path) that name nothing.
    return declared_title(title)


def _damaged(exc: BaseException, path: Path) -> IngestError:
    detail = error_detail(exc)
    if _is_truncated(path):
        return IngestError(
            "The PDF is incomplete: it stops before its end marker (%%EOF), so the upload "
            f"or download was probably cut off ({detail}). Upload the complete file again."
        )
    return IngestError(
        f"The PDF is damaged and cannot be read ({detail}). "
        "Download or export it again and re-upload it."
    )


def _is_truncated(path: Path) -> bool:
    """True when the file lacks the %%EOF marker that ends every complete PDF."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 2048))
            return b"%%EOF" not in f.read()
    except OSError:
        return False


def _needs_password() -> IngestError:
    return IngestError(
        "The PDF is protected by a password that is needed to open it. "
        "Remove the password (save an unprotected copy) and upload it again."
    )
