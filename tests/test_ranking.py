"""The top of the list: verbatim questions first, the dictionary's cross-lingual lexical
leg, and the second stage's sentence vectors (stored at ingest, per model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.documents.models import Chunk, ChunkSentences
from app.runtime import Runtime
from app.search.fusion import FusionWeights, fuse
from app.search.lexical import lexical_search
from app.search.rescore import _contains, _folded, blend_sentences, verbatim_first, verbatim_key
from app.search.service import search
from app.text.dictionary import segment, translate_query
from app.text.plain import plain_passage
from app.text.sentences import split_sentences
from app.vectors.index import vector_to_bytes
from app.vectors.sentence_file import stored_sentences
from tests.factories import settle, store_upload
from tests.samples import GUIDE_MD, LEAVE_MD

FIXTURES = Path(__file__).parent / "fixtures"
# Letters, digits, CJK, full-width forms, punctuation and white space: what keys drop
# and keep, and what NFKC and case-folding change.
_VERBATIM_ALPHABET = "abAB12 ,.-_?\n\t年假天ＡＢ１，。？ßẞﬁ"
FAQ_FILES = ("faq_en.md", "faq_zh.md", "faq_wenda_zh.md", "exam_en.md", "exam_zh.md")


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def loaded(rt: Runtime) -> Runtime:
    for name in FAQ_FILES:
        store_upload(rt, name, (FIXTURES / name).read_bytes())
    store_upload(rt, "guide.md", GUIDE_MD.encode())
    store_upload(rt, "leave.md", LEAVE_MD.encode())
    settle(rt)
    return rt


def _questions(rt: Runtime) -> list[tuple[int, str]]:
    with rt.sessions() as s:
        rows = s.execute(select(Chunk.id, Chunk.question).where(Chunk.question.is_not(None))).all()
    return [(cid, q) for cid, q in rows if q and len(verbatim_key(q)) >= 8]


def _trivially_changed(question: str) -> str:
    """The question as someone might paste it: no question mark, other case, full-width
    or half-width punctuation swapped, extra spaces."""
    q = question.rstrip("?？ ").replace("，", ",").replace(",", "，")
    return "  " + (q.upper() if q.isascii() else q) + " "


def test_every_faq_and_exam_question_verbatim_is_rank_one(loaded: Runtime) -> None:
    questions = _questions(loaded)
    languages = {("zh" if not q.isascii() else "en") for _, q in questions}
    assert languages == {"en", "zh"} and len(questions) >= 10
    for chunk_id, question in questions:
        for typed in (question, _trivially_changed(question)):
            hits = search(loaded, query=typed, k=5).hits
            assert hits and hits[0].chunk_id == chunk_id, (typed, [h.question for h in hits])


def test_a_phrase_copied_from_a_passage_finds_it_first(loaded: Runtime) -> None:
    # A sentence of guide.md, pasted with other punctuation.
    hits = search(loaded, query="backups are kept for thirty days", k=3).hits
    assert "kept for thirty days" in hits[0].text


def test_verbatim_first_leaves_short_queries_alone(loaded: Runtime) -> None:
    with loaded.sessions() as s:
        ids = list(s.scalars(select(Chunk.id).order_by(Chunk.id)))
        rows = s.execute(select(Chunk.id, Chunk.question, Chunk.text)).all()
    texts = {cid: (question, text) for cid, question, text in rows}
    ranked = [(cid, 1.0 - i / 100) for i, cid in enumerate(ids)]
    assert verbatim_first(ranked, "年假", texts) == ranked  # two characters prove nothing


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=_VERBATIM_ALPHABET, max_size=60),
    st.text(alphabet=_VERBATIM_ALPHABET, min_size=1, max_size=130),
)
def test_verbatim_containment_equals_comparing_keys(text: str, query: str) -> None:
    """The pattern that finds a short key (and the comparison a long key gets) says what
    comparing the normalised keys says, a passage containing the query or not."""
    key = verbatim_key(query)
    for passage in (text, text + query + text, text + query.upper().replace(" ", "\n")):
        assert _contains(key)(_folded(passage)) == (key in verbatim_key(passage))


def test_dictionary_translates_both_ways() -> None:
    assert {"background", "color"} <= set(translate_query("怎么去掉背景颜色？").split())
    chinese = translate_query("How do I change the background colour of the grid?").split()
    assert {"背景", "网格"} <= set(chinese)
    assert "彩色" in chinese  # "colour", tried again as "color"
    # Names and identifiers are not in the dictionary: the direct lexical leg has them.
    assert translate_query("kb_embedding_url xyzzy") == ""
    assert segment("年假可以跨年使用吗", {"年假": (), "可以": (), "使用": ()}) == [
        "年假",
        "可以",
        "使用",
    ]


def test_translated_terms_find_the_passage_in_the_other_language(loaded: Runtime) -> None:
    # leave.md is Chinese; the English question shares no word with it.
    other = translate_query("How many days of annual leave do employees get?")
    assert "年假" in other.split()
    with loaded.sessions() as s:
        col = loaded.collection(s, None)
        found = lexical_search(s, col.id, other, 5)
        texts = [s.get_one(Chunk, cid).text for cid, _ in found]
    assert any("年假" in t for t in texts)


def test_fusion_adds_the_translated_leg_only_to_candidates() -> None:
    dense = [(1, 0.50), (2, 0.49), (3, 0.48)]
    translated = [(3, 8.0), (9, 9.0)]
    ranked = fuse(dense, [], k=10, translated=translated)
    assert ranked[0][0] == 3  # lifted above 1 and 2
    assert 9 not in dict(ranked)  # found only by the translation: not brought in
    off = fuse(dense, [], k=10, translated=translated, weights=FusionWeights(translated=0))
    assert [cid for cid, _ in off] == [1, 2, 3]


def test_ingest_stores_one_vector_per_sentence(loaded: Runtime) -> None:
    with loaded.sessions() as s:
        col = loaded.collection(s, None)
        rows = s.execute(
            select(Chunk.text, ChunkSentences.model, ChunkSentences.vectors).join(
                ChunkSentences, ChunkSentences.chunk_id == Chunk.id
            )
        ).all()
        chunks = s.scalar(select(Chunk.id).limit(1))
    assert rows and chunks is not None
    for text, model, blob in rows:
        assert model == col.model
        plain = plain_passage(text, "markdown")  # every fixture here is Markdown
        assert len(blob) == len(split_sentences(plain)) * col.dim * 2  # float16


def test_the_best_sentence_lifts_a_diluted_passage(loaded: Runtime) -> None:
    with loaded.sessions() as s:
        col = loaded.collection(s, None)
        a, b = s.scalars(select(Chunk.id).order_by(Chunk.id).limit(2)).all()
        q = np.zeros(col.dim, dtype=np.float32)
        q[0] = 1.0
        on_topic = np.zeros((2, col.dim), dtype=np.float32)
        on_topic[0, 0] = on_topic[1, 1] = 1.0  # one sentence is exactly the question
        s.query(ChunkSentences).filter(ChunkSentences.chunk_id.in_([a, b])).delete()
        s.add(ChunkSentences(chunk_id=b, model=col.model, vectors=vector_to_bytes(on_topic)))
        s.flush()
        dense = [(a, 0.50), (b, 0.45)]
        stored = stored_sentences(s, [a, b], model=col.model, dim=col.dim)
        assert list(stored) == [b]
        assert [cid for cid, _ in blend_sentences(dense, q, stored, weight=0.3)] == [b, a]
        # Another model's vectors are never read; weight 0 changes nothing.
        assert stored_sentences(s, [a, b], model="other", dim=col.dim) == {}
        assert blend_sentences(dense, q, {}, weight=0.3) == dense
        assert blend_sentences(dense, q, stored, weight=0) == dense
        s.rollback()
