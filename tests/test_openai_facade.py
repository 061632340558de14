"""The OpenAI-compatible facade (``/v1/models``, ``/v1/chat/completions``) through the
real ``openai`` client library against a live uvicorn server, with the fake chat server
(tests/chatserver) as the LLM, on our sample documents in English and Chinese."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
import uvicorn

from app.answer.service import NOTHING_ANSWERS
from app.auth.models import Role
from app.llm import ChatClient, ChatConfig
from app.main import create_app
from app.runtime import Runtime
from tests.chatserver import ChatFault, ChatServer
from tests.factories import settle, store_upload, token_for
from tests.samples import GUIDE_MD, LEAVE_MD, RELEASE_MD

pytestmark = pytest.mark.slow
EN_ABOUT_ZH = "How many days of paid annual leave do employees get after one year?"
ZH_ABOUT_EN = "备份保留多少天？"
OFF_TOPIC = "sourdough bread baking temperature"
MODEL = "kb:default"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def docs(rt: Runtime) -> dict[str, int]:
    ids = {
        name: store_upload(rt, name, text.encode())
        for name, text in [
            ("guide.md", GUIDE_MD),
            ("leave.md", LEAVE_MD),
            ("release.md", RELEASE_MD),
        ]
    }
    settle(rt)
    return ids


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer() as s:
        yield s


@pytest.fixture
def serve(rt: Runtime, docs: dict[str, int]) -> Iterator[Callable[[], str]]:
    """Start uvicorn (real sockets) on the app; returns its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start() -> str:
        config = uvicorn.Config(
            create_app(runtime=rt), host="127.0.0.1", port=0, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def token(rt: Runtime) -> str:
    return token_for(rt, "chatter", Role.READER)


def with_llm(rt: Runtime, chat: ChatServer) -> None:
    rt.llm = ChatClient(
        ChatConfig(base_url=chat.url, model=chat.model, timeout_s=2.0, backoff_s=0.01)
    )


def client(base: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=token, max_retries=0, timeout=30)


def ask(
    c: openai.OpenAI, question: str, *, stream: bool, model: str = MODEL, pieces: int = 1
) -> tuple[str, str]:
    """(content, finish_reason) of a completion, streamed (in at least ``pieces`` content
    chunks) or not."""
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "an earlier question"},
        {"role": "assistant", "content": "an earlier answer"},
        {"role": "user", "content": question},
    ]
    if not stream:
        done = c.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
        assert done.object == "chat.completion" and done.model == model
        assert done.id.startswith("chatcmpl-") and done.usage is not None
        choice = done.choices[0]
        assert choice.message.role == "assistant" and choice.message.content is not None
        return choice.message.content, choice.finish_reason
    parts: list[str] = []
    finish = ""
    events = c.chat.completions.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    count = 0  # chunks with content
    usage_seen = False
    for chunk in events:
        assert chunk.object == "chat.completion.chunk" and chunk.model == model
        if chunk.usage is not None:
            usage_seen = True
            assert chunk.choices == [] and chunk.usage.completion_tokens > 0
            continue
        delta = chunk.choices[0].delta
        count += bool(delta.content)
        parts.append(delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
    assert count >= pieces and usage_seen  # streamed in pieces, then the usage
    return "".join(parts), finish


# -- with an LLM ---------------------------------------------------------------------------


def test_models_list_each_collection(rt: Runtime, serve: Callable[[], str], token: str) -> None:
    c = client(serve(), token)
    models = c.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert models.data[0].object == "model" and models.data[0].owned_by == "kb"


@pytest.mark.parametrize("stream", [False, True])
def test_written_answers_with_sources_in_english_and_chinese(
    rt: Runtime, serve: Callable[[], str], token: str, chat: ChatServer,
    docs: dict[str, int], stream: bool,
) -> None:  # fmt: skip
    with_llm(rt, chat)
    base = serve()
    c = client(base, token)

    content, finish = ask(c, EN_ABOUT_ZH, stream=stream, pieces=10)
    assert finish == "stop"
    answer, _, sources = content.partition("\n\n**Sources**\n\n")
    assert answer.startswith("According to the knowledge base:") and "十天带薪年假" in answer
    assert sources, content
    (line,) = [s for s in sources.splitlines() if "leave.md" in s]
    n = line.split("]")[0].removeprefix("- [")
    assert f"[{n}]" in answer  # the answer cites the listed source by its number
    assert f"]({base}/documents/{docs['leave.md']}?chunk=" in line  # an absolute link

    # Only the last user message is searched and sent.
    sent = chat.chat_requests()[-1].user
    assert EN_ABOUT_ZH in sent and "an earlier question" not in sent

    content, finish = ask(c, ZH_ABOUT_EN, stream=stream, model="default")  # bare name works
    answer, _, sources = content.partition("\n\n**来源**\n\n")
    assert answer.startswith("根据知识库：") and "thirty days" in answer
    assert "guide.md" in sources and f"{base}/documents/{docs['guide.md']}?chunk=" in sources


@pytest.mark.parametrize("stream", [False, True])
def test_weak_match_says_nothing_answers_with_the_closest_passages(
    rt: Runtime, serve: Callable[[], str], token: str, chat: ChatServer, stream: bool
) -> None:
    with_llm(rt, chat)
    content, finish = ask(client(serve(), token), OFF_TOPIC, stream=stream)
    assert finish == "stop"
    assert content.startswith(NOTHING_ANSWERS)
    assert "**Closest passages**" in content and "/documents/" in content
    assert chat.chat_requests() == []  # the LLM was not asked


def test_llm_failure_is_an_openai_error(
    rt: Runtime, serve: Callable[[], str], token: str, chat: ChatServer
) -> None:
    with_llm(rt, chat)
    chat.inject(*[ChatFault.status_(500, "GPU on fire")] * 4)
    with pytest.raises(openai.InternalServerError) as failed:
        ask(client(serve(), token), EN_ABOUT_ZH, stream=True)
    assert failed.value.status_code == 503
    assert "GPU on fire" in failed.value.message


def test_stream_cut_mid_answer_says_so(
    rt: Runtime, serve: Callable[[], str], token: str, chat: ChatServer
) -> None:
    with_llm(rt, chat)
    chat.inject(ChatFault.drop_after(3))
    content, finish = ask(client(serve(), token), EN_ABOUT_ZH, stream=True)
    assert content.startswith("According to") and "*The answer was cut off:" in content
    assert finish == "stop"


# -- without an LLM ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_without_an_llm_the_answer_is_quotes(
    rt: Runtime, serve: Callable[[], str], token: str, docs: dict[str, int], stream: bool
) -> None:
    assert rt.llm is None
    c = client(serve(), token)
    content, _ = ask(c, EN_ABOUT_ZH, stream=stream)
    assert content.startswith("*No language model is configured")
    assert "\n\n> " in content and "十天" in content  # the quoted sentence
    assert "**Sources**" in content and "leave.md" in content
    content, _ = ask(c, ZH_ABOUT_EN, stream=stream)
    assert content.startswith("*未配置语言模型") and "thirty days" in content
    assert "**来源**" in content
    content, _ = ask(c, OFF_TOPIC, stream=stream)
    assert content.startswith(NOTHING_ANSWERS) and "**Closest passages**" in content


