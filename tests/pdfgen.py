"""Write real PDFs for the parser tests with reportlab (and pypdf for encryption).

All text is original: an install guide for a fictional product ("Lumen Hub") and a
Chinese FAQ about leave policy. Chinese uses reportlab's built-in CID font
``STSong-Light`` (Adobe-GB1); pypdf reads its text back correctly, so no font file is
needed.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, NameObject, StreamObject
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


# --- PDFs without an outline, for layout-based headings and page furniture ---------------


@dataclass(frozen=True)
class T:
    """A line (or, with "\\n" in ``text``, lines as given) in a font of its own; long
    lines wrap. Text with Chinese in it is set in the CJK font (which has no bold)."""

    text: str
    size: float = 11.0
    bold: bool = False
    space_before: float = 4.0


FONT_HEADINGS_PAGES: list[list[T]] = [
    [
        T("Field Manual for the Lumen Hub", 22, bold=True),
        T("1 Overview", 16, bold=True, space_before=20),
        T(
            "The hub keeps photos and notes of a household in one place and serves them to "
            "every computer on the local network. This manual covers the parts, the network "
            "setup and the error codes."
        ),
        T("1.1 Parts of the hub", 13, bold=True, space_before=16),
        T("Before you start, do this:"),
        T("1. Unplug the hub from the wall socket.\n2. Wait ten seconds before you go on."),
        T(
            "The front light shows the state of the hub. Its antenna supports the\n"
            "2.4 GHz band and the faster band that newer routers offer as well."
        ),
        T("1.2 Safety notes", 11, bold=True, space_before=16),
        T("Keep the hub away from water and do not cover its vents while it runs."),
    ],
    [
        T("2 Network setup", 16, bold=True),
        T("The hub asks the router for an address when it starts, which suits most homes."),
        T("2.1.1 Static addresses", 11, space_before=16),
        T("A static address is set on the settings page under the network tab of the hub."),
        T("Contents of the box ......... 4", space_before=16),
    ],
    [
        T("Appendix A Error codes", 16, bold=True),
        T("Error E7 means that the disk is full. Delete old backups to make room again."),
    ],
]
RUNNING_HEADER = "Lumen Hub Field Manual"

CHINESE_HEADINGS_PAGES: list[list[T]] = [
    [
        T("第一章 总则", 18),
        T("第一节 适用范围", 14, space_before=12),
        T(
            "本办法适用于公司全体员工在办公室内使用的各类电子设备，包括台式电脑、笔记本电脑、"
            "打印机以及会议室里的投影设备。各部门应当指定一名设备管理员，负责登记设备的编号和"
            "使用人，并在每个季度末核对一次。"
        ),
        T("一、基本要求", space_before=16),
        T("员工离开座位超过半小时时，应当锁定电脑屏幕，下班前关闭显示器和打印机的电源。"),
        T("（一）设备检查", space_before=16),
        T("设备管理员每月检查一次电源线和插座，发现破损应当立即停用并报修。"),
    ],
    [
        T("第二章 附则", 18),
        T("本办法由行政部负责解释，自发布之日起施行。"),
    ],
]
CHINESE_RUNNING_HEADER = "内部资料 请勿外传"


def font_headings_pdf(directory: Path) -> Path:
    """An English manual without an outline: headings only by font size, weight and
    number; a running header and "Page N of M" footers on every page."""
    pages = FONT_HEADINGS_PAGES
    data = _render_flow(
        pages,
        header=lambda n: RUNNING_HEADER,
        footer=lambda n: f"Page {n} of {len(pages)}",
    )
    path = directory / "font-headings.pdf"
    path.write_bytes(data)
    return path


def chinese_headings_pdf(directory: Path) -> Path:
    """A Chinese policy without an outline: 第一章, 第一节, 一、, （一） headings; a running
    header and "第 N 页 共 M 页" footers on every page."""
    pages = CHINESE_HEADINGS_PAGES
    data = _render_flow(
        pages,
        header=lambda n: CHINESE_RUNNING_HEADER,
        footer=lambda n: f"第 {n} 页 共 {len(pages)} 页",
    )
    path = directory / "chinese-headings.pdf"
    path.write_bytes(data)
    return path


def _render_flow(
    pages: list[list[T]],
    *,
    header: Callable[[int], str] | None = None,
    footer: Callable[[int], str] | None = None,
    width: float = A4[0] - 2 * _MARGIN,
) -> bytes:
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4)
    for number, page in enumerate(pages, start=1):
        if header:
            c.setFont(_font(header(number), False), 9)
            c.drawString(_MARGIN, A4[1] - 40, header(number))
        y = A4[1] - _MARGIN
        for item in page:
            font = _font(item.text, item.bold)
            c.setFont(font, item.size)
            y -= item.space_before
            for given in item.text.split("\n"):
                for line in _wrap(given, font, item.size, width):
                    y -= item.size * 1.25
                    c.drawString(_MARGIN, y, line)
        if footer:
            c.setFont(_font(footer(number), False), 9)
            c.drawCentredString(A4[0] / 2, 36, footer(number))
        c.showPage()
    c.save()
    return buffer.getvalue()


def _font(text: str, bold: bool) -> str:
    if not text.isascii():
        return CJK_FONT
    return "Helvetica-Bold" if bold else "Helvetica"


def wrapped_text_pdf(directory: Path) -> Path:
    """One page of Chinese wrapped over several lines and English with a word hyphenated
    at a line end."""
    pages = [
        [
            T(
                "年假需要提前三个工作日在系统中提交申请，由直属主管审批。当年未休完的年假可以"
                "顺延到次年第一季度，逾期未休的部分不再保留，也不折算成工资发放。"
            ),
            T(
                "The installer checks every exam-\n"
                "ple configuration before it starts the agent, so a typo in the settings\n"
                "file is reported at once.",
                space_before=16,
            ),
        ]
    ]
    path = directory / "wrapped.pdf"
    path.write_bytes(_render_flow(pages, width=A4[0] / 2))
    return path


def vector_only_pdf(directory: Path) -> Path:
    """Two pages that draw only lines and boxes: content, but no text and no images."""
    path = directory / "vector-only.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    for page in range(2):
        for row in range(10):
            c.rect(_MARGIN, 100 + row * 60 + page * 5, 300, 40)
        c.showPage()
    c.save()
    return path


def blank_pdf(directory: Path) -> Path:
    """Two empty pages."""
    path = directory / "blank.pdf"
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.add_blank_page(595, 842)
    with path.open("wb") as f:
        writer.write(f)
    return path


def decompression_bomb_pdf(directory: Path) -> Path:
    """One page whose content stream inflates past pypdf's output cap (75 MB)."""
    writer = PdfWriter()
    page = writer.add_blank_page(595, 842)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    data = b"%" + b" " * 80_000_000 + b"\nBT /F1 12 Tf 72 700 Td (Hidden behind the bomb) Tj ET\n"
    stream = StreamObject()
    stream._data = zlib.compress(data, 9)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = writer._add_object(stream)
    path = directory / "bomb.pdf"
    with path.open("wb") as f:
        writer.write(f)
    return path


