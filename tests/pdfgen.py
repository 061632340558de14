"""Write real PDFs for the parser tests with reportlab (and pypdf for encryption).

All text is original: an install guide for a fictional product ("Lumen Hub") and a
Chinese FAQ about leave policy. Chinese uses reportlab's built-in CID font
``STSong-Light`` (Adobe-GB1); pypdf reads its text back correctly, so no font file is
needed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

CJK_FONT = "STSong-Light"
_MARGIN = 72.0


@dataclass(frozen=True)
class H:
    """A heading: drawn large and, when ``bookmark`` is true, added to the outline."""

    level: int  # 1 = top
    text: str
    bookmark: bool = True
    outline_title: str | None = None  # the bookmark's title when it differs from the text


@dataclass(frozen=True)
class P:
    """A paragraph of body text."""

    text: str


Page = list[H | P]

ENGLISH_TITLE = "Lumen Hub Installation Guide"
ENGLISH_PAGES: list[Page] = [
    [
        H(1, "1 Getting started"),
        P(
            "Lumen Hub is a small home server that keeps photos and notes in one place. "
            "This guide walks through unpacking, installing and tuning it."
        ),
        H(2, "1.1 What is in the box"),
        P(
            "The box holds the hub, a power brick, a flat network cable and a card with "
            "the recovery code. Keep the card somewhere safe."
        ),
        H(2, "1.2 Requirements"),
        P("You need a router with a free port and a browser from the last two years."),
    ],
    [
        H(1, "2 Installing"),
        P(
            "Installing takes about ten minutes. If something fails, see Troubleshooting "
            "in chapter three before calling support."
        ),
        H(2, "2.1 On Linux"),
        H(3, "2.1.1 Debian and Ubuntu"),
        P(
            "Add the Lumen package source, then install the lumen-agent package with apt. "
            "The agent starts at boot and finds the hub on the local network."
        ),
    ],
    [
        P(
            "When the agent has found the hub, it prints the pairing number. Type that "
            "number into the hub page to finish pairing the computer."
        ),
        H(3, "2.1.2 Fedora"),
        P("Fedora users install the same agent from the rpm archive with dnf."),
        H(2, "2.2 On Windows"),
        P("Run the installer, accept the firewall prompt and wait for the tray icon."),
    ],
    [
        P("If the tray icon stays grey, read 3 Troubleshooting below."),
        H(1, "3 Troubleshooting"),
        P(
            "Most problems come from the network. Restart the hub by holding the button "
            "for five seconds; the light turns amber, then green."
        ),
        # The bookmark lacks the number that the page shows before the title.
        H(2, "3.1 The hub is not found", outline_title="The hub is not found"),
        P("Check that the computer and the hub share the same network segment."),
    ],
]

CHINESE_TITLE = "请假制度常见问题"
CHINESE_PAGES: list[Page] = [
    [
        H(1, "第一章 年假"),
        P(
            "员工入职满一年后，每年可享受十天带薪年假。年假需要提前三个工作日在系统中提交申请，"
            "由直属主管审批。当年未休完的年假可以顺延到次年第一季度。"
        ),
        H(2, "年假可以分几次休？"),
        P("年假可以分多次使用，每次至少半天。连续休假超过五天时，需要部门负责人同意。"),
    ],
    [
        H(1, "第二章 病假"),
        P("病假一天以内无需证明；超过两天时，请在返岗后五个工作日内上传医院出具的证明。"),
        H(2, "病假期间工资怎么算？"),
        P("每年前十天病假全额发放工资，之后按照本地规定的比例发放。"),
    ],
]


def english_outline_pdf(directory: Path) -> Path:
    """An English guide: four pages, a three-level outline, a section over a page break."""
    return _write(directory / "lumen-guide.pdf", ENGLISH_PAGES, title=ENGLISH_TITLE)


def chinese_outline_pdf(directory: Path) -> Path:
    """A Chinese leave-policy FAQ with a two-level outline."""
    return _write(directory / "leave-faq.pdf", CHINESE_PAGES, title=None, font=CJK_FONT)


def no_outline_pdf(directory: Path, *, title: str | None = None) -> Path:
    """The English guide's first two pages with headings drawn but no outline."""
    pages = [
        [H(b.level, b.text, bookmark=False) if isinstance(b, H) else b for b in page]
        for page in ENGLISH_PAGES[:2]
    ]
    return _write(directory / "no-outline.pdf", pages, title=title)