# -- refusals, in OpenAI's error shape ------------------------------------------------------


def test_refusals_are_openai_errors(rt: Runtime, serve: Callable[[], str], token: str) -> None:
    base = serve()
    with pytest.raises(openai.AuthenticationError) as refused:
        client(base, "kb_not-a-token").models.list()
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    # No token: 401 in OpenAI's shape.
    r = httpx.get(base + "/v1/models")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and "Bearer" in err["message"]
    r = httpx.post(base + "/v1/chat/completions", json={"model": MODEL, "messages": []},
                   headers={"Authorization": "Bearer kb_wrong"})  # fmt: skip
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"

    c = client(base, token)
    with pytest.raises(openai.NotFoundError) as missing:
        ask(c, "leave", stream=False, model="kb:nope")
    assert missing.value.code == "model_not_found" and "kb:nope" in missing.value.message
    with pytest.raises(openai.BadRequestError) as invalid:
        c.chat.completions.create(model=MODEL, messages=[{"role": "system", "content": "hi"}])
    assert "no user message" in invalid.value.message
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(base + "/v1/chat/completions", content=b"{not json", headers=auth)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(base + "/v1/chat/completions", json={"model": MODEL}, headers=auth)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    # Content as a list of parts (as some clients send it); unknown fields are ignored.
    parts = [{"type": "text", "text": ZH_ABOUT_EN}, {"type": "image_url", "image_url": {}}]
    r = httpx.post(
        base + "/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": parts}], "n": 1},
        headers=auth,
        timeout=60,
    )
    assert r.status_code == 200 and "thirty days" in r.json()["choices"][0]["message"]["content"]
    # The body is limited like every JSON request (1 MiB).
    huge = {"model": MODEL, "messages": [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]}
    r = httpx.post(base + "/v1/chat/completions", json=huge, headers=auth)
    assert r.status_code == 413
