"""Hostile Office and HTML files: zip bombs, entity expansion, external entities, deep
nesting, lying extensions and encrypted packages each end in a clear reason (or a
harmless parse), never in a crash, an expansion or a file read.

The packages are made by python-docx, python-pptx and openpyxl and then rewritten part by
part with ``zipfile``; the bombs are real deflate streams of zeros, written by
``zipfile`` so that the files stay small (a 600 MB part takes ~3 MB).

Zip-level cases end in ``check_office_zip``, which every Office parser calls first. The
entity and nesting cases of .docx and .xlsx read a part with the Word and spreadsheet
parsers (``ingest/parse/docx.py``, ``ingest/parse/sheet.py``): they hold whatever those
parsers do with lxml's or openpyxl's errors to "a reason, or a harmless parse".
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from docx import Document as WordDocument
from openpyxl import Workbook
from pptx import Presentation
from pptx.util import Inches

from app.documents.models import DocumentStatus
from app.runtime import Runtime
from ingest.errors import IngestError
from ingest.parse import parse
from ingest.parse.htmlpage import NOT_HTML, TOO_DEEP_HTML
from ingest.parse.pptx import DAMAGED_DECK
from ingest.parse.zipsafe import (
    NOT_AN_OFFICE_FILE,
    PASSWORD_PROTECTED,
    SUSPICIOUS_RATIO,
    TOO_LARGE_UNPACKED,
    TOO_MANY_PARTS,
    ZipLimits,
    check_office_zip,
)
from ingest.sandbox import parse_isolated
from ingest.types import ParsedDocument
from ingest.worker import Worker
from tests import hostile
from tests.factories import get_document, store_upload

MARKER = "PLACEHOLDER-TEXT"
SECRET = "TOP-SECRET-CONTENT-7f3a"
LIMIT_S = 20.0
MEMORY_MB = 1024
MAIN = {".docx": "word/document.xml", ".pptx": "ppt/presentation.xml", ".xlsx": "xl/workbook.xml"}
# The part whose text holds MARKER, per format.
TEXT_PART = {
    ".docx": "word/document.xml",
    ".pptx": "ppt/slides/slide1.xml",
    ".xlsx": "xl/sharedStrings.xml",
}
LABEL = {".docx": "Word", ".pptx": "PowerPoint", ".xlsx": "Excel"}


@pytest.fixture
def backend() -> str:
    return "sqlite"


# --- building packages ------------------------------------------------------------------


def office_package(suffix: str, text: str = MARKER) -> bytes:
    """A small valid .docx, .pptx or .xlsx whose one text is ``text``."""
    out = io.BytesIO()
    if suffix == ".docx":
        doc = WordDocument()
        doc.add_heading("Hostile test", level=1)
        doc.add_paragraph(text)
        doc.save(out)
    elif suffix == ".pptx":
        prs = Presentation()
        slide = prs.slides.add_slide(prs.slide_layouts[6])
        box = slide.shapes.add_textbox(Inches(1), Inches(1), Inches(5), Inches(1))
        box.text_frame.text = text
        prs.save(out)
    else:
        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet["A1"] = "Header"
        sheet["A2"] = text
        book.save(out)
        return with_shared_strings(out.getvalue(), ["Header", text])
    return out.getvalue()


_SST = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_SST_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"


def with_shared_strings(package: bytes, strings: list[str]) -> bytes:
    """An openpyxl workbook (which writes inline strings) rewritten to keep its strings in
    ``xl/sharedStrings.xml``, as Excel does."""
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        types = z.read("[Content_Types].xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
    for i, text in enumerate(strings):
        sheet = sheet.replace(f't="inlineStr"><is><t>{text}</t></is>', f't="s"><v>{i}</v>')
    items = "".join(f"<si><t>{t}</t></si>" for t in strings)
    sst = f'<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="{_SST}">{items}</sst>'
    types = types.replace(
        "</Types>",
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_SST_TYPE}"/></Types>',
    )
    rels = rels.replace(
        "</Relationships>",
        f'<Relationship Id="rIdSst" Type="{_SST_REL}" Target="sharedStrings.xml"/></Relationships>',
    )
    return rewrite(
        package,
        {
            "xl/worksheets/sheet1.xml": sheet.encode(),
            "[Content_Types].xml": types.encode(),
            "xl/_rels/workbook.xml.rels": rels.encode(),
            "xl/sharedStrings.xml": sst.encode(),
        },
    )


def rewrite(package: bytes, parts: dict[str, bytes]) -> bytes:
    """``package`` with the parts in ``parts`` replaced (or added)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(package)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            if info.filename not in parts:
                dst.writestr(info, src.read(info.filename))
        for name, data in parts.items():
            dst.writestr(name, data)
    return out.getvalue()


