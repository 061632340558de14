"""Documents (uploaded originals) and their chunks (passages with vectors)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from app.text.titles import display_title

# DocumentTag.source of the tags read from the file itself.
DOCUMENT_TAG = "document"


class ChunkKind(StrEnum):
    """What a chunk is, so search can filter on it and the UI can label it."""

    SECTION = "section"  # a section of prose (or a token-bounded piece of one)
    FAQ = "faq"  # one FAQ question with its answer
    QUESTION = "question"  # one exam question with its options, answer and explanation


class DocumentStatus(StrEnum):
    QUEUED = "queued"
    PARSING = "parsing"
    EMBEDDING = "embedding"
    READY = "ready"
    FAILED = "failed"


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection_id", "content_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    doc_type: Mapped[str] = mapped_column(String(20))
    storage_key: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(500), default=None)
    language: Mapped[str | None] = mapped_column(String(10), default=None)
    status: Mapped[str] = mapped_column(String(20), default=DocumentStatus.QUEUED, index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    page_count: Mapped[int | None] = mapped_column(Integer, default=None)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    # Pages read by OCR (scans), None when none was; of those, the pages whose mean OCR
    # confidence was below KB_OCR_LOW_CONFIDENCE (their text may be wrong), None if none.
    ocr_pages: Mapped[int | None] = mapped_column(Integer, default=None)
    ocr_low_confidence_pages: Mapped[list[int] | None] = mapped_column(JSON, default=None)
    uploaded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    chunks: Mapped[list[Chunk]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True
    )
    tag_rows: Mapped[list[DocumentTag]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="DocumentTag.position",
        lazy="selectin",
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @property
    def display_title(self) -> str:
        """The title to show, never empty: a stored title that is empty or generic
        ("NAME", "FAQ": documents ingested before titles were chosen) gives way to one
        made of the file name."""
        return display_title(self.title, self.filename)


class DocumentTag(Base):
    """A label of a document (from its front matter or set on upload), one row per tag
    so that search can filter on tags with an index instead of scanning JSON."""

    __tablename__ = "document_tags"

    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # "document" (read from the file, replaced on every re-ingest) or "upload" (set by a
    # person, kept across re-ingests).
    source: Mapped[str] = mapped_column(String(20), default=DOCUMENT_TAG)


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (
        UniqueConstraint("document_id", "ordinal"),
        Index("ix_chunks_collection_id_id", "collection_id", "id"),
        Index("ix_chunks_collection_id_kind", "collection_id", "kind"),
        # Search's language share counts chunks per document and language from it alone.
        Index(
            "ix_chunks_collection_id_document_id_language",
            "collection_id",
            "document_id",
            "language",
        ),
    )

    # The primary key doubles as the FAISS id of the chunk's vector.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    # Denormalised so the index sync reads one table.
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    heading_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    text: Mapped[str] = mapped_column(Text)
    page_start: Mapped[int | None] = mapped_column(Integer, default=None)
    page_end: Mapped[int | None] = mapped_column(Integer, default=None)
    token_count: Mapped[int] = mapped_column(Integer)
    # The language of the chunk's own prose ("zh", "en"; app.text.language), which can
    # differ from its document's in a bilingual one; the document's where the chunk has
    # too little prose to tell. NULL in rows stored before it was kept: readers fall back
    # to Document.language (``coalesce(chunks.language, documents.language)``).
    language: Mapped[str | None] = mapped_column(String(10), default=None)
    # A ChunkKind: "section", "faq" or "question".
    kind: Mapped[str] = mapped_column(String(20), default="section", server_default="section")
    # The question alone, for FAQ and exam-question chunks.
    question: Mapped[str | None] = mapped_column(Text, default=None)
    content_hash: Mapped[str] = mapped_column(String(64))
    # float16, little-endian, L2-normalised; the collection says the dimension.
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    # The vector from the collection's next model while it is being re-embedded.
    next_vector: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # The lexical search terms of the heading path and text, space-separated
    # (app.search.lexical.index_text); indexed by the database's full-text engine.
    search_terms: Mapped[str | None] = mapped_column(Text, default=None)
    # Left out of every search (its FAISS vector, the lexical leg) until enabled again;
    # set by an admin or the document's editor (app/documents/chunks.py). A change logs
    # the chunk as removed or added (migration 0014's triggers).
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    document: Mapped[Document] = relationship(back_populates="chunks")


class ChunkEditAction(StrEnum):
    EDIT = "edit"
    DISABLE = "disable"
    ENABLE = "enable"


class ChunkEdit(Base):
    """One change a person made to a chunk: its text edited, or it disabled or enabled.

    Kept when the chunk goes (a re-ingest replaces a document's chunks): ``chunk_id`` is
    then NULL and ``document_id`` still says whose chunk it was; deleting the document
    deletes its history.
    """

    __tablename__ = "chunk_edits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chunk_id: Mapped[int | None] = mapped_column(
        ForeignKey("chunks.id", ondelete="SET NULL"), index=True
    )
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # A ChunkEditAction.
    action: Mapped[str] = mapped_column(String(10))
    old_text: Mapped[str | None] = mapped_column(Text, default=None)
    new_text: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ChunkSentences(Base):
    """The vectors of a chunk's sentences from one model, computed at ingest.

    The search's second stage scores a passage also by its sentence closest to the
    question (a long passage that answers in one sentence is diluted in its single
    vector), and embedding sentences at query time costs too much on a CPU. One row per
    chunk and model, so a collection moving to another model never reads vectors of the
    old one: the re-embed job writes rows for the new model, and the switch drops the
    rest. Only embedders that keep them (``Embedder.sentence_vectors``) write rows; a
    chunk without one is scored by its own vector alone.
    """

    __tablename__ = "chunk_sentences"

    chunk_id: Mapped[int] = mapped_column(
        ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(300), primary_key=True)
    # float16, little-endian, L2-normalised, one row of ``dim`` per sentence, in the
    # order of app.text.sentences.split_sentences(chunk.text).
    vectors: Mapped[bytes] = mapped_column(LargeBinary)


class ChunkChange(Base):
    """One entry of the chunk change log: a chunk added to or removed from a collection
    (a changed vector is a remove and an add). Written by database triggers on ``chunks``
    (migration 0010), so no code path that stores or deletes chunks can forget it; read by
    app/vectors/index.py to bring a FAISS index up to date incrementally.

    ``version`` is NULL until the transaction bumps the collection's version (a trigger on
    ``collections.version`` stamps its rows with the new value). The version is bumped
    under the collection row's lock, so versions are assigned in commit order, which a
    sequence is not on PostgreSQL; a process covering version V reads the rows with
    ``V < version <= current``. No foreign keys: rows of a deleted collection are pruned.
    An ``op`` of "pruned" is a marker: every change up to its version was deleted.
    """

    __tablename__ = "chunk_changes"
    __table_args__ = (
        Index("ix_chunk_changes_collection_id_version", "collection_id", "version"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    collection_id: Mapped[int] = mapped_column(Integer)
    chunk_id: Mapped[int] = mapped_column(Integer)
    # "add", "remove" or "pruned".
    op: Mapped[str] = mapped_column(String(10))
    version: Mapped[int | None] = mapped_column(Integer, default=None)
