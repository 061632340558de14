"""Scans -> text: images (PNG, JPEG, TIFF) and the image-only pages of PDFs, via OCR.

OCR is the optional ``[ocr]`` extra (``rapidocr-onnxruntime``: ONNX Runtime with the
PP-OCRv4 detection and recognition models and the direction classifier, all inside the
wheel; nothing is downloaded). Without it a scan fails with a reason that says how to
enable it.

The recogniser is loaded once per process, on first use (:func:`engine`), and reused for
every page and document that process reads: the sandbox gives OCR its own long-lived
parser process (its own memory and time limits; see ``ingest/sandbox.py``).

How this module behaves is set by :func:`configure` (the sandbox does, in each parser
process): ``defer`` makes it raise :class:`NeedsOcr` instead of running OCR, so an
ordinary parser process hands a scan over to the OCR process instead of reading it.
"""

from __future__ import annotations

import logging
import os
import statistics
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import IngestError, error_detail
from ingest.parse.pdf_lines import join_lines
from ingest.types import Block, BlockKind, ParsedDocument

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

OCR = "ocr"  # Block.extractor of text read by OCR

# --- reasons (English text = catalog key; Chinese in app/i18n_catalog.py) -----------------

NOT_AN_IMAGE = (
    "The file is named {suffix} but is not a PNG, JPEG or TIFF image; it may be damaged "
    "or mislabelled. Save it again as an image and upload it again."
)
IMAGE_UNREADABLE = (
    "The image could not be decoded ({detail}); it may be damaged or truncated. "
    "Save it again and upload it again."
)
IMAGE_TOO_LARGE = (
    "The image is {megapixels} megapixels, over the limit of {limit} megapixels; it was "
    "not read (it may be a decompression bomb). Scale it down and upload it again."
)
IMAGE_NEEDS_OCR = (
    "The file is an image: its text can only be read with OCR, which is not enabled on "
    "this server. An administrator can enable it (install the OCR extra with pip install "
    "'kb[ocr]'; it is on once installed unless KB_OCR_ENABLED=false; see \"OCR\" in the README), or upload a "
    "version of the document with text."
)
PDF_NEEDS_OCR = (
    "The PDF has no text layer: it looks scanned (pages are images) and needs OCR, which "
    "is not enabled on this server. An administrator can enable it (install the OCR "
    "extra with pip install 'kb[ocr]'; it is on once installed unless KB_OCR_ENABLED=false; see \"OCR\" in the "
    "README), or run the file through OCR (for example 'ocrmypdf') and upload the result."
)
OCR_BROKEN = (
    "OCR is enabled but could not be loaded ({detail}). An administrator should "
    "reinstall the OCR extra (pip install 'kb[ocr]'); then retry the document."
)
OCR_PAGE_TIMEOUT = (
    "OCR of page {page} took longer than {seconds} s (KB_OCR_PAGE_TIMEOUT_SECONDS) and "
    "was stopped; the scan may be very large or dense. Upload a smaller or clearer scan."
)
OCR_TIMEOUT = (
    "OCR of the document took longer than {seconds} s (KB_OCR_TIMEOUT_SECONDS) and was "
    "stopped after {pages} pages. Split it into smaller files and upload them again."
)
TOO_MANY_PAGES = (
    "The document has {pages} scanned pages, more than the {limit} that OCR reads per "
    "document (KB_OCR_MAX_PAGES); it was not read. Split it into smaller files, or "
    "upload a version with a text layer."
)
NO_TEXT_FOUND = (
    "OCR found no text in the scanned pages. Check that the right file was uploaded and "
    "that the scan is legible."
)

# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OcrConfig:
    """How OCR runs in this process (the sandbox sets it from the KB_OCR_* settings)."""

    enabled: bool = False  # Settings.ocr_active: KB_OCR_ENABLED, or the [ocr] extra installed
    # Raise NeedsOcr instead of running OCR (an ordinary parser process hands it over).
    defer: bool = False
    max_pages: int = 50
    dpi: int = 200  # PDF pages are rendered at this resolution (bench/ocr.py)
    max_megapixels: float = 50.0
    low_confidence: float = 0.8
    threads: int = 0  # ONNX Runtime intra-op threads; 0: half the cores, 1 to 4
    use_gpu: bool = True  # the CUDA execution provider where ONNX Runtime has it


class NeedsOcr(IngestError):
    """The file needs OCR, which this process defers (``OcrConfig.defer``): the sandbox
    reads it again in the OCR process. ``pages``: pages to OCR (0 when not yet known)."""

    def __init__(self, pages: int) -> None:
        super().__init__(f"needs OCR of {pages} pages")
        self.pages = pages


