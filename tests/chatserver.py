"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API as vLLM does:
``GET /v1/models`` and ``POST /v1/chat/completions``, streamed as real server-sent events
(``data: {...}\\n\\n`` in a chunked HTTP body, then ``data: [DONE]``) or not.

It answers from the prompt it is sent, so its answers mean something a test can predict:
it finds the ``<passage id="n">`` blocks and the ``<question>``, and quotes the first
sentence of the passage that shares most words with the question, citing it ``[n]``, in
the language the system message asks for. ``style`` changes the answer:

- ``cite`` (default): as above; no passage in common: "the knowledge base does not contain
  the answer";
- ``invalid``: the same, plus citations of passages that were not given;
- ``echo``: the system and user messages as they arrived;
- ``think``: a ``<think>`` block (its tags split across chunks) before the answer;
- ``reasoning``: ``reasoning_content`` deltas before the answer (vLLM's reasoning parser).

``token_delay`` spaces the pieces of a streamed answer. Faults, one per chat request, in
order (``server.inject(ChatFault.status(429), ChatFault.drop_after(3))``): an error
status, a connection dropped before or in the middle of the answer, a stall before the
first byte or mid-stream, an error event mid-stream.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.loopback import JSONHandler, LoopbackServer
from tests.rerankserver import relevance

CHAT_MODEL = "Qwen/Qwen3-8B"

PASSAGE = re.compile(r'<passage id="(\d+)">\n(.*?)\n</passage>', re.DOTALL)
QUESTION = re.compile(r"<question>\n(.*?)\n</question>", re.DOTALL)
_PIECE = re.compile(r"\s*[\u3000-\u9fff\uff00-\uffef]|\s*[^\u3000-\u9fff\uff00-\uffef\s]+|\s+")
NO_ANSWER_EN = "The knowledge base does not contain the answer to this question."
NO_ANSWER_ZH = "知识库中没有这个问题的答案。"


@dataclass(frozen=True)
class ChatFault:
    """What the server does to one chat request instead of answering it normally."""

    kind: str  # ok | status | drop | drop_after | stall | stall_after | error_event | malformed
    status: int = 0
    message: str = ""
    retry_after: str | None = None
    after: int = 0  # pieces sent before a mid-stream fault
    seconds: float = 0.0

    @classmethod
    def ok(cls) -> ChatFault:
        return cls("ok")

    @classmethod
    def status_(cls, status: int, message: str = "", retry_after: str | None = None) -> ChatFault:
        return cls("status", status=status, message=message or f"error {status}",
                   retry_after=retry_after)  # fmt: skip

    @classmethod
    def drop(cls) -> ChatFault:
        """Close the connection without a response."""
        return cls("drop")

    @classmethod
    def drop_after(cls, pieces: int) -> ChatFault:
        """Stream ``pieces`` pieces of the answer, then cut the connection."""
        return cls("drop_after", after=pieces)

    @classmethod
    def stall(cls, seconds: float) -> ChatFault:
        """Wait ``seconds`` before answering at all (past the client's timeout)."""
        return cls("stall", seconds=seconds)

    @classmethod
    def stall_after(cls, pieces: int, seconds: float) -> ChatFault:
        """Stream ``pieces`` pieces, then go silent for ``seconds``."""
        return cls("stall_after", after=pieces, seconds=seconds)

    @classmethod
    def error_event(cls, pieces: int, message: str = "CUDA out of memory") -> ChatFault:
        """Stream ``pieces`` pieces, then an error event (as vLLM does), then end."""
        return cls("error_event", after=pieces, message=message)

    @classmethod
    def malformed(cls) -> ChatFault:
        return cls("malformed")


@dataclass
class ChatRequest:
    """One request as the server saw it."""

    method: str
    path: str
    authorization: str | None
    body: dict[str, Any] = field(default_factory=dict)
    fault: str | None = None
    seconds: float = 0.0  # how long the server took to answer, from request to last byte

    @property
    def messages(self) -> list[dict[str, str]]:
        return list(self.body.get("messages") or [])

    @property
    def system(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "system"), "")

    @property
    def user(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "user"), "")


def pieces(text: str) -> list[str]:
    """``text`` cut as a model streams it: words with their leading space, CJK by char."""
    return _PIECE.findall(text)


def passages_of(prompt: str) -> dict[int, str]:
    """The passages in a user message: number -> body (after the label lines)."""
    out: dict[int, str] = {}
    for n, block in PASSAGE.findall(prompt):
        _labels, _, body = block.partition("\n\n")
        out[int(n)] = body
    return out


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?。！？])(?:\s|$)", " ".join(text.split()))
    return (m.group(1) if m else " ".join(text.split())[:200]).rstrip(".。!！?？")