def scanned_pdf(directory: Path) -> Path:
    """Two pages that are only pictures of text, as a scanner makes them."""
    path = directory / "scanned.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    for page in range(2):
        image = Image.new("L", (600, 800), 255)
        draw = ImageDraw.Draw(image)
        for row in range(20):
            draw.text((40, 40 + row * 30), f"Scanned page {page + 1}, line {row + 1}", fill=0)
        c.drawImage(ImageReader(image), 0, 0, width=A4[0], height=A4[1])
        c.showPage()
    c.save()
    return path


def encrypted_pdf(
    directory: Path,
    *,
    user_password: str,
    owner_password: str = "owner-pw",
    algorithm: str = "RC4-128",
    name: str = "encrypted.pdf",
) -> Path:
    """The English guide encrypted with pypdf; an empty user password opens it freely."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_english_bytes())))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm=algorithm)
    path = directory / name
    with path.open("wb") as f:
        writer.write(f)
    return path


def truncated_pdf(directory: Path, *, keep: float = 0.6) -> Path:
    """The English guide cut off part way, as an interrupted download leaves it."""
    data = _english_bytes()
    path = directory / "truncated.pdf"
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def corrupt_pdf(directory: Path) -> Path:
    """A PDF header followed by bytes that are no PDF structure at all."""
    path = directory / "corrupt.pdf"
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 16 + b"\n%%EOF\n")
    return path


def broken_xref_pdf(directory: Path) -> Path:
    """The English guide with its objects' bodies overwritten and its xref kept."""
    data = bytearray(_english_bytes())
    # Wipe everything between the header and the xref table: offsets point at junk.
    start, end = 20, data.rfind(b"\nxref")
    data[start:end] = b"x" * (end - start)
    path = directory / "broken-xref.pdf"
    path.write_bytes(bytes(data))
    return path


def zero_page_pdf(directory: Path) -> Path:
    """A well-formed PDF whose page tree is empty."""
    path = directory / "zero-pages.pdf"
    buffer = io.BytesIO()
    PdfWriter().write(buffer)
    path.write_bytes(buffer.getvalue())
    return path


def _english_bytes() -> bytes:
    return _render(ENGLISH_PAGES, title=ENGLISH_TITLE)


def _write(path: Path, pages: list[Page], *, title: str | None, font: str = "Helvetica") -> Path:
    path.write_bytes(_render(pages, title=title, font=font))
    return path


def _render(pages: list[Page], *, title: str | None, font: str = "Helvetica") -> bytes:
    if font == CJK_FONT:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    bold = "Helvetica-Bold" if font == "Helvetica" else font
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4)
    if title:
        c.setTitle(title)
    width = A4[0] - 2 * _MARGIN
    key = 0
    for page in pages:
        y = A4[1] - _MARGIN
        for item in page:
            if isinstance(item, H):
                size = {1: 18.0, 2: 14.0}.get(item.level, 12.0)
                y -= size * 0.6
                c.setFont(bold, size)
                c.drawString(_MARGIN, y, item.text)
                if item.bookmark:
                    key += 1
                    c.bookmarkHorizontal(f"h{key}", 0, y + size)
                    c.addOutlineEntry(
                        item.outline_title or item.text, f"h{key}", level=item.level - 1
                    )
                y -= size * 1.2
            else:
                c.setFont(font, 11)
                for line in _wrap(item.text, font, 11, width):
                    c.drawString(_MARGIN, y, line)
                    y -= 15
                y -= 10
        c.showPage()
    c.save()
    return buffer.getvalue()


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    if font != CJK_FONT:
        return list(simpleSplit(text, font, size, width))
    # Chinese has no spaces to break at: break before the character that overflows.
    lines, line = [], ""
    for ch in text:
        if pdfmetrics.stringWidth(line + ch, font, size) > width:
            lines.append(line)
            line = ""
        line += ch
    return [*lines, line] if line else lines
