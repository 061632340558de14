"""Small Word, Excel and CSV files for the parser tests, written with python-docx,
openpyxl and the csv module into a test's tmp_path."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import docx
import openpyxl
from docx.document import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.text.paragraph import Paragraph


def write_docx(path: Path, build: Callable[[Document], None], *, title: str | None = None) -> Path:
    """A .docx at ``path`` built by ``build(document)``; ``title`` sets the core title."""
    document = docx.Document()
    document.core_properties.title = title or ""
    build(document)
    document.save(str(path))
    return path


def bold(document: Document, text: str) -> Paragraph:
    """A paragraph that is one bold run."""
    p = document.add_paragraph()
    p.add_run(text).bold = True
    return p


def styled(
    document: Document, text: str, style_name: str, *, based_on: str | None = None
) -> Paragraph:
    """A paragraph in a paragraph style called ``style_name`` (created when missing,
    e.g. the localized "标题 1"), optionally based on another style."""
    names = {s.name for s in document.styles}
    if style_name not in names:
        style = document.styles.add_style(style_name, WD_STYLE_TYPE.PARAGRAPH)
        if based_on is not None:
            style.base_style = document.styles[based_on]
    return document.add_paragraph(text, style=style_name)


def outline(document: Document, text: str, level: int) -> Paragraph:
    """A paragraph in the body style whose ``w:outlineLvl`` is ``level - 1``."""
    p = document.add_paragraph(text)
    ppr = p._p.get_or_add_pPr()
    lvl = OxmlElement("w:outlineLvl")
    lvl.set(qn("w:val"), str(level - 1))
    ppr.append(lvl)
    return p


def new_list(document: Document, fmt: str = "decimal", text: str = "%1.") -> str:
    """A new list instance (its own counter) of one level; returns its numId."""
    numbering = document.part.numbering_part.element
    abstract_ids = [int(a.get(qn("w:abstractNumId"))) for a in numbering.iter(qn("w:abstractNum"))]
    num_ids = [int(n.get(qn("w:numId"))) for n in numbering.iter(qn("w:num"))]
    abstract_id, num_id = max(abstract_ids, default=0) + 1, max(num_ids, default=0) + 1
    abstract = parse_xml(
        f'<w:abstractNum {nsdecls("w")} w:abstractNumId="{abstract_id}">'
        f'<w:multiLevelType w:val="singleLevel"/><w:lvl w:ilvl="0"><w:start w:val="1"/>'
        f'<w:numFmt w:val="{fmt}"/><w:lvlText w:val="{text}"/></w:lvl></w:abstractNum>'
    )
    # abstractNum elements come before num elements.
    first_num = numbering.find(qn("w:num"))
    if first_num is not None:
        first_num.addprevious(abstract)
    else:
        numbering.append(abstract)
    numbering.append(
        parse_xml(
            f'<w:num {nsdecls("w")} w:numId="{num_id}">'
            f'<w:abstractNumId w:val="{abstract_id}"/></w:num>'
        )
    )
    return str(num_id)


def numbered(document: Document, text: str, num_id: str, ilvl: int = 0) -> Paragraph:
    """A paragraph numbered by Word (no number in its text) in list ``num_id``."""
    p = document.add_paragraph(text)
    ppr = p._p.get_or_add_pPr()
    ppr.append(
        parse_xml(
            f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{ilvl}"/><w:numId w:val="{num_id}"/></w:numPr>'
        )
    )
    return p


def table(document: Document, rows: Sequence[Sequence[str]]) -> None:
    t = document.add_table(rows=len(rows), cols=max(len(r) for r in rows))
    for i, row in enumerate(rows):
        for k, value in enumerate(row):
            t.cell(i, k).text = value


def text_box(document: Document, before: str, box_text: str) -> Paragraph:
    """A paragraph holding a (VML) text box with ``box_text``."""
    p = document.add_paragraph(before)
    p._p.append(
        parse_xml(
            f'<w:r {nsdecls("w")} xmlns:v="urn:schemas-microsoft-com:vml"><w:pict><v:shape>'
            f"<v:textbox><w:txbxContent><w:p><w:r><w:t>{box_text}</w:t></w:r></w:p>"
            f"</w:txbxContent></v:textbox></v:shape></w:pict></w:r>"
        )
    )
    return p


def write_xlsx(
    path: Path,
    sheets: dict[str, Sequence[Sequence[Any]]],
    *,
    title: str | None = None,
    merges: dict[str, Sequence[str]] | None = None,
) -> Path:
    """An .xlsx with one sheet per entry (rows of values; a str starting with "=" is a
    formula); ``merges`` maps a sheet to ranges such as "A2:A4"."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(list(row))
        for rng in (merges or {}).get(name, ()):
            ws.merge_cells(rng)
    if title:
        wb.properties.title = title
    wb.save(str(path))
    return path


def write_csv(
    path: Path, rows: Sequence[Sequence[str]], *, delimiter: str = ",", encoding: str = "utf-8"
) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


_FOOTNOTES_XML = (
    '<w:footnotes xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
    '<w:footnote w:id="1"><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:footnote>'
    "</w:footnotes>"
)


def footnote_ref(paragraph: Paragraph) -> None:
    """A reference to footnote 1 at the end of ``paragraph`` (see ``add_footnotes``)."""
    paragraph._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:footnoteReference w:id="1"/></w:r>'))


def add_footnotes(path: Path, text: str) -> None:
    """Give a saved .docx a footnotes part whose footnote 1 reads ``text``."""
    with zipfile.ZipFile(path) as src:
        parts = {info.filename: src.read(info) for info in src.infolist()}
    rels = "word/_rels/document.xml.rels"
    parts[rels] = parts[rels].replace(
        b"</Relationships>",
        b'<Relationship Id="rIdFoot1" Target="footnotes.xml" Type="http://schemas.'
        b'openxmlformats.org/officeDocument/2006/relationships/footnotes"/></Relationships>',
    )
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>",
        b'<Override PartName="/word/footnotes.xml" ContentType="application/vnd.openxmlformats-'
        b'officedocument.wordprocessingml.footnotes+xml"/></Types>',
    )
    parts["word/footnotes.xml"] = _FOOTNOTES_XML.format(text=text).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in parts.items():
            dst.writestr(name, data)