TWO_COLUMN_LEFT = (
    "The left column starts the article. It explains why the hub keeps one copy of "
    "every photo on its own disk and a second copy on a drive that the owner chooses."
)
TWO_COLUMN_RIGHT = (
    "The right column continues the article. It lists the drives that were tested "
    "with the hub and the time that a first full backup of each of them took."
)


def two_column_pdf(directory: Path) -> Path:
    """A page with a full-width title and abstract over two columns of text, drawn in
    the order most typesetters write them (title, abstract, left column, right column)."""
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4)
    y = A4[1] - _MARGIN
    c.setFont("Helvetica-Bold", 18)
    c.drawString(_MARGIN, y, "Backups on the Lumen Hub")
    y -= 30
    c.setFont("Helvetica", 10)
    abstract = "Abstract. How the hub copies photos to a second drive, and how long it takes."
    for line in _wrap(abstract, "Helvetica", 10, A4[0] - 2 * _MARGIN):
        c.drawString(_MARGIN, y, line)
        y -= 13
    top = y - 20
    column = (A4[0] - 2 * _MARGIN - 20) / 2
    for x, text in ((_MARGIN, TWO_COLUMN_LEFT), (_MARGIN + column + 20, TWO_COLUMN_RIGHT)):
        y = top
        for line in _wrap(text, "Helvetica", 10, column):
            c.drawString(x, y, line)
            y -= 13
    c.showPage()
    c.save()
    path = directory / "two-column.pdf"
    path.write_bytes(buffer.getvalue())
    return path