def with_doctype(package: bytes, part: str, doctype: str, entity_ref: str) -> bytes:
    """``package`` whose ``part`` declares ``doctype`` and holds ``entity_ref`` where its
    text was."""
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        xml = z.read(part).decode("utf-8")
    assert MARKER in xml, part
    if xml.startswith("<?xml"):
        decl, rest = xml.split("?>", 1)
        xml = f"{decl}?>\n{doctype}{rest.lstrip()}"
    else:
        xml = doctype + xml
    return rewrite(package, {part: xml.replace(MARKER, entity_ref).encode("utf-8")})


BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)


def external_entity(target: Path) -> str:
    return f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{target}">]>'


def zeros_part(package: bytes, megabytes: int) -> bytes:
    """``package`` with a part of ``megabytes`` MB of zeros (deflated: ~1000:1)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(package)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        block = bytes(1024 * 1024)
        with dst.open("media/zeros.bin", "w", force_zip64=True) as f:
            for _ in range(megabytes):
                f.write(block)
    return out.getvalue()


def many_parts(package: bytes, count: int) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(package)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        for i in range(count):
            dst.writestr(f"padding/item{i}.xml", b"")
    return out.getvalue()


def deep_docx_tables(depth: int = 5000) -> bytes:
    package = office_package(".docx")
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        xml = z.read("word/document.xml").decode("utf-8")
    nested = "<w:tbl><w:tr><w:tc>" * depth + "<w:p><w:r><w:t>deep</w:t></w:r></w:p>"
    nested += "</w:tc></w:tr></w:tbl>" * depth
    xml = xml.replace("<w:body>", "<w:body>" + nested, 1)
    return rewrite(package, {"word/document.xml": xml.encode("utf-8")})


def deep_pptx_groups(depth: int) -> bytes:
    package = office_package(".pptx")
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        xml = z.read("ppt/slides/slide1.xml").decode("utf-8")
    group = '<p:grpSp><p:nvGrpSpPr><p:cNvPr id="{n}" name="G{n}"/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>'
    opening = "".join(group.format(n=100 + i) for i in range(depth))
    inner = (
        '<p:sp><p:nvSpPr><p:cNvPr id="99" name="T"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr>'
        "<p:spPr/><p:txBody><a:bodyPr/><a:p><a:r><a:t>bottom of the groups</a:t></a:r></a:p>"
        "</p:txBody></p:sp>"
    )
    xml = xml.replace("</p:spTree>", opening + inner + "</p:grpSp>" * depth + "</p:spTree>", 1)
    return rewrite(package, {"ppt/slides/slide1.xml": xml.encode("utf-8")})


def encrypted_ole() -> bytes:
    """What Office writes for a password-protected file: an OLE2 compound file with an
    ``EncryptedPackage`` stream (only the magic and the stream name matter here)."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    directory = "EncryptionInfo".encode("utf-16-le").ljust(128, b"\x00")
    directory += "EncryptedPackage".encode("utf-16-le").ljust(128, b"\x00")
    return header + directory + bytes(4096)


def old_binary_ole() -> bytes:
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    return header + "PowerPoint Document".encode("utf-16-le").ljust(128, b"\x00") + bytes(4096)


# --- running a case ---------------------------------------------------------------------


def run_isolated(tmp_path: Path, name: str, data: bytes) -> ParsedDocument | IngestError:
    """Parse in the sandbox (time and memory limits), as the worker does."""
    path = tmp_path / name
    path.write_bytes(data)
    started = time.monotonic()
    try:
        result: ParsedDocument | IngestError = parse_isolated(
            path, filename=name, timeout_s=LIMIT_S, memory_mb=MEMORY_MB
        )
    except IngestError as exc:
        result = exc
    assert time.monotonic() - started < LIMIT_S + 5
    return result


def run(tmp_path: Path, name: str, data: bytes) -> ParsedDocument | IngestError:
    path = tmp_path / name
    path.write_bytes(data)
    try:
        return parse(path, filename=name)
    except IngestError as exc:
        return exc


def reason_of(result: ParsedDocument | IngestError) -> str:
    assert isinstance(result, IngestError), f"parsed: {result.text[:200]!r}"
    assert "Traceback" not in result.reason and len(result.reason) < 600, result.reason
    return result.reason