_config = OcrConfig()
_progress: Callable[[int, int], None] | None = None


def configure(config: OcrConfig, *, progress: Callable[[int, int], None] | None = None) -> None:
    """Set how this process runs OCR; ``progress(done, total)`` hears of each OCR'd page."""
    global _config, _progress
    _config = config
    _progress = progress


def current_config() -> OcrConfig:
    return _config


# --- the engine (one per process, loaded on first use) ------------------------------------

_engine: Any = None
_engine_lock = threading.Lock()
_unavailable: str | None = None


def available() -> bool:
    """True when the OCR extra is installed (found, not imported: importing ONNX Runtime
    and OpenCV costs a process ~100 MB, which only the OCR process pays)."""
    global _unavailable
    if _unavailable is None:
        missing = [name for name in _EXTRA if not _found(name)]
        _unavailable = ", ".join(missing)
        if missing:
            log.info("OCR is not available: %s not installed", _unavailable)
    return _unavailable == ""


_EXTRA = ("rapidocr_onnxruntime", "onnxruntime", "cv2")


def _found(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def providers() -> list[str]:
    """ONNX Runtime's execution providers available here."""
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def engine() -> Any:
    """The process's RapidOCR instance, created on first use from the packaged models."""
    global _engine
    with _engine_lock:
        if _engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except Exception as exc:  # installed, but broken (a missing shared library)
                detail = f"{type(exc).__name__}: {error_detail(exc)}"[:200]
                raise IngestError(OCR_BROKEN.format(detail=detail)) from exc

            cfg = _config
            gpu = cfg.use_gpu and "CUDAExecutionProvider" in providers()
            # Half the cores (at most 4): the other half keeps parsing and embedding.
            threads = cfg.threads or max(1, min(4, (os.cpu_count() or 1) // 2))
            _engine = RapidOCR(
                intra_op_num_threads=threads,
                inter_op_num_threads=1,
                # Pages are rendered at the dpi we chose: do not shrink them again.
                max_side_len=4096,
                # No per-line 180° classifier: scans are upright, and it turned long
                # upright lines of our test pages upside down (read as "s s s").
                use_cls=False,
                det_use_cuda=gpu,
                cls_use_cuda=gpu,
                rec_use_cuda=gpu,
            )
            log.info("OCR engine loaded (%s, %d threads)", "CUDA" if gpu else "CPU", threads)
        return _engine


# --- recognised lines -> blocks ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised text box: its text, confidence and bounding box (pixels)."""

    text: str
    score: float
    left: float
    top: float
    right: float
    bottom: float

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True, slots=True)
class PageText:
    """A page's OCR result: paragraph blocks (page set) and its mean confidence."""

    blocks: tuple[Block, ...]
    confidence: float | None  # None: no text found

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


def recognise(image: Image.Image) -> list[OcrLine]:
    """The text boxes RapidOCR finds in ``image``, top to bottom."""
    import numpy as np

    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 3:
        array = np.ascontiguousarray(array[:, :, ::-1])  # RGB -> BGR, as OpenCV reads
    result, _elapsed = engine()(array)
    lines: list[OcrLine] = []
    for box, text, score in result or ():
        text = " ".join(str(text).split())
        if not text:
            continue
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        lines.append(OcrLine(text, float(score), min(xs), min(ys), max(xs), max(ys)))
    return lines


def _rows(lines: Sequence[OcrLine]) -> list[list[OcrLine]]:
    """Boxes on the same visual line (they overlap vertically by half), left to right."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.top + ln.bottom) / 2):
        if rows:
            row = rows[-1]
            top = min(x.top for x in row)
            bottom = max(x.bottom for x in row)
            overlap = min(bottom, line.bottom) - max(top, line.top)
            if overlap > 0.5 * min(bottom - top, line.height):
                row.append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: ln.left) for row in rows]


def _row_text(row: Sequence[OcrLine]) -> str:
    """The pieces of one row, left to right: CJK meets anything without a space."""
    out = row[0].text
    for piece in row[1:]:
        wide = _is_wide(out[-1]) or _is_wide(piece.text[0])
        out += piece.text if wide else " " + piece.text
    return out


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _ems(text: str) -> float:
    """The width of ``text`` in ems, roughly: CJK is one em a character, Latin about half."""
    return sum(1.0 if _is_wide(ch) else 0.28 if ch == " " else 0.55 for ch in text) or 1.0


def _font_size(row: Sequence[OcrLine]) -> float:
    """A row's font size in pixels, from its width per em: the detector's box heights
    vary too much with ascenders, descenders and padding to tell 11 pt from 14 pt."""
    ems = sum(_ems(x.text) for x in row)
    return sum(x.right - x.left for x in row) / ems


def blocks_from_lines(lines: Sequence[OcrLine], page: int | None) -> PageText:
    """Paragraph (and obvious heading) blocks from recognised lines, in reading order.

    Lines are grouped into paragraphs where the vertical gap between them is wider than
    about three quarters of a line, or where the font size changes; a short lone line in
    a font clearly larger than the page's body text is a heading. Each block keeps the
    mean confidence of its lines, weighted by length.
    """
    rows = _rows(lines)
    if not rows:
        return PageText((), None)
    heights = [max(x.bottom for x in r) - min(x.top for x in r) for r in rows]
    sizes = [_font_size(r) for r in rows]
    line_height = statistics.median(heights)
    # The body's size: the median by characters, so a few big headings do not move it.
    weighted = sorted(
        (size, sum(len(x.text) for x in r)) for size, r in zip(sizes, rows, strict=True)
    )
    half, seen, body = sum(w for _, w in weighted) / 2, 0, weighted[-1][0]
    for size, weight in weighted:
        seen += weight
        if seen >= half:
            body = size
            break
    groups: list[list[int]] = [[0]]
    for i in range(1, len(rows)):
        gap = min(x.top for x in rows[i]) - max(x.bottom for x in rows[i - 1])
        size_change = max(sizes[i], sizes[i - 1]) >= 1.15 * min(sizes[i], sizes[i - 1])
        if gap > 0.75 * line_height or size_change:
            groups.append([i])
        else:
            groups[-1].append(i)
    blocks: list[Block] = []
    scores: list[tuple[float, int]] = []
    for group in groups:
        pieces = [x for i in group for x in rows[i]]
        weight = sum(len(x.text) for x in pieces)
        confidence = sum(x.score * len(x.text) for x in pieces) / max(weight, 1)
        scores.append((confidence, weight))
        text = join_lines("\n".join(_row_text(rows[i]) for i in group))
        size = statistics.mean(sizes[i] for i in group)
        heading = (
            len(group) == 1
            and size >= 1.15 * body
            and len(text) <= 80
            and not text.endswith((".", "。", ",", "，", ";", "；", ":", "："))
        )
        blocks.append(
            Block(
                BlockKind.HEADING if heading else BlockKind.PARAGRAPH,
                text,
                level=(1 if size >= 1.4 * body else 2) if heading else 0,
                page=page,
                extractor=OCR,
                ocr_confidence=round(confidence, 4),
            )
        )
    total = sum(w for _, w in scores)
    mean = sum(c * w for c, w in scores) / total if total else None
    return PageText(tuple(blocks), None if mean is None else round(mean, 4))


def ocr_page(image: Image.Image, page: int | None) -> PageText:
    return blocks_from_lines(recognise(image), page)


# --- images ----------------------------------------------------------------------------------

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
)


def image_format(head: bytes) -> str | None:
    """ "PNG", "JPEG" or "TIFF" from the file's first bytes; None for anything else."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _unreadable(exc: BaseException) -> IngestError:
    return IngestError(IMAGE_UNREADABLE.format(detail=error_detail(exc)))


def _check_size(width: int, height: int, limit: float) -> None:
    megapixels = width * height / 1e6
    if megapixels > limit:
        raise IngestError(
            IMAGE_TOO_LARGE.format(megapixels=f"{megapixels:.0f}", limit=f"{limit:g}")
        )


def _frames(path: Path, cfg: OcrConfig) -> Iterator[Image.Image]:
    """The image's frames (a TIFF may have many), each checked against the size limit
    before it is decoded."""
    from PIL import Image, ImageSequence

    # Our own limit is checked on the header; PIL's bomb guard stays as a second one.
    try:
        image = Image.open(path)
    except Exception as exc:
        raise _image_error(exc, cfg) from exc
    with image:
        frames = int(getattr(image, "n_frames", 1) or 1)
        if frames > cfg.max_pages:
            raise IngestError(TOO_MANY_PAGES.format(pages=frames, limit=cfg.max_pages))
        for frame in ImageSequence.Iterator(image):
            _check_size(*frame.size, cfg.max_megapixels)
            try:
                frame.load()
                # Scans are grey: one channel is a third of the memory and the same text.
                yield frame.convert("L") if frame.mode != "L" else frame.copy()
            except IngestError:
                raise
            except MemoryError:
                raise
            except Exception as exc:
                raise _unreadable(exc) from exc


def parse_image(path: Path) -> ParsedDocument:
    """OCR a PNG, JPEG or TIFF (one page per TIFF frame) into paragraph blocks."""
    with path.open("rb") as f:
        head = f.read(16)
    if image_format(head) is None:
        raise IngestError(NOT_AN_IMAGE.format(suffix=path.suffix.lower() or "an image"))
    cfg = _config
    if not cfg.enabled or not available():
        raise IngestError(IMAGE_NEEDS_OCR)
    count = _check_header(path, cfg)
    if cfg.defer:
        raise NeedsOcr(count)
    blocks: list[Block] = []
    low: list[int] = []
    pages = 0
    for number, frame in enumerate(_frames(path, cfg), start=1):
        pages = number
        if _progress is not None:
            _progress(number - 1, count)
        text = ocr_page(frame, number)
        blocks.extend(text.blocks)
        if text.confidence is not None and text.confidence < cfg.low_confidence:
            low.append(number)
    if _progress is not None:
        _progress(pages, pages)
    if not blocks:
        raise IngestError(NO_TEXT_FOUND)
    return ParsedDocument(
        blocks=tuple(blocks),
        page_count=pages,
        notes=tuple(ocr_notes(pages, low)),
    )


def _check_header(path: Path, cfg: OcrConfig) -> int:
    """The cheap checks (decodable header, frame count, size) before OCR is queued; the
    number of frames."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            frames = int(getattr(image, "n_frames", 1) or 1)
            if frames > cfg.max_pages:
                raise IngestError(TOO_MANY_PAGES.format(pages=frames, limit=cfg.max_pages))
            _check_size(*image.size, cfg.max_megapixels)
            return frames
    except IngestError:
        raise
    except Exception as exc:
        raise _image_error(exc, cfg) from exc


def _image_error(exc: Exception, cfg: OcrConfig) -> IngestError:
    """What PIL's failure to read an image header means to a person: past PIL's own
    decompression-bomb guard (a second one behind ours), too large; else unreadable."""
    from PIL import Image

    if isinstance(exc, Image.DecompressionBombError):
        return IngestError(
            IMAGE_TOO_LARGE.format(megapixels="over 178", limit=f"{cfg.max_megapixels:g}")
        )
    return _unreadable(exc)


def ocr_notes(pages: int, low: Sequence[int]) -> list[str]:
    """ParsedDocument.notes: how many pages were OCR'd, which had a low confidence."""
    notes = [f"ocr-pages={pages}"]
    if low:
        notes.append("ocr-low-confidence-pages=" + ",".join(str(p) for p in low))
    return notes


def ocr_facts(notes: Sequence[str]) -> tuple[int | None, list[int] | None]:
    """From ParsedDocument.notes: the pages OCR'd (None: none) and the low-confidence
    pages among them (None: none)."""
    pages: int | None = None
    low: list[int] | None = None
    for note in notes:
        key, _, value = note.partition("=")
        if key == "ocr-pages":
            pages = int(value) or None
        elif key == "ocr-low-confidence-pages":
            low = [int(p) for p in value.split(",") if p.isdigit()] or None
    return pages, low


# --- PDF pages -------------------------------------------------------------------------------


def ocr_pdf_pages(
    render: Callable[[int, int, float], Image.Image | None], indices: Sequence[int]
) -> dict[int, PageText]:
    """OCR the PDF pages with 0-based ``indices``; ``render(index, dpi, max_megapixels)``
    draws one (None when it cannot). The caller checked ``gate_pdf_pages`` first."""
    cfg = _config
    out: dict[int, PageText] = {}
    for done, index in enumerate(indices):
        if _progress is not None:
            _progress(done, len(indices))
        image = render(index, cfg.dpi, cfg.max_megapixels)
        if image is None:
            log.warning("pdf page %d: could not be rendered for OCR", index + 1)
            continue
        text = ocr_page(image, index + 1)
        out[index] = text
    if _progress is not None:
        _progress(len(indices), len(indices))
    return out


def gate_pdf_pages(pages: int, *, total: int, any_text: bool) -> bool:
    """Whether ``pages`` scanned pages (of ``total``) of a PDF are OCR'd here (True), or
    raise why not.

    Without OCR a PDF that has text elsewhere is read without its scanned pages (False);
    one that has none fails with how to enable OCR. Over the page cap a mostly scanned
    PDF fails; one mostly of text (pictures with short captions, say) is read without
    OCR (False). In a process that defers OCR it raises NeedsOcr.
    """
    cfg = _config
    if not cfg.enabled or not available():
        if any_text:
            return False
        raise IngestError(PDF_NEEDS_OCR)
    if pages > cfg.max_pages:
        if any_text and pages * 2 <= total:
            return False
        raise IngestError(TOO_MANY_PAGES.format(pages=pages, limit=cfg.max_pages))
    if cfg.defer:
        raise NeedsOcr(pages)
    return True
