"""The search parameters (app/search/query) and the OpenAI-compatible client base
(app/openai_compat), without a server."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.openai_compat import error_message
from app.rerank import RerankConfig, Reranker, RerankError
from app.search.query import MAX_ASK_K, AskForm, AskQuery, SearchForm, SearchQuery
from app.search.service import MAX_FILTER_TAGS, MAX_K, SearchError


def test_api_models_keep_their_limits_and_refuse_an_unknown_kind() -> None:
    assert SearchQuery(q="x").k == 10 and AskQuery(q="x").k == 5
    for model, top in ((SearchQuery, MAX_K), (AskQuery, MAX_ASK_K)):
        with pytest.raises(ValidationError):
            model(q="x", k=top + 1)
        with pytest.raises(ValidationError):
            model(q="")
    with pytest.raises(SearchError, match="unknown kind"):
        SearchQuery(q="x", kind="chapter").filters()
    f = SearchQuery(q="x", doc_type="", kind="faq", tag=["A", "a "], document_id=3).filters()
    assert (f.doc_type, f.kind, f.tags, f.document_id) == (None, "faq", ("A",), 3)
    assert not hasattr(AskQuery(q="x"), "mode")


def test_page_forms_count_values_they_do_not_offer_as_any() -> None:
    assert SearchForm().q == "" and AskForm().k == 5
    f = SearchForm(q="x", doc_type="exe", language="fr", kind="bogus").filters()
    assert not f.active()
    f = SearchForm(doc_type="pdf", language="zh", kind="question").filters()
    assert (f.doc_type, f.language, f.kind) == ("pdf", "zh", "question")
    many = [f"t{i}" for i in range(MAX_FILTER_TAGS + 30)]
    assert len(AskForm(tag=many).filters().tags) == MAX_FILTER_TAGS


def test_error_message_reads_the_usual_shapes() -> None:
    assert error_message(b'{"error": {"message": "bad key"}}', "x", limit=300) == "bad key"
    assert error_message(b'{"object": "error", "message": "m"}', "x", limit=300) == "m"
    fastapi = b'{"detail": [{"loc": ["body", "dimensions"], "msg": "extra"}]}'
    assert error_message(fastapi, "x", limit=300) == "extra"
    assert "dimensions" in error_message(fastapi, "x", limit=300, join_lists=False)
    assert error_message(b"  ", "Bad Gateway", limit=300) == "Bad Gateway"
    assert error_message(b"x" * 1000, "", limit=300) == "x" * 300


def test_reranker_names_its_settings_in_hints_and_model_lookup() -> None:
    with Reranker(RerankConfig("http://127.0.0.1:9/v1/", "m")) as r:
        assert r.base_url == "http://127.0.0.1:9/v1" and r.models_url.endswith("/v1/models")
        assert "KB_RERANK_API_KEY" in r.hint(401) and r.hint(500) == ""
        assert r.served_model({"data": [{"id": "m", "x": 1}]}) == {"id": "m", "x": 1}
        with pytest.raises(RerankError, match="KB_RERANK_URL") as info:
            r.served_model(["not", "a", "list"])
        assert info.value.kind == "malformed"
        with pytest.raises(RerankError, match="serves: 'other'") as info:
            r.served_model({"data": [{"id": "other"}]})
        assert info.value.kind == "config"
