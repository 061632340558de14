"""What search filters on, as arrays kept beside a collection's vector index.

A filtered dense search used to read the ids of every chunk passing the filter from SQL
and hash them into a FAISS selector, per query: at a million chunks a language filter
selects half a million ids. Here the chunk-level facts (document, kind, language) live
in numpy arrays that the index's own sync keeps in step (the same change-log ids), and
the document-level ones (type, language, tags) in small per-document tables read once
per collection version. A filter is then a few vectorised comparisons and a bitmap over
the chunk id space (``faiss.IDSelectorBitmap``), with no SQL on the query path.

The semantics are those of ``app.search.service.allowed_chunks`` (which stays the SQL
form, for the lexical leg): a chunk's language is its own, else its document's; tags
match by ``tag_identity`` and a document passes with ANY of the tags.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import faiss
import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.documents.models import Chunk, Document, DocumentTag
from app.text.tags import tag_identity

_FETCH_BATCH = 5000
_EMPTY_I64: npt.NDArray[np.int64] = np.zeros(0, np.int64)


@dataclass(frozen=True)
class FacetFilter:
    """The filters of a search, as the facet arrays answer them (None: no condition)."""

    doc_type: str | None = None
    language: str | None = None
    document_id: int | None = None
    tags: tuple[str, ...] = ()
    kind: str | None = None


@dataclass
class DocumentFacets:
    """Per-document facts of one collection version."""

    version: int
    doc_type: dict[str, npt.NDArray[np.int64]]
    language: dict[str, npt.NDArray[np.int64]]
    tags: dict[str, npt.NDArray[np.int64]]


def _codes() -> dict[str | None, int]:
    return {None: 0}


class ChunkFacets:
    """One row per chunk of the index: its id, document, kind and own language, as codes.

    The arrays are buffers with room to grow, so that a sync adding a few chunks writes
    a few rows instead of copying a million; removals compact them (only when a removed
    id can be present). Not thread-safe on its own: the index's ``lock`` guards changes
    and reads."""

    def __init__(self) -> None:
        self._ids: npt.NDArray[np.int64] = _EMPTY_I64
        self._doc: npt.NDArray[np.int64] = _EMPTY_I64
        self._kind: npt.NDArray[np.int16] = np.zeros(0, np.int16)
        self._lang: npt.NDArray[np.int16] = np.zeros(0, np.int16)
        self._n = 0
        self._max_id = -1
        self.kinds: dict[str | None, int] = _codes()
        self.langs: dict[str | None, int] = _codes()
        self.documents: DocumentFacets | None = None

    @property
    def ids(self) -> npt.NDArray[np.int64]:
        return self._ids[: self._n]

    @property
    def doc(self) -> npt.NDArray[np.int64]:
        return self._doc[: self._n]

    @property
    def kind(self) -> npt.NDArray[np.int16]:
        return self._kind[: self._n]

    @property
    def lang(self) -> npt.NDArray[np.int16]:
        return self._lang[: self._n]

    def __len__(self) -> int:
        return self._n

    def _code(self, table: dict[str | None, int], value: str | None) -> int:
        return table.setdefault(value, len(table))

    def replace(
        self, touched: Iterable[int], rows: Sequence[tuple[int, int, str, str | None]]
    ) -> None:
        """Drop every ``touched`` chunk id, then add ``rows`` (id, document, kind, language)."""
        gone = np.fromiter(touched, dtype=np.int64)
        gone = gone[gone <= self._max_id]  # new chunks' ids are above every id held
        if len(gone) and self._n:
            keep = ~np.isin(self.ids, gone)
            if not keep.all():
                m = int(keep.sum())
                for buf in (self._ids, self._doc, self._kind, self._lang):
                    buf[:m] = buf[: self._n][keep]
                self._n = m
        if rows:
            n = self._n + len(rows)
            if n > len(self._ids):
                size = max(n, 2 * len(self._ids), 1024)
                self._ids, self._doc = _grown(self._ids, size), _grown(self._doc, size)
                self._kind, self._lang = _grown(self._kind, size), _grown(self._lang, size)
            ids = np.fromiter((r[0] for r in rows), np.int64, count=len(rows))
            self._ids[self._n : n] = ids
            self._doc[self._n : n] = np.fromiter((r[1] for r in rows), np.int64, count=len(rows))
            self._kind[self._n : n] = [self._code(self.kinds, r[2]) for r in rows]
            self._lang[self._n : n] = [self._code(self.langs, r[3]) for r in rows]
            self._n = n
            self._max_id = max(self._max_id, int(ids.max()))

    def clear(self) -> None:
        self._n = 0
        self._max_id = -1

    def allowed(self, f: FacetFilter, docs: DocumentFacets | None) -> npt.NDArray[np.int64]:
        """The chunk ids passing ``f`` (``docs`` is needed for type, language and tags)."""
        mask = np.ones(len(self.ids), dtype=bool)
        if f.kind is not None:
            code = self.kinds.get(f.kind)
            mask &= self.kind == code if code is not None else False
        if f.document_id is not None:
            mask &= self.doc == f.document_id
        if f.doc_type is not None:
            assert docs is not None
            mask &= np.isin(self.doc, docs.doc_type.get(f.doc_type, _EMPTY_I64))
        if f.tags:
            assert docs is not None
            wanted = {tag_identity(t) for t in f.tags}
            tagged = [docs.tags[t] for t in wanted if t in docs.tags]
            mask &= np.isin(self.doc, np.concatenate(tagged) if tagged else _EMPTY_I64)
        if f.language is not None:
            assert docs is not None
            own = self.lang == self.langs.get(f.language, -1)
            inherited = (self.lang == 0) & np.isin(
                self.doc, docs.language.get(f.language, _EMPTY_I64)
            )
            mask &= own | inherited
        return self.ids[mask]


_G = TypeVar("_G", bound=np.generic)


def _grown(arr: npt.NDArray[_G], size: int) -> npt.NDArray[_G]:
    out = np.zeros(size, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


def needs_documents(f: FacetFilter) -> bool:
    return f.doc_type is not None or f.language is not None or bool(f.tags)


def read_rows(
    session: Session, collection_id: int, ids: Iterable[int]
) -> list[tuple[int, int, str, str | None]]:
    """The facet rows of those ``ids`` that are chunks of the collection now."""
    wanted = sorted(ids)
    rows: list[tuple[int, int, str, str | None]] = []
    for start in range(0, len(wanted), _FETCH_BATCH):
        batch = wanted[start : start + _FETCH_BATCH]
        rows.extend(
            (r[0], r[1], r[2], r[3])
            for r in session.execute(
                select(Chunk.id, Chunk.document_id, Chunk.kind, Chunk.language).where(
                    Chunk.collection_id == collection_id, Chunk.id.in_(batch)
                )
            )
        )
    return rows


def read_all_rows(session: Session, collection_id: int) -> list[tuple[int, int, str, str | None]]:
    query = select(Chunk.id, Chunk.document_id, Chunk.kind, Chunk.language).where(
        Chunk.collection_id == collection_id
    )
    return [(r[0], r[1], r[2], r[3]) for r in session.execute(query)]


def read_documents(session: Session, collection_id: int, version: int) -> DocumentFacets:
    """Every document's type, language and tags (by identity), as arrays of ids."""
    by_type: dict[str, list[int]] = {}
    by_lang: dict[str, list[int]] = {}
    for doc_id, doc_type, language in session.execute(
        select(Document.id, Document.doc_type, Document.language).where(
            Document.collection_id == collection_id
        )
    ):
        by_type.setdefault(doc_type, []).append(doc_id)
        if language is not None:
            by_lang.setdefault(language, []).append(doc_id)
    by_tag: dict[str, set[int]] = {}
    for doc_id, tag in session.execute(
        select(DocumentTag.document_id, func.trim(DocumentTag.tag))
        .join(Document, Document.id == DocumentTag.document_id)
        .where(Document.collection_id == collection_id)
    ):
        by_tag.setdefault(tag_identity(tag), set()).add(doc_id)

    def arrays(
        table: dict[str, list[int]] | dict[str, set[int]],
    ) -> dict[str, npt.NDArray[np.int64]]:
        return {k: np.fromiter(sorted(v), np.int64) for k, v in table.items()}

    return DocumentFacets(
        version=version, doc_type=arrays(by_type), language=arrays(by_lang), tags=arrays(by_tag)
    )


@dataclass
class Selection:
    """A FAISS ID selector over a bitmap of the chunk id space, kept alive with its bits."""

    bits: npt.NDArray[np.uint8]
    selector: object
    count: int


def bitmap_selectors(
    allowed: npt.NDArray[np.int64], exclude: npt.NDArray[np.int64] | None
) -> tuple[Selection, Selection | None]:
    """A selector of ``allowed``, and (when ``exclude`` is given) one of ``allowed``
    without ``exclude``, from one mask (at a million ids the mask is most of the cost)."""
    size = int(allowed.max()) + 1 if len(allowed) else 1
    mask = np.zeros(size, dtype=bool)
    mask[allowed] = True
    first = _selection(mask, len(allowed))
    if exclude is None:
        return first, None
    mask[exclude[exclude < size]] = False
    return first, _selection(mask, int(np.count_nonzero(mask)))


def _selection(mask: npt.NDArray[np.bool_], count: int) -> Selection:
    bits = np.packbits(mask, bitorder="little")
    # FAISS takes the bitmap's length in bytes; ids past it are not members.
    return Selection(bits, faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits)), count)
