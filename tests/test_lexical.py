"""The lexical leg: the tokeniser, and search in SQLite FTS5 and PostgreSQL full text."""

from __future__ import annotations

import pytest
from sqlalchemy import Select, func, literal_column, select, text
from sqlalchemy.orm import Session

from app.db import make_engine, make_sessionmaker, transaction, upgrade
from app.documents import service as documents
from app.documents.models import Chunk, Document
from app.runtime import Runtime
from app.search.lexical import PG_VECTOR_INDEX, lexical_search, match_query, pg_vector
from app.settings import Settings
from app.text.terms import index_text, terms
from ingest.worker import Worker
from tests.factories import seed_old_rows, store_upload
from tests.samples import GUIDE_MD, LEAVE_MD

TECH_MD = """\
# Troubleshooting

## Disk space

Run `pip cache purge` to free the space taken by downloaded wheels.

## LaTeX

Add `\\usepackage{ctex}` to the preamble to typeset Chinese documents.

## Error codes

Error E1234 means that KB_EMBEDDING_URL is not set. It was fixed in v1.2.3.
"""


# -- the tokeniser --------------------------------------------------------------------


def test_cjk_runs_become_overlapping_bigrams() -> None:
    assert terms("病假工资") == ["病假", "假工", "工资", "资"]
    assert terms("书") == ["书"]
    assert terms("日本語のテキスト")[:3] == ["日本", "本語", "語の"]
    assert terms("한국어 검색") == ["한국", "국어", "어", "검색", "색"]


def test_mixed_text_splits_scripts() -> None:
    assert terms("Windows上安装") == ["window", "上安", "安装", "装"]
    assert terms("在Linux上运行orbit-notes") == [
        "在",
        "linux",
        "上运",
        "运行",
        "行",
        "orbit-notes",
        "orbit",
        "note",
    ]


def test_latin_text_is_case_folded_normalised_and_stemmed() -> None:
    assert terms("Backups") == terms("backup") == ["backup"]
    assert terms("RUNNING") == terms("run") == ["run"]
    assert terms("ＦＵＬＬ Straße") == ["full", "strass"]  # NFKC, casefold
    assert terms("café") == terms("CAFÉ")


def test_identifiers_are_kept_whole_and_in_parts() -> None:
    assert terms("pip cache purge") == ["pip", "cach", "purg"]
    assert terms("\\usepackage{ctex}") == ["usepackag", "ctex"]
    assert terms("E1234") == ["e1234"]
    assert terms("orbit-notes") == ["orbit-notes", "orbit", "note"]
    assert terms("KB_EMBEDDING_URL") == ["kb_embedding_url", "kb", "embed", "url"]
    assert terms("v1.2.3") == ["v1.2.3", "v1", "2", "3"]
    assert terms("end of sentence.") == ["end", "of", "sentenc"]


def test_index_text_and_queries() -> None:
    assert index_text(["Error codes"], "E1234") == "error code e1234"
    assert match_query("病假工资", "sqlite") == '"病假" OR "假工" OR "工资"'
    assert match_query("书", "sqlite") == '"书"*'
    assert match_query("书", "postgresql") == "'书':*"
    assert match_query("it's", "postgresql") == "'it' | 's'"
    assert match_query("  ... {} ", "sqlite") == ""


# -- search in the database -----------------------------------------------------------


def _search(
    rt: Runtime, query: str, k: int = 5, allowed: Select[tuple[int]] | None = None
) -> list[Chunk]:
    with rt.sessions() as s:
        cid = rt.collection(s, None).id
        found = lexical_search(s, cid, query, k, allowed_ids=allowed)
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True)
        assert len({chunk_id for chunk_id, _ in found}) == len(found)
        return [s.get_one(Chunk, chunk_id) for chunk_id, _ in found]


def _ingest(rt: Runtime) -> dict[str, int]:
    ids = {
        "guide": store_upload(rt, "guide.md", GUIDE_MD.encode()),
        "leave": store_upload(rt, "leave.md", LEAVE_MD.encode()),
        "tech": store_upload(rt, "tech.md", TECH_MD.encode()),
    }
    assert {o.status for o in Worker(rt).run_until_idle()} == {"ready"}
    return ids


def test_lexical_search_finds_chinese_english_and_identifiers(rt: Runtime) -> None:
    ids = _ingest(rt)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).where(Chunk.search_terms.is_(None))) == 0

    hit = _search(rt, "病假工资")[0]
    assert hit.document_id == ids["leave"] and "病假期间工资" in hit.text
    hit = _search(rt, "orbit-notes restore")[0]
    assert hit.document_id == ids["guide"] and "orbit-notes restore DATE" in hit.text
    hit = _search(rt, "nightly backups")[0]
    assert "Backups run every night" in hit.text
    for query, needle in [
        ("E1234", "E1234"),
        ("kb_embedding_url", "KB_EMBEDDING_URL"),
        ("v1.2.3", "v1.2.3"),
        ("\\usepackage{ctex}", "\\usepackage{ctex}"),
        ("pip cache purge", "pip cache purge"),
    ]:
        hit = _search(rt, query)[0]
        assert hit.document_id == ids["tech"] and needle in hit.text, query
    # A lone character, inside longer runs, is found too.
    assert any("病假" in c.text for c in _search(rt, "病"))
    # No match, no terms, or query syntax of the engines: no hits and no errors.
    assert _search(rt, "xylophone") == []
    assert _search(rt, "{} ... ") == []
    assert isinstance(_search(rt, "AND OR NOT \"quoted NEAR(a b) * ^ col:x ' \\ : & | !"), list)