def assert_harmless(result: ParsedDocument | IngestError) -> None:
    """A clear failure, or a parse in which nothing was expanded or read."""
    if isinstance(result, IngestError):
        reason_of(result)
        # A reason is shown to readers: it never names the server's files.
        assert "/tmp/" not in result.reason and "/etc/" not in result.reason, result.reason
        return
    assert result.text.count("lol") < 100, result.text[:200]
    assert SECRET not in result.text
    assert len(result.text) < 10_000


SUFFIXES = [".docx", ".pptx", ".xlsx"]


# --- zip bombs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """One 600 MB part of zeros per format (~3 MB each): made once for the module."""
    return {s: zeros_part(office_package(s), 600) for s in MAIN}


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_part_inflating_past_the_limit_is_refused_unread(
    tmp_path: Path, bombs: dict[str, bytes], suffix: str
) -> None:
    data = bombs[suffix]
    assert len(data) < 5 * 1024 * 1024
    reason = reason_of(run(tmp_path, f"bomb{suffix}", data))
    assert reason == TOO_LARGE_UNPACKED.format(limit_mb=512)  # one part over 512 MB


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_part_compressed_like_a_bomb_is_refused(tmp_path: Path, suffix: str) -> None:
    data = zeros_part(office_package(suffix), 4)
    reason = reason_of(run(tmp_path, f"ratio{suffix}", data))
    assert reason == SUSPICIOUS_RATIO.format(ratio=200)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_too_many_parts_are_refused(tmp_path: Path, suffix: str) -> None:
    data = many_parts(office_package(suffix), 10_001)
    reason = reason_of(run(tmp_path, f"many{suffix}", data))
    assert reason == TOO_MANY_PARTS.format(
        count=10_001 + len(zipfile.ZipFile(io.BytesIO(office_package(suffix))).infolist())
    )


def test_total_unpacked_size_is_bounded(tmp_path: Path) -> None:
    """Many parts each under the per-part limit, together over the total (small limits)."""
    path = tmp_path / "total.pptx"
    path.write_bytes(zeros_part(office_package(".pptx"), 3))
    limits = ZipLimits(max_total_bytes=2 * 1024 * 1024, max_ratio=10_000)
    with pytest.raises(IngestError) as err:
        check_office_zip(
            path,
            suffix=".pptx",
            label="PowerPoint",
            main_part="ppt/presentation.xml",
            limits=limits,
        )
    assert err.value.reason == TOO_LARGE_UNPACKED.format(limit_mb=2)


# --- entities -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".xlsx"])
def test_billion_laughs_is_not_expanded(tmp_path: Path, suffix: str) -> None:
    data = with_doctype(office_package(suffix), TEXT_PART[suffix], BILLION_LAUGHS, "&lol9;")
    assert_harmless(run_isolated(tmp_path, f"laughs{suffix}", data))