INTERLEAVED_LEFT = (
    "The left column starts the article. It explains why the hub keeps one copy of "
    "every photo on its own disk and a second copy on a drive that the owner chooses. "
    "Both copies are compared every night, and a photo that differs is copied again from "
    "the disk that still reads it without errors."
)
INTERLEAVED_RIGHT = (
    "The right column continues the article. It lists the drives that were tested with "
    "the hub and the time that a first full backup of each of them took. Small drives "
    "finished in ten minutes, the largest one needed two hours for a full year of photos "
    "from a family of four."
)
INTERLEAVED_CHINESE_LEFT = (
    "左栏介绍备份的方法。集线器把每一张照片在自己的硬盘上保存一份，"
    "再在用户选定的移动硬盘上保存第二份，两份之间每天晚上同步一次。"
    "如果某一张照片在两份之间不一致，集线器会从仍然可以正常读取的那一份重新复制。"
    "同步在夜里进行，不影响白天的使用。"
)
INTERLEAVED_CHINESE_RIGHT = (
    "右栏列出测试过的硬盘型号，以及每一块硬盘第一次完整备份所用的时间，"
    "时间从十分钟到两个小时不等，取决于照片的数量和硬盘的速度。"
    "容量最大的那一块硬盘保存了一个四口之家一整年的照片。"
    "测试用的集线器都装有最新版本的系统，网络是家用的千兆有线网络。"
)


def interleaved_two_column_pdf(
    directory: Path, *, chinese: bool = False, interleaved: bool = True
) -> Path:
    """A page with a full-width title over two columns and a page number below, drawn
    the way Word and some generators write them: left line, right line, left line ...
    (or, with ``interleaved=False``, column by column)."""
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    font = CJK_FONT if chinese else "Helvetica"
    left = INTERLEAVED_CHINESE_LEFT if chinese else INTERLEAVED_LEFT
    right = INTERLEAVED_CHINESE_RIGHT if chinese else INTERLEAVED_RIGHT
    title = "集线器的备份与恢复" if chinese else "Backups on the Lumen Hub"
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4)
    column = (A4[0] - 2 * _MARGIN - 30) / 2
    top = A4[1] - _MARGIN
    c.setFont(_font(title, True), 18)
    c.drawString(_MARGIN, top, title)
    c.setFont(font, 10)
    sides = [(_MARGIN, _wrap(left, font, 10, column))]
    sides.append((_MARGIN + column + 30, _wrap(right, font, 10, column)))
    drawn = [(i, x, line) for x, lines in sides for i, line in enumerate(lines)]
    if interleaved:
        drawn.sort(key=lambda d: d[0])  # row by row: left, right, left ...
    for i, x, line in drawn:
        c.drawString(x, top - 40 - 13 * i, line)
    c.drawCentredString(A4[0] / 2, 36, "7")
    c.showPage()
    c.save()
    name = f"{'zh-' if chinese else ''}{'interleaved' if interleaved else 'columns'}.pdf"
    path = directory / name
    path.write_bytes(buffer.getvalue())
    return path