def test_allowed_ids_and_k_are_applied_in_the_query(rt: Runtime) -> None:
    ids = _ingest(rt)
    broad = "orbit notes windows linux backup install 病假 年假 error latex pip"
    with rt.sessions() as s:
        matching = len(lexical_search(s, rt.collection(s, None).id, broad, 100))
    assert matching >= 6
    assert len(_search(rt, broad, k=3)) == 3
    assert len(_search(rt, broad, k=100)) == matching

    only_leave = select(Chunk.id).where(Chunk.document_id == ids["leave"])
    hits = _search(rt, "orbit-notes restore 病假", allowed=only_leave)
    assert hits and all(c.document_id == ids["leave"] for c in hits)
    # The best matches overall are in the guide, yet k allowed ones come back.
    with rt.sessions() as s:
        leave_chunks = s.scalar(select(func.count()).where(Chunk.document_id == ids["leave"]))
    hits = _search(rt, broad, k=2, allowed=only_leave)
    assert len(hits) == min(2, leave_chunks or 0) and hits
    # Another collection's chunks are not searched.
    with rt.sessions() as s:
        assert lexical_search(s, 999_999, "orbit", 5) == []


def test_delete_and_reingest_leave_no_stale_or_duplicate_hits(rt: Runtime) -> None:
    ids = _ingest(rt)
    before = [c.id for c in _search(rt, "orbit-notes restore", k=50)]
    assert before

    with transaction(rt.sessions) as s:
        documents.reingest(s, s.get_one(Document, ids["guide"]))
    Worker(rt).run_until_idle()
    after = [c.id for c in _search(rt, "orbit-notes restore", k=50)]
    assert len(after) == len(before) and not set(after) & set(before)  # new rows only

    with transaction(rt.sessions) as s:
        documents.delete_document(s, s.get_one(Document, ids["guide"]))
        documents.delete_document(s, s.get_one(Document, ids["tech"]))
    assert _search(rt, "orbit-notes restore") == []
    assert _search(rt, "E1234") == []
    assert _search(rt, "病假工资")[0].document_id == ids["leave"]
    with rt.sessions() as s:
        _check_index_integrity(s)


def _check_index_integrity(s: Session) -> None:
    if s.get_bind().dialect.name == "sqlite":
        s.execute(text("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)"))


def test_postgresql_query_uses_the_gin_index(rt: Runtime, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    _ingest(rt)
    with rt.sessions() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))
        q = select(Chunk.id).where(pg_vector().op("@@")(literal_column("'orbit'::tsquery")))
        sql = q.compile(s.get_bind(), compile_kwargs={"literal_binds": True})
        plan = "\n".join(s.scalars(text(f"EXPLAIN {sql}")))
        assert PG_VECTOR_INDEX in plan, plan


def test_upgrade_from_0004_backfills_existing_chunks(settings: Settings) -> None:
    engine = make_engine(settings.sqlalchemy_url)
    upgrade(engine, "0004")
    with engine.begin() as conn:
        seed_old_rows(
            conn,
            [('["错误代码"]', "Error E1234: set KB_EMBEDDING_URL."), ("[]", "病假工资按八成发放")],
            kind="section",
        )
    upgrade(engine)
    upgrade(engine)  # idempotent
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        assert s.get_one(Chunk, 1).search_terms == index_text(
            ["错误代码"], "Error E1234: set KB_EMBEDDING_URL."
        )
        assert [cid for cid, _ in lexical_search(s, 1, "E1234", 5)] == [1]
        assert [cid for cid, _ in lexical_search(s, 1, "错误", 5)] == [1]  # the heading
        assert [cid for cid, _ in lexical_search(s, 1, "病假工资", 5)] == [2]
    # New rows and cascading deletes keep the index in step after the migration too.
    with transaction(sessions) as s:
        s.execute(text("UPDATE chunks SET search_terms = 'replac' WHERE id = 2"))
        assert lexical_search(s, 1, "病假工资", 5) == []
        assert [cid for cid, _ in lexical_search(s, 1, "replaced", 5)] == [2]
        s.delete(s.get_one(Document, 1))
    with sessions() as s:
        assert lexical_search(s, 1, "E1234", 5) == []
        assert lexical_search(s, 1, "replaced", 5) == []
        _check_index_integrity(s)
    engine.dispose()
