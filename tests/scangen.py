"""Make "scans" for the OCR tests and bench: our own text drawn into PDFs with reportlab
(tests/pdfgen's CJK font), rendered to PNG/JPEG/TIFF with pypdfium2, and image-only or
mixed PDFs with those renders embedded as the page picture.

Pages are small (a few lines of large text) so OCR on two cores takes a few seconds.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pypdfium2
from PIL import Image
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from tests.pdfgen import CJK_FONT

# Our own text: a short notice in English and in Chinese.
ENGLISH_LINES = (
    "Lumen Hub backup notice",
    "",
    "The hub copies your photos to the spare disk",
    "every night at two o'clock. Keep the spare",
    "disk plugged in and the hub switched on.",
    "",
    "A red light means the last copy failed.",
)
CHINESE_LINES = (
    "年假申请须知",
    "",
    "员工入职满一年后每年可享受十天带薪年假",
    "年假需要提前三个工作日在系统中提交申请",
    "",
    "当年未休完的年假可以顺延到次年第一季度",
)
PAGE_SIZE = (460.0, 260.0)  # points: a card, not an A4 page


def text_of(lines: Sequence[str]) -> str:
    """The text as the page shows it, blank lines between paragraphs."""
    return "\n".join(lines).strip()


def draw_page(c: canvas.Canvas, lines: Sequence[str], *, cjk: bool) -> None:
    font = CJK_FONT if cjk else "Helvetica"
    bold = CJK_FONT if cjk else "Helvetica-Bold"
    if cjk:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    y = PAGE_SIZE[1] - 40
    for i, line in enumerate(lines):
        if not line:
            y -= 12
            continue
        heading = i == 0
        size = 22.0 if heading else 15.0
        c.setFont(bold if heading else font, size)
        c.drawString(24, y, line)
        y -= size * 1.45


def text_pdf(path: Path, pages: Sequence[tuple[Sequence[str], bool]]) -> Path:
    """A PDF with a text layer: one page per (lines, cjk)."""
    c = canvas.Canvas(str(path), pagesize=PAGE_SIZE)
    for lines, cjk in pages:
        draw_page(c, lines, cjk=cjk)
        c.showPage()
    c.save()
    return path


def render(pdf: Path, index: int = 0, *, dpi: int = 200) -> Image.Image:
    """Page ``index`` of ``pdf`` as a grey image, as a scanner at ``dpi`` would see it."""
    doc = pypdfium2.PdfDocument(pdf)
    try:
        page = doc[index]
        image = page.render(scale=dpi / 72, grayscale=True).to_pil()
        page.close()
        return image.convert("L")
    finally:
        doc.close()


def scan(path: Path, lines: Sequence[str], *, cjk: bool, dpi: int = 200) -> Path:
    """An image file (format from the suffix: .png, .jpg, .tif) of one page of ``lines``."""
    pdf = text_pdf(path.with_suffix(".src.pdf"), [(lines, cjk)])
    image = render(pdf, dpi=dpi)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
    image.save(path, format=fmt[path.suffix.lower()], dpi=(dpi, dpi))
    return path


def multi_tiff(path: Path, pages: Sequence[tuple[Sequence[str], bool]], *, dpi: int = 200) -> Path:
    """A multi-page TIFF: one frame per page."""
    pdf = text_pdf(path.with_suffix(".src.pdf"), pages)
    images = [render(pdf, i, dpi=dpi) for i in range(len(pages))]
    images[0].save(path, format="TIFF", save_all=True, append_images=images[1:])
    return path


def image_pdf(
    path: Path, pages: Sequence[tuple[Sequence[str], bool, bool]], *, dpi: int = 200
) -> Path:
    """A PDF whose pages are (lines, cjk, scanned): a scanned page is only a picture of
    the text (no text layer), the others are drawn as text."""
    src = text_pdf(path.with_suffix(".src.pdf"), [(lines, cjk) for lines, cjk, _ in pages])
    c = canvas.Canvas(str(path), pagesize=PAGE_SIZE)
    for i, (lines, cjk, scanned) in enumerate(pages):
        if scanned:
            buffer = io.BytesIO()
            render(src, i, dpi=dpi).save(buffer, format="PNG")
            buffer.seek(0)
            c.drawImage(ImageReader(buffer), 0, 0, width=PAGE_SIZE[0], height=PAGE_SIZE[1])
        else:
            draw_page(c, lines, cjk=cjk)
        c.showPage()
    c.save()
    return path