@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".xlsx"])
def test_external_entity_is_not_read(tmp_path: Path, suffix: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    doctype = external_entity(secret)
    data = with_doctype(office_package(suffix), TEXT_PART[suffix], doctype, "&xxe;")
    assert_harmless(run_isolated(tmp_path, f"xxe{suffix}", data))
    # And the classic target, for good measure.
    data = with_doctype(
        office_package(suffix), TEXT_PART[suffix], external_entity(Path("/etc/passwd")), "&xxe;"
    )
    result = run_isolated(tmp_path, f"passwd{suffix}", data)
    assert_harmless(result)
    if isinstance(result, ParsedDocument):
        assert "root:" not in result.text


def test_pptx_entities_leave_the_rest_of_the_slide_readable(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    data = with_doctype(
        office_package(".pptx", f"before {MARKER} after"),
        "ppt/slides/slide1.xml",
        external_entity(secret),
        "&xxe;",
    )
    result = run(tmp_path, "partial.pptx", data)
    assert isinstance(result, ParsedDocument)
    assert SECRET not in result.text
    assert "before" in result.text


# --- deep nesting ---------------------------------------------------------------------------


def test_deeply_nested_docx_tables_end_cleanly(tmp_path: Path) -> None:
    # Depends on the Word parser (ingest/parse/docx.py) turning lxml's depth error into
    # a reason; through the sandbox any exception becomes one anyway.
    assert_harmless(run_isolated(tmp_path, "deep.docx", deep_docx_tables()))


def test_deeply_nested_pptx_groups_end_cleanly(tmp_path: Path) -> None:
    reason = reason_of(run(tmp_path, "deep.pptx", deep_pptx_groups(5000)))
    assert reason.startswith(DAMAGED_DECK.split("(")[0])


def test_groups_nested_within_the_xml_limit_are_read(tmp_path: Path) -> None:
    result = run(tmp_path, "groups.pptx", deep_pptx_groups(60))
    assert isinstance(result, ParsedDocument), getattr(result, "reason", "")
    assert "bottom of the groups" in result.text


def test_deeply_nested_html_tables_are_refused(tmp_path: Path) -> None:
    html = ("<table><tr><td>" * 20_000 + "cell" + "</td></tr></table>" * 20_000).encode()
    reason = reason_of(run(tmp_path, "deep.html", html))
    assert reason == TOO_DEEP_HTML.format(depth=256)


# --- lying extensions and encrypted files ---------------------------------------------------


LYING: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "pdf named .docx": ("report.docx", hostile.good_pdf, "is a PDF"),
    "pdf named .pptx": ("slides.pptx", hostile.good_pdf, "is a PDF"),
    "pdf named .xlsx": ("sheet.xlsx", hostile.good_pdf, "is a PDF"),
    "docx named .pptx": (
        "slides.pptx",
        lambda: office_package(".docx"),
        NOT_AN_OFFICE_FILE.format(suffix=".pptx", label="PowerPoint"),
    ),
    "xlsx named .pptx": (
        "numbers.pptx",
        lambda: office_package(".xlsx"),
        NOT_AN_OFFICE_FILE.format(suffix=".pptx", label="PowerPoint"),
    ),
    "pptx named .docx": (
        "letter.docx",
        lambda: office_package(".pptx"),
        NOT_AN_OFFICE_FILE.format(suffix=".docx", label="Word"),
    ),
    "plain zip named .pptx": (
        "archive.pptx",
        hostile.zip_bytes,
        NOT_AN_OFFICE_FILE.format(suffix=".pptx", label="PowerPoint"),
    ),
    "markdown named .pptx": (
        "notes.pptx",
        lambda: b"# Notes\n\nNot a deck.\n",
        NOT_AN_OFFICE_FILE.format(suffix=".pptx", label="PowerPoint"),
    ),
    "png named .html": ("page.html", hostile.png_bytes, NOT_HTML.format(suffix=".html")),
    "png named .htm": ("page.htm", hostile.png_bytes, NOT_HTML.format(suffix=".htm")),
    "zip named .html": ("page.html", hostile.zip_bytes, NOT_HTML.format(suffix=".html")),
    "old binary .ppt renamed .pptx": ("old.pptx", old_binary_ole, "old binary Office format"),
}


@pytest.mark.parametrize("case", list(LYING))
def test_lying_extension_is_refused_with_a_reason(tmp_path: Path, case: str) -> None:
    name, make, expected = LYING[case]
    reason = reason_of(run(tmp_path, name, make()))
    assert expected in reason


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_encrypted_office_file_asks_for_the_password_to_be_removed(
    tmp_path: Path, suffix: str
) -> None:
    reason = reason_of(run(tmp_path, f"locked{suffix}", encrypted_ole()))
    assert reason == PASSWORD_PROTECTED
    assert "remove the password" in reason


# --- through the real worker ------------------------------------------------------------


def test_hostile_office_files_fail_alone_in_the_worker(rt: Runtime) -> None:
    good = store_upload(rt, "good.pptx", office_package(".pptx", "Quarterly roadmap review"))
    locked = store_upload(rt, "locked.pptx", encrypted_ole())
    ratio = store_upload(rt, "ratio.pptx", zeros_part(office_package(".pptx"), 4))
    page = store_upload(rt, "fake.html", hostile.png_bytes())

    outcomes = Worker(rt).run_until_idle()

    assert [o.status for o in outcomes] == ["ready", "failed", "failed", "failed"]
    assert get_document(rt, good).status == DocumentStatus.READY
    expected = {
        locked: PASSWORD_PROTECTED,
        ratio: SUSPICIOUS_RATIO.format(ratio=200),
        page: NOT_HTML.format(suffix=".html"),
    }
    for doc_id, reason in expected.items():
        doc = get_document(rt, doc_id)
        assert doc.status == DocumentStatus.FAILED
        assert doc.error == reason


def test_library_messages_in_reasons_name_no_server_directory() -> None:
    from ingest.errors import error_detail

    said = KeyError("no item 'word/document.xml' in '/srv/kb/tmp/upload-1/x.docx' (/etc/passwd)")
    detail = error_detail(said)
    assert "word/document.xml" in detail  # a part name inside the file stays
    assert "/srv" not in detail and "/etc" not in detail and "x.docx" in detail
    assert len(error_detail(ValueError("y" * 1000))) == 200
