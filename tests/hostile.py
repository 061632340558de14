"""Hostile and broken files, written byte by byte, for the bad-input and sandbox tests.

Each function returns the file's bytes. The PDFs are built by ``raw_pdf`` from object
bodies, with a correct cross-reference table, so that only the one thing a case is about
is wrong: a page tree that claims or contains 100 000 pages, a page tree that loops, an
object nested 100 000 deep, a stream that inflates to hundreds of megabytes. All text is
original.
"""

from __future__ import annotations

import contextlib
import io
import signal
import struct
import traceback
import zipfile
import zlib
from collections.abc import Callable, Iterator

from ingest.errors import IngestError

# A page's text in a standard font, for the pages around the hostile parts.
_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
_TEXT = b"BT /F1 12 Tf 72 720 Td (Hostile file test page) Tj ET"


def raw_pdf(objects: list[bytes], *, root: int = 1, trailer_extra: bytes = b"") -> bytes:
    """A PDF whose object ``i + 1`` is ``objects[i]``, with a correct xref and trailer.

    Bodies that are streams include their own ``stream ... endstream``.
    """
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, root, trailer_extra, xref)
    )
    return out.getvalue()


def stream(data: bytes, *, filters: bytes = b"", extra: bytes = b"") -> bytes:
    """A stream object's body: its dictionary (with /Length) and its data."""
    head = b"<< /Length %d %s%s >>" % (
        len(data),
        b"/Filter " + filters + b" " if filters else b"",
        extra,
    )
    return head + b"\nstream\n" + data + b"\nendstream"


def _page(parent: int, contents: int, resources: int) -> bytes:
    return (
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
        b"/Resources %d 0 R >>" % (parent, contents, resources)
    )


def good_pdf() -> bytes:
    """One page with one line of text: the control for the hostile variants below."""
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            _page(2, 4, 5),
            stream(_TEXT),
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
        ]
    )


def page_count_claimed_pdf(count: int = 1_000_000_000) -> bytes:
    """One real page under a page tree whose /Count claims ``count`` pages."""
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % count,
            _page(2, 4, 5),
            stream(_TEXT),
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
        ]
    )


def page_count_fanout_pdf(fanout: int = 10, depth: int = 5) -> bytes:
    """A page tree of ``fanout ** depth`` pages (100 000 by default) in a few hundred
    bytes: each level's /Kids names the same node below ``fanout`` times, and the
    leaves are one page object with a line of text."""
    # Objects: 1 catalog, 2 .. depth+1 the page-tree levels (2 is the root), then
    # the page, its contents, its resources and the font.
    levels = list(range(2, depth + 2))
    page, contents, resources, font = depth + 2, depth + 3, depth + 4, depth + 5
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for i in range(len(levels)):
        child = levels[i + 1] if i + 1 < len(levels) else page
        parent = b"/Parent %d 0 R " % levels[i - 1] if i else b""
        kids = b" ".join([b"%d 0 R" % child] * fanout)
        objects.append(
            b"<< /Type /Pages %s/Kids [%s] /Count %d >>" % (parent, kids, fanout ** (depth - i))
        )
    objects += [
        _page(levels[-1], contents, resources),
        stream(_TEXT),
        b"<< /Font << /F1 %d 0 R >> >>" % font,
        _FONT,
    ]
    return raw_pdf(objects)


def page_tree_cycle_pdf() -> bytes:
    """A page tree whose second kid is the root again: /Kids points back to an ancestor."""
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 7 0 R] /Count 3 >>",
            _page(2, 4, 5),
            stream(_TEXT),
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
            b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
        ]
    )


def self_parent_pdf() -> bytes:
    """A page tree node that is its own kid, and a page that is its own parent."""
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources 5 0 R >>",
            stream(_TEXT),
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
        ]
    )


def xref_prev_loop_pdf() -> bytes:
    """A cross-reference section whose /Prev points at itself, so a reader that follows
    /Prev without remembering where it has been never stops."""
    body = good_pdf()
    xref = int(body[body.rindex(b"startxref") + 9 :].split()[0])
    return body.replace(b"/Size 7 ", b"/Size 7 /Prev %d " % xref)


