"""The parameters of a search and of an ask, defined once for the API and the pages.

Handlers take them as one query model (``Annotated[SearchQuery, Query()]``): FastAPI
reads each field as a query parameter, answers 422 for a value out of its limits, and
ignores parameters it does not know (htmx and browsers add their own).

One strictness: :class:`SearchFilters` checks the closed sets (an unknown ``kind`` is a
:class:`SearchError`, 422). The page models differ only where a form must: ``q`` may be
empty (the bare form), and a value the form does not offer (a stale link) is dropped
before that check, so it counts as "any", as does a tag past the first
:data:`MAX_FILTER_TAGS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.collections.access import Access
from app.collections.models import Collection
from app.deps import MAX_ID
from app.runtime import Runtime
from app.search.service import (
    CHUNK_KINDS,
    MAX_FILTER_TAGS,
    MAX_K,
    SearchFilters,
    SearchResult,
    search,
)
from app.text.filetypes import DOC_TYPES as FILE_DOC_TYPES

MAX_QUERY_CHARS = 2000
# Ask answers with sentences inside each passage: a few passages, not a results list.
MAX_ASK_K = 20
# Tag parameters in one API request (more is a 422; at most MAX_FILTER_TAGS distinct).
MAX_TAG_PARAMS = 100
# The filter values the pages offer.
DOC_TYPES = FILE_DOC_TYPES
LANGUAGES = ("zh", "en")

Question = Annotated[
    str,
    Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question, any language"),
]
# The pages' form: empty shows the form without results.
FormQuestion = Annotated[str, Field(max_length=MAX_QUERY_CHARS)]
SearchK = Annotated[int, Field(ge=1, le=MAX_K)]
AskK = Annotated[int, Field(ge=1, le=MAX_ASK_K)]
Tags = Annotated[
    list[str] | None,
    Field(
        max_length=MAX_TAG_PARAMS,
        description="documents with any of these tags (repeat for several); case-insensitive",
    ),
]
Kind = Annotated[str | None, Field(description="chunk kind: section, faq or question (exam)")]
DocType = Annotated[str | None, Field(description="pdf or markdown")]
Language = Annotated[str | None, Field(description="document language, e.g. zh or en")]
DocumentId = Annotated[int | None, Field(ge=1, le=MAX_ID, description="only this document")]
Mode = Annotated[
    str, Field(description="hybrid (meaning and words, the default), dense or lexical")
]
Rerank = Annotated[bool, Field(description="use the rerank server when one is configured")]


def _offered(value: str | None, offered: tuple[str, ...]) -> str | None:
    return value if value in offered else None


class AskQuery(BaseModel):
    """``/api/v1/ask``: the question, a few passages, and the filters Ask takes."""

    q: Question
    k: AskK = 5
    collection: str | None = None
    tag: Tags = None
    kind: Kind = None

    def filters(self) -> SearchFilters:
        """The filters asked for; a bad value is a SearchError (422)."""
        return SearchFilters(tags=tuple(self.tag or ()), kind=self.kind or None)

    def run(self, rt: Runtime, *, session: Session, access: Access) -> SearchResult:
        """The search these parameters ask for (the API and the MCP tools alike), over
        the collections ``access`` may read."""
        return search(
            rt,
            query=self.q,
            k=self.k,
            collection=self.collection,
            filters=self.filters(),
            session=session,
            access=access,
        )


class SearchQuery(AskQuery):
    """``/api/v1/search``: Ask's parameters, more results, every filter, mode and rerank."""

    k: SearchK = 10
    doc_type: DocType = None
    language: Language = None
    document_id: DocumentId = None
    mode: Mode = "hybrid"
    rerank: Rerank = True

    def filters(self) -> SearchFilters:
        return SearchFilters(
            doc_type=self.doc_type or None,
            language=self.language or None,
            document_id=self.document_id,
            tags=tuple(self.tag or ()),
            kind=self.kind or None,
        )

    def run(
        self,
        rt: Runtime,
        *,
        session: Session,
        access: Access,
        collections: Sequence[Collection] | None = None,
    ) -> SearchResult:
        """``collections``: every collection, read in this request already."""
        return search(
            rt,
            query=self.q,
            k=self.k,
            collection=self.collection,
            filters=self.filters(),
            mode=self.mode,
            rerank=self.rerank,
            session=session,
            access=access,
            collections=collections,
        )


class AskForm(BaseModel):
    """The Ask page's form: ``q`` may be empty; values it does not offer count as "any"."""

    q: FormQuestion = ""
    k: AskK = 5
    collection: str = ""
    tag: list[str] | None = None  # any number: the first MAX_FILTER_TAGS count
    kind: str = ""

    def filters(self) -> SearchFilters:
        return SearchFilters(
            tags=tuple((self.tag or [])[:MAX_FILTER_TAGS]), kind=_offered(self.kind, CHUNK_KINDS)
        )


class SearchForm(AskForm):
    """The search page's form: Ask's, more results, and the type and language filters."""

    k: SearchK = 10
    doc_type: str = ""
    language: str = ""

    def filters(self) -> SearchFilters:
        return SearchFilters(
            doc_type=_offered(self.doc_type, DOC_TYPES),
            language=_offered(self.language, LANGUAGES),
            tags=tuple((self.tag or [])[:MAX_FILTER_TAGS]),
            kind=_offered(self.kind, CHUNK_KINDS),
        )
