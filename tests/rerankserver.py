"""A real HTTP server on 127.0.0.1 that speaks vLLM's rerank API (``POST /v1/rerank``).

It scores each document by token overlap with the query (case-folded words; CJK text as
character bigrams), so its order means something a test can predict. It records every
request and applies injected faults, one per request to ``/v1/rerank``, in order:

    with RerankServer() as server:
        server.inject(RerankFault.error(503), RerankFault.slow(2.0), RerankFault.drop())

Starting, stopping and the socket plumbing are tests/loopback's, shared with
tests/embedserver.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.loopback import JSONHandler, LoopbackServer

RERANK_MODEL = "Qwen/Qwen3-Reranker-0.6B"

_WORD = re.compile(r"\w+")
_CJK_RUN = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+)")


def tokens(text: str) -> set[str]:
    """Case-folded words; a run of CJK characters gives its bigrams (or the lone char)."""
    out: set[str] = set()
    for word in _WORD.findall(text.casefold()):
        for i, part in enumerate(_CJK_RUN.split(word)):
            if not part:
                continue
            if i % 2 == 0 or len(part) == 1:  # Latin letters and digits; a lone CJK char
                out.add(part)
            else:
                out.update(part[j : j + 2] for j in range(len(part) - 1))
    return out


def relevance(query: str, document: str) -> float:
    """Token overlap in [0, 1]: shared tokens over sqrt(|query| * |document|)."""
    q, d = tokens(query), tokens(document)
    if not q or not d:
        return 0.0
    return len(q & d) / math.sqrt(len(q) * len(d))


@dataclass(frozen=True)
class RerankFault:
    """What the server does to one request to /v1/rerank instead of answering it."""

    kind: str  # ok | status | slow | drop | malformed | bad_index | duplicate | bad_score
    status: int = 0
    message: str = ""
    style: str = "openai"  # error body: openai {"error": {...}} | vllm {"message"} | detail
    seconds: float = 0.0

    @classmethod
    def ok(cls) -> RerankFault:
        """Answer normally (to place the next fault on a later request)."""
        return cls("ok")

    @classmethod
    def error(
        cls, status: int = 500, message: str = "Internal Server Error", style: str = "openai"
    ) -> RerankFault:
        return cls("status", status=status, message=message, style=style)

    @classmethod
    def slow(cls, seconds: float) -> RerankFault:
        """Answer only after ``seconds`` (past the client's timeout)."""
        return cls("slow", seconds=seconds)

    @classmethod
    def drop(cls) -> RerankFault:
        """Close the connection without a response."""
        return cls("drop")

    @classmethod
    def malformed(cls) -> RerankFault:
        """200 with a body that is not JSON."""
        return cls("malformed")

    @classmethod
    def bad_index(cls) -> RerankFault:
        """A result whose index is past the documents sent."""
        return cls("bad_index")

    @classmethod
    def duplicate(cls) -> RerankFault:
        """The same index twice."""
        return cls("duplicate")

    @classmethod
    def bad_score(cls) -> RerankFault:
        """A score that is a string."""
        return cls("bad_score")


@dataclass
class RerankRequest:
    """One request as the server saw it."""

    method: str
    path: str
    authorization: str | None
    model: str | None = None
    query: str | None = None
    documents: list[str] = field(default_factory=list)
    top_n: int | None = None
    fault: str | None = None


class _Handler(JSONHandler):
    """Errors in the body shape a test asks for: OpenAI's, vLLM's or FastAPI's ``detail``."""

    def send_error_json(self, status: int, message: str, style: str = "openai") -> None:
        if style == "detail":
            self.send_json(status, {"detail": message})
            return
        kinds = {400: "BadRequestError", 401: "invalid_request_error", 404: "NotFoundError"}
        kind = kinds.get(status, "InternalServerError" if status >= 500 else "Error")
        error = {"message": message, "type": kind, "param": None, "code": status}
        if style == "vllm":
            self.send_json(status, {"object": "error", **error})
        else:
            self.send_json(status, {"error": error})


class RerankServer(LoopbackServer[_Handler, RerankFault, RerankRequest]):
    """A fake vLLM rerank server; a context manager that starts and stops it."""

    def __init__(self, *, model: str = RERANK_MODEL, api_key: str | None = None) -> None:
        super().__init__(_Handler, "rerankserver")
        self.model = model
        self.api_key = api_key
        self.max_results: int | None = None  # return at most this many, whatever top_n says

    # -- control -----------------------------------------------------------------------

    def rerank_requests(self) -> list[RerankRequest]:
        return [r for r in self.received if r.path == "/v1/rerank"]

    # -- handling ----------------------------------------------------------------------

    def _authorised(self, h: _Handler) -> bool:
        return self.api_key is None or h.headers.get("Authorization") == f"Bearer {self.api_key}"

    def _unauthorised(self, h: _Handler) -> None:
        h.send_json(
            401,
            {
                "error": {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )

    def _get(self, h: _Handler) -> None:
        path = h.route
        self._record(RerankRequest("GET", path, h.headers.get("Authorization")))
        if path == "/health":
            h.send_json(200, {})
        elif not self._authorised(h):
            self._unauthorised(h)
        elif path == "/v1/models":
            h.send_model_list(self.model, 40960)
        else:
            h.send_json(404, {"detail": "Not Found"})

    def _post(self, h: _Handler, body: bytes) -> None:
        path = h.route
        if path != "/v1/rerank":
            self._record(RerankRequest("POST", path, h.headers.get("Authorization")))
            h.send_json(404, {"detail": "Not Found"})
            return
        try:
            req = json.loads(body)
            query, documents = req["query"], req["documents"]
            top_n = req.get("top_n")
            assert isinstance(query, str) and isinstance(documents, list)
            assert all(isinstance(d, str) for d in documents)
            assert top_n is None or (isinstance(top_n, int) and not isinstance(top_n, bool))
        except (ValueError, KeyError, TypeError, AssertionError):
            self._record(RerankRequest("POST", path, h.headers.get("Authorization")))
            h.send_error_json(400, "invalid request body")
            return
        fault = self._next_fault()
        self._record(
            RerankRequest(
                "POST",
                path,
                h.headers.get("Authorization"),
                model=req.get("model"),
                query=query,
                documents=list(documents),
                top_n=top_n,
                fault=fault.kind if fault else None,
            )
        )
        if not self._authorised(h):
            self._unauthorised(h)
            return
        if fault is not None:
            if fault.kind == "status":
                h.send_error_json(fault.status, fault.message, fault.style)
                return
            if fault.kind == "drop":
                h.drop()
                return
            if fault.kind == "malformed":
                h.send_body(200, b'{"results": [{"index": 0, "relevance_sc')
                return
            if fault.kind == "slow" and not self._hold_back(h, fault.seconds):
                return
        if req.get("model") != self.model:
            h.send_error_json(404, f"The model `{req.get('model')}` does not exist.")
            return
        if not documents:
            h.send_error_json(400, "documents must not be empty")
            return
        scored = sorted(
            ((relevance(query, d), i) for i, d in enumerate(documents)),
            key=lambda s: (-s[0], s[1]),
        )
        if top_n is not None and top_n > 0:
            scored = scored[:top_n]
        if self.max_results is not None:
            scored = scored[: self.max_results]
        results: list[dict[str, Any]] = [
            {"index": i, "document": {"text": documents[i]}, "relevance_score": score}
            for score, i in scored
        ]
        if fault is not None and results:
            if fault.kind == "bad_index":
                results[0]["index"] = len(documents) + 3
            elif fault.kind == "duplicate" and len(results) > 1:
                results[1]["index"] = results[0]["index"]
            elif fault.kind == "bad_score":
                results[0]["relevance_score"] = "high"
        total = sum(len(tokens(query)) + len(tokens(d)) for d in documents)
        h.send_json(
            200,
            {
                "id": f"rerank-{uuid.uuid4().hex}",
                "model": self.model,
                "usage": {"total_tokens": total},
                "results": results,
            },
        )