def indirect_length_loop_pdf() -> bytes:
    """A content stream whose /Length is an indirect reference to itself."""
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            _page(2, 4, 5),
            b"<< /Length 4 0 R >>\nstream\n" + _TEXT + b"\nendstream",
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
        ]
    )


def object_stream_loop_pdf() -> bytes:
    """A cross-reference stream that says the page lives inside an object stream that
    is itself stored inside that object stream: resolving either needs the other."""
    # Object 1 catalog, 2 pages (plain); 3 the page and 7 the object stream are both
    # "compressed in object stream 7".
    parts = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, body in enumerate(parts, start=1):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref_offset = out.tell()
    # Entries: type, field2 (4 bytes), field3 (2 bytes).
    rows = [
        (0, 0, 65535),  # 0
        (1, offsets[1], 0),
        (1, offsets[2], 0),
        (2, 4, 0),  # 3: in object stream 4, index 0
        (2, 4, 1),  # 4: in object stream 4 (itself), index 1
        (1, xref_offset, 0),  # 5: this xref stream
    ]
    data = b"".join(struct.pack(">BIH", *row) for row in rows)
    xref_obj = stream(data, extra=b"/Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R")
    out.write(b"5 0 obj\n" + xref_obj + b"\nendobj\n")
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref_offset)
    return out.getvalue()


def deeply_nested_array_pdf(depth: int = 100_000) -> bytes:
    """A page whose /Contents is an array nested ``depth`` deep (and the catalog names it
    too, so that it is read whichever way a reader walks the file)."""
    nested = b"[" * depth + b"]" * depth
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /Deep 4 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            _page(2, 4, 5),
            nested,
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
        ]
    )


def deeply_nested_dict_pdf(depth: int = 100_000) -> bytes:
    """A page's /Resources nested ``depth`` dictionaries deep."""
    nested = b"<< /A " * depth + b"1" + b" >>" * depth
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            _page(2, 4, 5),
            stream(_TEXT),
            nested,
        ]
    )


def deeply_nested_content_pdf(depth: int = 100_000) -> bytes:
    """A content stream whose operand is an array nested ``depth`` deep."""
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            _page(2, 4, 5),
            stream(b"BT /F1 12 Tf 72 720 Td " + b"[" * depth + b"]" * depth + b" TJ ET"),
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
        ]
    )


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data, 9)


def flate_bomb_pdf(megabytes: int = 400, layers: int = 2) -> bytes:
    """A page whose content stream inflates to ``megabytes`` MB of spaces; ``layers``
    rounds of FlateDecode make the file a few kilobytes."""
    size = megabytes * 1024 * 1024
    # Compress in pieces: the whole uncompressed stream never exists in this process.
    z = zlib.compressobj(9)
    piece = b" " * (1 << 20)
    data = b"".join(z.compress(piece) for _ in range(size >> 20)) + z.flush()
    for _ in range(layers - 1):
        data = _deflate(data)
    filters = b"[" + b" ".join([b"/FlateDecode"] * layers) + b"]"
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            _page(2, 4, 5),
            stream(data, filters=filters),
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
        ]
    )


def text_then_bomb_pdf(megabytes: int = 400) -> bytes:
    """A readable page followed by a page whose contents are a decompression bomb."""
    size = megabytes * 1024 * 1024
    z = zlib.compressobj(9)
    piece = b" " * (1 << 20)
    data = _deflate(b"".join(z.compress(piece) for _ in range(size >> 20)) + z.flush())
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 7 0 R] /Count 2 >>",
            _page(2, 4, 5),
            stream(_TEXT),
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
            _page(2, 8, 5),
            stream(data, filters=b"[/FlateDecode /FlateDecode]"),
        ]
    )


