"""Fuzzing the parsers: whatever the bytes, parsing returns a ParsedDocument or raises an
IngestError (a reason for a person), within a time limit; anything else is a bug.

Bounded for CI (a few dozen examples each); scripts/fuzz.py runs the same harness for
as long as you like and saves what it finds in tests/fuzz_seeds/crashers/. PDFs start
from the small seed files in tests/fuzz_seeds/ (written by ``scripts/fuzz.py
--make-seeds``) and are mutated: byte flips, truncation, splicing, duplicated ranges,
inserted PDF tokens, replaced numbers, a deleted xref.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.chunk import chunk
from ingest.parse import parse, parse_markdown
from ingest.types import ParsedDocument
from tests import hostile

SEEDS = Path(__file__).parent / "fuzz_seeds"
CRASHERS = SEEDS / "crashers"
PDF_SEEDS = [p.read_bytes() for p in sorted(SEEDS.glob("*.pdf"))]
MD_SEEDS = [p.read_bytes() for p in sorted(SEEDS.glob("*.md"))]
# Seconds one example may run in-process before it counts as a hang. The seeds parse in
# well under a second; a mutation that needs more is a bug to look at.
HANG_S = 10.0

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(autouse=True)
def _quiet_pypdf() -> Iterator[None]:
    # pypdf logs a warning for every damaged object; thousands of lines help nobody here.
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _check(kind: str, detail: str) -> None:
    assert kind in ("ok", "rejected", "memory"), f"{kind}:\n{detail}"


def _chunk_ok(doc: ParsedDocument, max_tokens: int) -> None:
    chunks = chunk(doc, max_tokens=max_tokens)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.text.strip()
        assert c.token_count <= max_tokens


# --- Markdown -------------------------------------------------------------------------

# Any text a file can decode to: no lone surrogates (no decoder produces them).
_chars = st.characters(exclude_categories=["Cs"])
_line_prefix = st.sampled_from(["", "", "", " ", "   ", "    ", "\t", "> ", "- ", "1. ", "> - "])
_fence = st.builds(
    lambda ch, n, info: ch * n + info,
    st.sampled_from(["`", "~"]),
    st.integers(1, 12),
    st.sampled_from(["", "python", " x y", "`", "~"]),
)
_setext = st.builds(lambda ch, n: ch * n, st.sampled_from(["=", "-"]), st.integers(1, 8))
_heading = st.builds(
    lambda n, t: "#" * n + " " + t, st.integers(1, 8), st.text(_chars, max_size=20)
)
_table_row = st.lists(
    st.text(_chars.filter(lambda c: c not in "|\n\r"), max_size=8), max_size=5
).map(lambda cells: "|" + "|".join(cells) + "|")
_front_matter = st.builds(
    lambda body: f"---\n{body}\n---",
    st.sampled_from(
        ["title: T", "title: [x", "a: &x [*x, *x]", ": :", "title: 中文标题\ntags: [a]"]
    )
    | st.text(_chars, max_size=40),
)
_line = st.one_of(
    st.sampled_from(hostile.MARKDOWN_PIECES),
    _fence,
    _setext,
    _heading,
    _table_row,
    st.text(_chars, max_size=40),
    st.text(st.sampled_from("中文标点，。！？「」汉字"), max_size=30),
)
_structured = st.builds(
    lambda head, lines, newline: newline.join([*head, *lines]),
    st.lists(_front_matter, max_size=1),
    st.lists(st.builds(str.__add__, _line_prefix, _line), min_size=1, max_size=40),
    st.sampled_from(["\n", "\r\n", "\r", "\n\n"]),
)


@FUZZ
@given(text=st.text(_chars, max_size=2000), max_tokens=st.integers(1, 400))
def test_any_text_parses_as_markdown_and_chunks(text: str, max_tokens: int) -> None:
    _check(*hostile.outcome(lambda: _chunk_ok(parse_markdown(text), max_tokens), seconds=HANG_S))


@FUZZ
@given(text=_structured, max_tokens=st.integers(1, 400))
def test_markdownish_text_parses_and_chunks(text: str, max_tokens: int) -> None:
    _check(*hostile.outcome(lambda: _chunk_ok(parse_markdown(text), max_tokens), seconds=HANG_S))


# --- Whole files through parse() --------------------------------------------------------

_mutation = st.tuples(
    st.integers(0, len(hostile.MUTATION_KINDS) - 1),
    st.integers(0, 1 << 24),
    st.integers(0, 1 << 16),
    st.integers(0, 1 << 24),
)


def _parse_bytes(tmp: Path, data: bytes, filename: str) -> tuple[str, str]:
    path = tmp / filename
    path.write_bytes(data)
    return hostile.outcome(lambda: parse(path, filename=filename), seconds=HANG_S)


def test_seeds_are_small_and_parse() -> None:
    assert len(PDF_SEEDS) >= 5 and len(MD_SEEDS) >= 2
    for path in sorted(SEEDS.glob("*.*")):
        assert path.stat().st_size < 20_000, path.name
        kind, detail = hostile.outcome(partial(parse, path), seconds=HANG_S)
        assert kind == "ok", f"{path.name}: {kind} {detail}"


@FUZZ
@given(
    seed=st.integers(0, len(PDF_SEEDS) - 1),
    mutations=st.lists(_mutation, min_size=1, max_size=6),
)
def test_mutated_pdfs_parse_or_fail_cleanly(
    tmp_path_factory: pytest.TempPathFactory, seed: int, mutations: list[hostile.Mutation]
) -> None:
    data = hostile.mutate(PDF_SEEDS[seed], mutations, PDF_SEEDS)
    _check(*_parse_bytes(tmp_path_factory.mktemp("pdf"), data, "x.pdf"))


@FUZZ
@given(
    seed=st.integers(0, len(MD_SEEDS) - 1),
    mutations=st.lists(_mutation, min_size=1, max_size=6),
)
def test_mutated_markdown_files_parse_or_fail_cleanly(
    tmp_path_factory: pytest.TempPathFactory, seed: int, mutations: list[hostile.Mutation]
) -> None:
    data = hostile.mutate(MD_SEEDS[seed], mutations, [*MD_SEEDS, *PDF_SEEDS])
    _check(*_parse_bytes(tmp_path_factory.mktemp("md"), data, "x.md"))


@pytest.mark.parametrize("kind", hostile.MUTATION_KINDS)
def test_every_mutation_on_every_seed(tmp_path: Path, kind: str) -> None:
    """Each kind of mutation at a few fixed places, so CI covers them all every run."""
    k = hostile.MUTATION_KINDS.index(kind)
    for seed in PDF_SEEDS:
        for where in (0.1, 0.5, 0.9):
            pos = int(len(seed) * where)
            data = hostile.mutate(seed, [(k, pos, pos * 7 + 3, pos // 3)], PDF_SEEDS)
            _check(*_parse_bytes(tmp_path, data, "x.pdf"))


# --- Crashers found before: each must now parse or fail cleanly -------------------------


def _crashers() -> list[object]:
    cases: list[object] = []
    for info_path in sorted(CRASHERS.glob("*.json")):
        info = json.loads(info_path.read_text(encoding="utf-8"))
        data_path = info_path.with_name(info["file"])
        marks = []
        if info.get("open"):
            marks.append(pytest.mark.xfail(strict=True, reason=info["open"]))
        cases.append(pytest.param(data_path, id=data_path.name, marks=marks))
    return cases


@pytest.mark.parametrize("path", _crashers())
def test_saved_crashers_parse_or_fail_cleanly(path: Path) -> None:
    name = "x.pdf" if path.suffix == ".pdf" else "x.md"
    _check(*hostile.outcome(lambda: parse(path, filename=name), seconds=HANG_S))
