"""PowerPoint decks -> one section per slide, with its title, body, tables and notes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pptx import Presentation
from pptx.util import Inches

from app.text.plain import markdown_plain
from ingest.chunk import chunk
from ingest.errors import IngestError
from ingest.parse import parse
from ingest.parse.pptx import NO_TEXT_DECK
from ingest.types import BlockKind, ParsedDocument

# Layouts of the default template.
TITLE_SLIDE, TITLE_AND_CONTENT, TITLE_ONLY, BLANK = 0, 1, 5, 6


def make_deck(path: Path, *, core_title: str | None = "Release Process") -> Path:
    """A four-slide deck: title slide, bullets with levels and notes, a table and a
    grouped text box, and a slide without a title."""
    prs = Presentation()
    if core_title is not None:
        prs.core_properties.title = core_title

    s1 = prs.slides.add_slide(prs.slide_layouts[TITLE_SLIDE])
    s1.shapes.title.text = "Release Process"
    s1.placeholders[1].text = "How the Lumen team ships"

    s2 = prs.slides.add_slide(prs.slide_layouts[TITLE_AND_CONTENT])
    s2.shapes.title.text = "Freeze week"
    body = s2.placeholders[1].text_frame
    body.text = "Branch is cut on Monday"
    for text, level in [("Only fixes are merged", 1), ("Tag the release candidate", 0)]:
        p = body.add_paragraph()
        p.text, p.level = text, level
    s2.notes_slide.notes_text_frame.text = "Remind people about the rollback drill."

    s3 = prs.slides.add_slide(prs.slide_layouts[TITLE_ONLY])
    s3.shapes.title.text = "Owners"
    rows = [("Area", "Owner"), ("Backend", "Mei Lin"), ("Mobile", "Jonas")]
    frame = s3.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            frame.table.cell(r, c).text = text
    group = s3.shapes.add_group_shape()
    box = group.shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1))
    box.text_frame.text = "Escalations go to the on-call lead"

    s4 = prs.slides.add_slide(prs.slide_layouts[BLANK])
    box = s4.shapes.add_textbox(Inches(1), Inches(1), Inches(5), Inches(1))
    box.text_frame.text = "Questions? Ask in #release"

    out = path / "release.pptx"
    prs.save(str(out))
    return out


@pytest.fixture
def deck(tmp_path: Path) -> ParsedDocument:
    return parse(make_deck(tmp_path))


def test_one_section_per_slide_with_slide_numbers(deck: ParsedDocument) -> None:
    headings = [(b.text, b.page) for b in deck.blocks if b.kind is BlockKind.HEADING]
    assert headings == [("Release Process", 1), ("Freeze week", 2), ("Owners", 3), ("Slide 4", 4)]
    assert all(b.page is not None for b in deck.blocks)
    assert all(b.level == 1 for b in deck.blocks if b.kind is BlockKind.HEADING)
    assert deck.page_count == 4
    assert deck.title == deck.meta_title == "Release Process"


def test_bullets_keep_their_levels_and_notes_are_marked(deck: ParsedDocument) -> None:
    slide2 = [b for b in deck.blocks if b.page == 2 and b.kind is not BlockKind.HEADING]
    assert slide2[0].kind is BlockKind.LIST
    assert slide2[0].text == (
        "- Branch is cut on Monday\n   - Only fixes are merged\n- Tag the release candidate"
    )
    assert slide2[-1].text == "Notes: Remind people about the rollback drill."
    assert markdown_plain(slide2[0].text).splitlines() == [
        "• Branch is cut on Monday",
        "  • Only fixes are merged",
        "• Tag the release candidate",
    ]


def test_tables_become_pipe_tables_and_groups_are_opened(deck: ParsedDocument) -> None:
    slide3 = [b for b in deck.blocks if b.page == 3]
    table = next(b for b in slide3 if b.kind is BlockKind.TABLE)
    assert table.hint is not None and table.hint.header_lines == 2  # repeated when split
    assert table.text.splitlines() == [
        "| Area | Owner |",
        "|---|---|",
        "| Backend | Mei Lin |",
        "| Mobile | Jonas |",
    ]
    assert any(b.text == "Escalations go to the on-call lead" for b in slide3)


def test_text_that_looks_like_markup_is_escaped(deck: ParsedDocument) -> None:
    (para,) = [b for b in deck.blocks if b.page == 4 and b.kind is BlockKind.PARAGRAPH]
    assert markdown_plain(para.text) == "Questions? Ask in #release"


def test_chunks_carry_slide_pages_and_titles(deck: ParsedDocument) -> None:
    chunks = chunk(deck)
    by_path = {c.heading_path: c for c in chunks}
    freeze = by_path[("Freeze week",)]
    assert freeze.page_start == freeze.page_end == 2
    assert "rollback drill" in freeze.text
    assert by_path[("Owners",)].page_start == 3


def test_first_slide_title_without_core_title(tmp_path: Path) -> None:
    doc = parse(make_deck(tmp_path, core_title=None))
    assert doc.meta_title is None
    assert doc.title == "Release Process"


def test_hidden_slides_are_kept_and_noted(tmp_path: Path) -> None:
    prs = Presentation()
    for n in range(2):
        slide = prs.slides.add_slide(prs.slide_layouts[TITLE_AND_CONTENT])
        slide.shapes.title.text = f"Topic {n + 1}"
        slide.placeholders[1].text = f"Body {n + 1}"
    prs.slides[1]._element.set("show", "0")
    path = tmp_path / "hidden.pptx"
    prs.save(str(path))
    doc = parse(path)
    assert "Body 2" in doc.text
    assert doc.notes == ("pptx-hidden-slides:1",)


def test_deck_without_text_is_refused(tmp_path: Path) -> None:
    prs = Presentation()
    prs.slides.add_slide(prs.slide_layouts[BLANK])
    path = tmp_path / "empty.pptx"
    prs.save(str(path))
    with pytest.raises(IngestError) as err:
        parse(path)
    assert err.value.reason == NO_TEXT_DECK


def test_numbered_paragraphs_and_line_breaks(tmp_path: Path) -> None:
    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[TITLE_AND_CONTENT])
    slide.shapes.title.text = "Checklist"
    frame = slide.placeholders[1].text_frame
    frame.text = "Back up"
    frame.add_paragraph().text = "Migrate"
    for p in frame.paragraphs:
        p._p.get_or_add_pPr().insert(
            0, p._p.makeelement(f"{{{_A}}}buAutoNum", {"type": "arabicPeriod"})
        )
    box = slide.shapes.add_textbox(Inches(1), Inches(6), Inches(4), Inches(1))
    box.text_frame.text = "line one\vline two"
    path = tmp_path / "numbers.pptx"
    prs.save(str(path))
    doc = parse(path)
    body = [b.text for b in doc.blocks if b.kind is not BlockKind.HEADING]
    assert body == ["1. Back up\n2. Migrate", "line one\nline two"]


_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
