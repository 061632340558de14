"""The process's long-lived parts, created once by the app factory or the CLI."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.auth.service import ensure_first_admin
from app.auth.usage import TokenUsage
from app.collections import service as collections
from app.collections.models import Collection
from app.db import make_engine, make_read_sessionmaker, make_sessionmaker, transaction, upgrade
from app.embedding.registry import EmbedderRegistry, ensure_same_model
from app.filemodes import private_dir
from app.llm import ChatClient, make_llm
from app.rerank import Reranker, make_reranker
from app.search.lexical import StatisticsThread, refresh_statistics
from app.settings import Settings
from app.vectors.index import AnnPolicy, IndexManager


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    embedders: EmbedderRegistry
    indexes: IndexManager
    # The optional rerank stage (KB_RERANK_URL and KB_RERANK_MODEL); no network until used.
    reranker: Reranker | None = field(default=None)
    # The optional LLM that writes answers (KB_LLM_URL and KB_LLM_MODEL); no network until used.
    llm: ChatClient | None = field(default=None)
    token_usage: TokenUsage = field(init=False)
    # Sessions for read-only requests (app.db.make_read_sessionmaker): the search API.
    read_sessions: sessionmaker[Session] = field(init=False)
    # Refreshes the planner's statistics every 10 minutes (app/search/lexical.py);
    # started by create().
    statistics: StatisticsThread | None = field(init=False, default=None)
    # Per collection id: (its version, chunks per language), so search counts a
    # collection's languages once per change of it rather than once per query
    # (app/search/service.py, _language_share).
    language_counts: dict[int, tuple[int, dict[str | None, int]]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.token_usage = TokenUsage(self.sessions)
        self.read_sessions = make_read_sessionmaker(self.engine)

    @classmethod
    def create(cls, settings: Settings, *, migrate: bool = True) -> Runtime:
        """Open the database (upgrading its schema) and prepare lazy embedders and indexes."""
        for folder in (settings.data_dir, settings.files_dir, settings.index_dir):
            private_dir(folder)  # 700: hashes, the signing key and every document
        engine = make_engine(
            settings.sqlalchemy_url,
            pool_size=settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        if migrate:
            upgrade(engine)
        sessions = make_sessionmaker(engine)
        rt = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            embedders=EmbedderRegistry(settings),
            indexes=IndexManager(
                settings.index_dir,
                sessions=sessions,
                ann=AnnPolicy(
                    min_vectors=settings.ann_min_vectors,
                    encoding=settings.ann_encoding,
                    nprobe=settings.ann_nprobe,
                ),
                terms_min_chunks=settings.lexical_memory_min_chunks,
                sentences_min_chunks=settings.sentence_file_min_chunks,
            ),
            reranker=make_reranker(settings),
            llm=make_llm(settings),
        )
        # Planner statistics: SQLite has none until asked (cheap: sampled, and only where
        # missing or stale), PostgreSQL's autovacuum keeps them; both are refreshed every
        # 10 minutes after, in a thread. Search's SQL plans depend on them.
        if engine.dialect.name == "sqlite":
            with contextlib.suppress(Exception):  # an optimisation only
                refresh_statistics(engine)
        rt.statistics = StatisticsThread(engine)
        return rt

    def collection(
        self,
        session: Session,
        name: str | None = None,
        *,
        create: bool = False,
        loaded: Sequence[Collection] = (),
    ) -> Collection:
        """The named collection (flushed, not committed).

        The default one is created on first use, any other only when ``create`` is true,
        with the configured embedder; otherwise a missing name raises CollectionNotFound.
        A collection of the configured embedder whose recorded model or dimension differs
        from what the embedder gives now raises EmbedderMismatch (vectors never mix).
        ``loaded``: collections the caller read in this session already (no query then).
        """
        name = name or self.settings.default_collection
        if create or name == self.settings.default_collection:
            spec = self.embedders.spec(self.settings.embedder)
            known = next((c for c in loaded if c.name == name), None)
            col = known or collections.get_or_create(session, name=name, spec=spec)
            if col.embedder == spec.name:
                ensure_same_model(spec, collection=col.name, model=col.model, dim=col.dim)
            return col
        return collections.get_by_name(session, name)

    def ensure_default_collection(self) -> None:
        with transaction(self.sessions) as session:
            self.collection(session)

    def ensure_first_admin(self) -> str | None:
        """Create the first admin if there are no users; returns a generated password."""
        pw = self.settings.admin_password
        with transaction(self.sessions) as session:
            return ensure_first_admin(session, pw.get_secret_value() if pw else None)

    def close(self) -> None:
        if self.statistics is not None:
            self.statistics.close()
        self.token_usage.close()
        self.indexes.close()
        self.embedders.close()
        if self.reranker is not None:
            self.reranker.close()
        if self.llm is not None:
            self.llm.close()
        self.engine.dispose()