def zip_bytes() -> bytes:
    """A small ZIP archive (what an .docx or .xlsx is, too)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("notes.txt", "Meeting notes that were zipped by mistake.\n" * 20)
    return buffer.getvalue()


def png_bytes() -> bytes:
    """A valid 1x1 PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def html_bytes() -> bytes:
    """An HTML page, as a browser saves a download link that needed a login."""
    return (
        b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n"
        b"<body><form action='/login'><input name='user'></form></body></html>\n"
    )


def nested_blockquotes_md(depth: int = 100_000) -> bytes:
    """One line of ``depth`` blockquote markers, then text."""
    return b"# Deep quotes\n\n" + b">" * depth + b" the bottom of the well\n"


def nested_lists_md(depth: int = 100_000) -> bytes:
    """A list item nested ``depth`` deep on one line (``- - - ... item``)."""
    return b"# Deep lists\n\n" + b"- " * depth + b"item\n"


def nested_brackets_md(depth: int = 100_000) -> bytes:
    """Link brackets and emphasis nested ``depth`` deep."""
    return (
        b"# Brackets\n\n" + b"[" * depth + b"x" + b"](y)" * depth + b"\n\n" + b"*_" * depth + b"\n"
    )


def long_line_md(megabytes: int = 8) -> bytes:
    """A heading and one line of ``megabytes`` MB of words without a line break."""
    return b"# One long line\n\n" + b"lorem ipsum " * (megabytes * 1024 * 1024 // 12) + b"\n"


def nul_bytes_md() -> bytes:
    """Markdown text with NUL bytes through it (a text file with binary pieces)."""
    return b"# Notes\n\nSome text\x00 with\x00\x00 NUL bytes\x00 in it.\n" * 50


def bomb_and_blank_pdf(megabytes: int = 400) -> bytes:
    """A page whose contents are a decompression bomb, then a page with no text."""
    z = zlib.compressobj(9)
    piece = b" " * (1 << 20)
    data = _deflate(b"".join(z.compress(piece) for _ in range(megabytes)) + z.flush())
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 7 0 R] /Count 2 >>",
            _page(2, 4, 5),
            stream(data, filters=b"[/FlateDecode /FlateDecode]"),
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
            _page(2, 8, 5),
            stream(b"0 0 m 100 100 l S"),
        ]
    )


def text_ops_flood_pdf(megabytes: int = 60) -> bytes:
    """One page whose content stream, under pypdf's 75 MB inflate limit, is
    ``megabytes`` MB of text-showing operators: each is cheap, millions are not."""
    ops = b"(word) Tj\n"
    z = zlib.compressobj(9)
    piece = ops * ((1 << 20) // len(ops))
    data = z.compress(b"BT /F1 12 Tf 72 720 Td\n")
    data += b"".join(z.compress(piece) for _ in range(megabytes)) + z.compress(b"ET") + z.flush()
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            _page(2, 4, 5),
            stream(data, filters=b"/FlateDecode"),
            b"<< /Font << /F1 6 0 R >> >>",
            _FONT,
        ]
    )