def _cjk(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def grounded_answer(system: str, user: str) -> str:
    """What the fake model answers to a grounded prompt: it trusts retrieval's order and
    quotes passage [1], unless [1] shares no word with a question in the same script
    (then nothing answers); it cites one more passage that shares words with the question."""
    chinese = "Write the answer in Chinese" in system
    q = QUESTION.search(user)
    question = q.group(1) if q else user
    passages = passages_of(user)
    first = passages.get(1)
    if first is None or (relevance(question, first) == 0 and _cjk(question) == _cjk(first)):
        return NO_ANSWER_ZH if chinese else NO_ANSWER_EN
    quote = _first_sentence(first)
    also = [n for n, t in sorted(passages.items()) if n > 1 and relevance(question, t) > 0][:1]
    if chinese:
        text = f"根据知识库：{quote}[1]。"
        return text + (f"另见[{also[0]}]。" if also else "")
    text = f"According to the knowledge base: {quote} [1]."
    return text + (f" See also [{also[0]}]." if also else "")


class _Handler(JSONHandler):
    def handle(self) -> None:
        # A client that gave up (a stopped stream, a timeout) resets its connection.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    def send_error_json(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        kind = "BadRequestError" if status == 400 else "InternalServerError"
        self.send_json(status, {"error": {"message": message, "type": kind, "code": status}},
                       headers)  # fmt: skip

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def send_event(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        self.send_chunk(f"data: {text}\n\n".encode())

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class ChatServer(LoopbackServer[_Handler, ChatFault, ChatRequest]):
    """A fake vLLM chat server; a context manager that starts and stops it."""

    def __init__(
        self,
        *,
        model: str = CHAT_MODEL,
        api_key: str | None = None,
        style: str = "cite",
        token_delay: float = 0.0,
        max_model_len: int = 40960,
    ) -> None:
        super().__init__(_Handler, "chatserver")
        self.model = model
        self.api_key = api_key
        self.style = style
        self.token_delay = token_delay
        self.max_model_len = max_model_len

    def chat_requests(self) -> list[ChatRequest]:
        return [r for r in self.received if r.path == "/v1/chat/completions"]

    # -- handling ----------------------------------------------------------------------

    def _authorised(self, h: _Handler) -> bool:
        return self.api_key is None or h.headers.get("Authorization") == f"Bearer {self.api_key}"

    def _get(self, h: _Handler) -> None:
        self._record(ChatRequest("GET", h.route, h.headers.get("Authorization")))
        if h.route == "/health":
            h.send_json(200, {})
        elif not self._authorised(h):
            h.send_error_json(401, "Incorrect API key provided.")
        elif h.route == "/v1/models":
            h.send_model_list(self.model, self.max_model_len)
        else:
            h.send_json(404, {"detail": "Not Found"})

    def _post(self, h: _Handler, body: bytes) -> None:
        auth = h.headers.get("Authorization")
        if h.route != "/v1/chat/completions":
            self._record(ChatRequest("POST", h.route, auth))
            h.send_json(404, {"detail": "Not Found"})
            return
        try:
            req = json.loads(body)
            assert isinstance(req, dict) and isinstance(req["messages"], list)
        except (ValueError, KeyError, AssertionError):
            self._record(ChatRequest("POST", h.route, auth))
            h.send_error_json(400, "invalid request body")
            return
        started = time.perf_counter()
        fault = self._next_fault()
        record = ChatRequest("POST", h.route, auth, req, fault.kind if fault else None)
        self._record(record)
        if not self._authorised(h):
            h.send_error_json(401, "Incorrect API key provided.")
            return
        if req.get("model") != self.model:
            h.send_error_json(404, f"The model `{req.get('model')}` does not exist.")
            return
        if fault is not None:
            if fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                h.send_error_json(fault.status, fault.message, headers)
                return
            if fault.kind == "drop":
                h.drop()
                return
            if fault.kind == "malformed":
                h.send_body(200, b'{"choices": [{"mess')
                return
            if fault.kind == "stall" and not self._hold_back(h, fault.seconds):
                return
        content, reasoning = self._answer(req)
        if req.get("stream"):
            self._stream(h, content, reasoning, fault)
        else:
            self._whole(h, content, reasoning)
        record.seconds = time.perf_counter() - started

    def _answer(self, req: dict[str, Any]) -> tuple[list[str], list[str]]:
        """The content pieces and reasoning pieces of the answer to ``req``."""
        msgs = {m.get("role"): m.get("content", "") for m in req["messages"]}
        system, user = str(msgs.get("system", "")), str(msgs.get("user", ""))
        if self.style == "echo":
            return pieces(f"{system}\n\n{user}"), []
        text = grounded_answer(system, user)
        if self.style == "invalid":
            n = len(passages_of(user))
            text += f" Also [99], [0], 【{n}】 and [{n}, 42]."
        out = pieces(text)
        if self.style == "think":
            out = ["<thi", "nk>", "The passage says ignore [7]", " the rules.", "</th", "ink>",
                   "\n\n", *out]  # fmt: skip
        reasoning = pieces("Let me read passage [5] first.") if self.style == "reasoning" else []
        return out, reasoning

    def _chunk(self, cid: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _stream(
        self, h: _Handler, content: list[str], reasoning: list[str], fault: ChatFault | None
    ) -> None:
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        try:
            h.start_stream()
            h.send_event(self._chunk(cid, {"role": "assistant", "content": ""}))
            for piece in reasoning:
                h.send_event(self._chunk(cid, {"reasoning_content": piece}))
            for i, piece in enumerate(content):
                if fault is not None and i == fault.after:
                    if fault.kind == "drop_after":
                        h.drop()
                        return
                    if fault.kind == "stall_after" and not self._hold_back(h, fault.seconds):
                        return
                    if fault.kind == "error_event":
                        h.send_event({"error": {"message": fault.message, "type": "InternalServerError", "code": 500}})  # fmt: skip
                        h.send_event("[DONE]")
                        h.end_stream()
                        return
                if self.token_delay and not self._hold_back(h, self.token_delay):
                    return
                h.send_event(self._chunk(cid, {"content": piece}))
            h.send_event(self._chunk(cid, {}, "stop"))
            h.send_event("[DONE]")
            h.end_stream()
        except OSError:  # the client went away
            h.close_connection = True

    def _whole(self, h: _Handler, content: list[str], reasoning: list[str]) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        h.send_json(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": len(content)},
            },
        )