def object_stream_pdf() -> bytes:
    """A valid PDF 1.5 file: the page, its resources and font live in a compressed object
    stream, and the cross-reference table is a (compressed) xref stream."""
    inner = [
        _page(2, 4, 5),  # 3
        b"<< /Font << /F1 6 0 R >> >>",  # 5
        _FONT,  # 6
    ]
    numbers = [3, 5, 6]
    offsets, body = [], b""
    for obj in inner:
        offsets.append(len(body))
        body += obj + b"\n"
    header = b" ".join(b"%d %d" % (n, o) for n, o in zip(numbers, offsets, strict=True)) + b"\n"
    objstm = stream(
        zlib.compress(header + body),
        filters=b"/FlateDecode",
        extra=b"/Type /ObjStm /N %d /First %d" % (len(inner), len(header)),
    )
    plain = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        4: stream(zlib.compress(_TEXT), filters=b"/FlateDecode"),
        7: objstm,
    }
    out = io.BytesIO()
    out.write(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    where = {}
    for number, obj in plain.items():
        where[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + obj + b"\nendobj\n")
    xref_at = out.tell()
    rows = [(0, 0, 65535)]
    for number in range(1, 9):
        if number in where:
            rows.append((1, where[number], 0))
        elif number in numbers:
            rows.append((2, 7, numbers.index(number)))
        else:  # 8: the xref stream itself
            rows.append((1, xref_at, 0))
    table = zlib.compress(b"".join(struct.pack(">BIH", *row) for row in rows))
    xref = stream(
        table, filters=b"/FlateDecode", extra=b"/Type /XRef /Size 9 /W [1 4 2] /Root 1 0 R"
    )
    out.write(b"8 0 obj\n" + xref + b"\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at)
    return out.getvalue()


# --- Mutations for fuzzing -----------------------------------------------------------
#
# A mutation is a tuple (kind, *ints); the ints are taken modulo the data's length, so
# any list of mutations applies to any file. Hypothesis draws them (and shrinks them);
# scripts/fuzz.py draws them from a seeded random.Random.

# Tokens whose insertion reaches parser corners: structure, references, streams.
TOKENS: tuple[bytes, ...] = (
    b"<<",
    b">>",
    b"[",
    b"]",
    b"(",
    b")",
    b" 0 R",
    b" 1 0 R",
    b"obj",
    b"endobj",
    b"stream\n",
    b"\nendstream",
    b"xref",
    b"trailer",
    b"startxref",
    b"%%EOF",
    b"/Length 0",
    b"/Length 99999999",
    b"/Filter /FlateDecode",
    b"/Filter [/FlateDecode /ASCIIHexDecode /LZWDecode]",
    b"/DecodeParms << /Predictor 15 /Columns 99999 >>",
    b"/Type /ObjStm /N 99999 /First 0",
    b"/Type /XRef /W [1 4 2]",
    b"/Prev 0",
    b"/Kids [2 0 R]",
    b"/Count -1",
    b"/Parent 2 0 R",
    b"/Encrypt << /Filter /Standard /V 2 /R 3 /O <00> /U <00> /P -1 >>",
    b"/ToUnicode 4 0 R",
    b"/Encoding /Identity-H",
    b"/Outlines << /First 1 0 R /Last 1 0 R /Count 3 >>",
    b"BI /W 9999 /H 9999 /BPC 8 ID ",
    b"Tj",
    b"TJ",
    b"Tf",
    b"\x00",
    b"\xff\xfe",
    b"\\",
    b"#",
    b"%",
)
NUMBERS: tuple[bytes, ...] = (
    b"0",
    b"-1",
    b"1",
    b"255",
    b"65536",
    b"2147483648",
    b"9223372036854775808",
    b"99999999999999999999",
    b"1e308",
    b"-0.0",
    b"3.",
    b".5",
)

Mutation = tuple[int, ...]
MUTATION_KINDS = (
    "flip",
    "truncate",
    "delete",
    "duplicate",
    "insert",
    "number",
    "splice",
    "drop_xref",
)


def mutate(data: bytes, mutations: list[Mutation], others: list[bytes]) -> bytes:
    """Apply ``mutations`` to ``data`` in order; ``splice`` takes its tail from ``others``."""
    buf = bytearray(data)
    for kind_index, *args in mutations:
        kind = MUTATION_KINDS[kind_index % len(MUTATION_KINDS)]
        a, b, c = (*args, 0, 0, 0)[:3]
        n = len(buf)
        if kind == "flip" and n:
            buf[a % n] ^= (b % 255) + 1
        elif kind == "truncate" and n:
            del buf[a % n :]
        elif kind == "delete" and n:
            start = a % n
            del buf[start : start + 1 + b % 256]
        elif kind == "duplicate" and n:
            start = a % n
            piece = buf[start : start + 1 + b % 512]
            at = c % (n + 1)
            buf[at:at] = piece * (1 + (b >> 9) % 8)
        elif kind == "insert":
            at = a % (n + 1)
            buf[at:at] = TOKENS[b % len(TOKENS)]
        elif kind == "number" and n:
            _replace_number(buf, a % n, NUMBERS[b % len(NUMBERS)])
        elif kind == "splice" and others:
            other = others[b % len(others)]
            buf = buf[: a % (n + 1)] + other[c % (len(other) + 1) :]
        elif kind == "drop_xref":
            _drop_xref(buf)
    return bytes(buf)


def _replace_number(buf: bytearray, start: int, value: bytes) -> None:
    """Replace the first run of digits at or after ``start`` (wrapping around) by ``value``."""
    n = len(buf)
    for i in (*range(start, n), *range(0, start)):
        if 0x30 <= buf[i] <= 0x39:
            j = i
            while j < n and 0x30 <= buf[j] <= 0x39:
                j += 1
            buf[i:j] = value
            return


def _drop_xref(buf: bytearray) -> None:
    """Delete the last cross-reference table (or xref stream) up to ``startxref``."""
    end = buf.rfind(b"startxref")
    if end < 0:
        return
    start = buf.rfind(b"xref", 0, end)
    if start < 0 or buf[start - 1 : start] == b"t":  # only "startxref" itself
        start = buf.rfind(b"/XRef", 0, end)
        start = buf.rfind(b"obj", 0, start) if start >= 0 else -1
    if start >= 0:
        del buf[start:end]


# --- Markdown pieces for fuzzing ------------------------------------------------------

MARKDOWN_PIECES: tuple[str, ...] = (
    "# Heading",
    "## 第二章 病假",
    "###### six",
    "####### seven is text",
    "#",
    "Setext title",
    "===",
    "---",
    "- - -",
    "***",
    "```",
    "````python",
    "~~~",
    "~~~~~~~~~~",
    "    indented code",
    "\tcode with a tab",
    "---\ntitle: Front matter\ntags: [a, b]\n---",
    "---\ntitle: [unclosed\n---",
    "---\n: : :\n---",
    "---\na: &x [*x]\n---",
    "| a | b |",
    "|---|:-:|",
    "| 1 | 2 | 3 |",
    "- item",
    "  - nested item",
    "1. first",
    "2) second",
    "* [ ] task",
    "> quote",
    "> > deeper",
    ">",
    "<div>",
    "</div>",
    "<!-- comment",
    "-->",
    "[ref]: http://example.com 'title'",
    "[link][ref] and ![img](x.png)",
    "**bold** _em_ `code` ~~strike~~",
    "中文段落，包含标点。第二句！",
    "日本語のテキスト、カタカナ。",
    "한국어 문장입니다.",
    "\u200b\u200d\ufeff zero width",
    "\u2028line separator\u2029paragraph separator",
    "\x0c form feed",
    "\r",
    "\r\n",
    "\x00",
    "\\",
    "&amp; &#0; &#x110000; &nbsp;",
    "",
    " ",
)


# --- Running one fuzz example ---------------------------------------------------------


class Hang(BaseException):
    """Raised by the alarm when one example runs past its time. Not an Exception: the
    parsers' ``except Exception`` (one broken page must not lose the rest) must not
    swallow it."""


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise ``Hang`` in this (main) thread after ``seconds`` of wall time."""

    def ring(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(run: Callable[[], object], *, seconds: float) -> tuple[str, str]:
    """Run one example under an alarm: ("ok" | "rejected" | "memory" | "hang" | "crash",
    detail). Only "hang" and "crash" are bugs: an IngestError is a clean rejection, and a
    MemoryError is the sandbox's to turn into one (it caps the parser's memory)."""
    try:
        with alarm(seconds):
            run()
    except IngestError as exc:
        return "rejected", exc.reason
    except MemoryError:
        return "memory", ""
    except Hang as exc:
        return "hang", "".join(traceback.format_exception(exc))[-4000:]
    except Exception as exc:
        return "crash", "".join(traceback.format_exception(exc))[-4000:]
    return "ok", ""
