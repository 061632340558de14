"""The MCP server (``kb mcp``) through the real ``mcp`` client library: over stdio (the
command spawned as a subprocess) and over streamable HTTP (``kb mcp --http`` on a free
port), in English and Chinese, with the caller's API token checked as the REST API does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from app.auth import service as auth
from app.auth.models import Role
from app.db import transaction
from app.embedding.registry import EmbedderRegistry
from app.runtime import Runtime
from app.settings import Settings
from tests.chatserver import ChatServer
from tests.factories import settle, store_upload, token_for
from tests.samples import GUIDE_MD, LEAVE_MD

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
KB = [sys.executable, "-m", "app.cli", "mcp"]


@dataclass(frozen=True)
class Kb:
    data: Path
    reader: str  # a reader's API token
    revoked: str  # a token revoked after it was made


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(KB_DATA_DIR=str(data), OMP_NUM_THREADS="1", **extra)
    return env


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory, embedders: EmbedderRegistry) -> Iterator[Kb]:
    """A data folder with an English guide and a Chinese leave policy, ingested."""
    data = tmp_path_factory.mktemp("mcp") / "data"
    rt = Runtime.create(Settings(data_dir=data))
    rt.embedders = embedders
    try:
        store_upload(rt, "guide.md", GUIDE_MD.encode())
        store_upload(rt, "leave.md", LEAVE_MD.encode())
        assert [o.status for o in settle(rt)] == ["ready", "ready"]
        reader = token_for(rt, "agent", Role.READER)
        revoked = token_for(rt, "former", Role.READER)
        with transaction(rt.sessions) as s:
            found = auth.token_for(s, revoked)
            assert found is not None
            auth.revoke_token(s, found.id, by=found.user)
        yield Kb(data, reader, revoked)
    finally:
        rt.close()


def _structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def _check_tools(client: Client) -> None:
    """search and ask, each in English and Chinese, across the two languages."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"search", "ask"}
    assert "highlighted answer sentences" in (tools["ask"].description or "")

    # English query, Chinese passage.
    out = _structured(
        await client.call_tool("search", {"query": "How many days of paid annual leave?", "k": 2})
    )
    top = out["results"][0]
    assert out["weak_match"] is False and out["collection"] == "default"
    assert top["file"] == "leave.md" and top["heading_path"] == ["员工休假制度", "年假"]
    assert top["language"] == "zh" and top["kind"] == "section" and top["score"] > 0
    assert top["title"] == "员工休假制度" and top["page"] is None
    assert (
        top["link"]
        == f"/documents/{top['document_id']}?chunk={top['chunk_id']}#chunk-{top['chunk_id']}"
    )
    assert "十天" in top["snippet"]["text"]

    # Chinese query, English passage; a filter narrows to one language.
    out = _structured(await client.call_tool("search", {"query": "备份保留多少天？", "k": 2}))
    assert out["results"][0]["file"] == "guide.md"
    assert "thirty days" in out["results"][0]["snippet"]["text"]
    out = _structured(
        await client.call_tool("search", {"query": "备份保留多少天？", "language": "zh"})
    )
    assert {h["file"] for h in out["results"]} == {"leave.md"}

    # ask: the passage with its answering sentences, across languages both ways.
    out = _structured(
        await client.call_tool("ask", {"question": "Do I need a certificate for sick leave?"})
    )
    best = out["answers"][0]
    assert best["file"] == "leave.md" and best["heading_path"][-1] == "病假"
    assert any("证明" in s["text"] for s in best["sentences"])
    assert all(best["text"][s["start"] : s["end"]] == s["text"] for s in best["sentences"])
    assert best["link"].startswith(f"/documents/{best['document_id']}?chunk=")
    out = _structured(await client.call_tool("ask", {"question": "备份保留多少天？", "k": 1}))
    assert len(out["answers"]) == 1 and out["weak_match"] is False
    assert any("thirty days" in s["text"] for s in out["answers"][0]["sentences"])

    # Refusals a person can act on come back as tool errors in the REST API's words.
    bad = await client.call_tool("search", {"query": "leave", "kind": "essay"})
    assert bad.is_error and "unknown kind 'essay'" in str(bad.content)
    bad = await client.call_tool("ask", {"question": "leave", "collection": "nope"})
    assert bad.is_error and "no collection named 'nope'" in str(bad.content)
    bad = await client.call_tool("search", {"query": "leave", "k": 1000})
    assert bad.is_error


# --- stdio ---------------------------------------------------------------------------------


def test_stdio_search_and_ask(kb: Kb, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=KB[0], args=KB[1:], env=_env(kb.data, KB_MCP_TOKEN=kb.reader), cwd=ROOT
    )

    async def main() -> None:
        with open(tmp_path / "stderr.txt", "w") as errlog:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                await _check_tools(client)

    anyio.run(main)
    assert "acting as agent (reader)" in (tmp_path / "stderr.txt").read_text()


def test_stdio_ask_writes_answers_with_an_llm(kb: Kb, tmp_path: Path) -> None:
    """With KB_LLM_URL and KB_LLM_MODEL set (the fake chat server), ask answers in writing,
    citing the passages it was given, in the question's language."""
    with ChatServer() as chat:
        env = _env(kb.data, KB_MCP_TOKEN=kb.reader, KB_LLM_URL=chat.url, KB_LLM_MODEL=chat.model)
        params = StdioServerParameters(command=KB[0], args=KB[1:], env=env, cwd=ROOT)

        async def main() -> None:
            with open(tmp_path / "stderr.txt", "w") as errlog:
                async with Client(stdio_client(params, errlog=errlog)) as client:
                    tools = {t.name: t for t in (await client.list_tools()).tools}
                    assert "written from the best passages" in (tools["ask"].description or "")
                    q = "How many days of paid annual leave?"
                    out = _structured(await client.call_tool("ask", {"question": q}))
                    assert out["written"] is True and out["model"] == chat.model
                    assert out["answer"].startswith("According to the knowledge base:")
                    assert "十天" in out["answer"] and out["answers"] == []
                    (cited,) = [c for c in out["citations"] if c["file"] == "leave.md"]
                    assert f"[{cited['n']}]" in out["answer"]
                    assert cited["link"].startswith(f"/documents/{cited['document_id']}?chunk=")
                    assert cited["n"] in [p["n"] for p in out["passages"]]
                    out = _structured(
                        await client.call_tool("ask", {"question": "备份保留多少天？"})
                    )
                    assert (
                        out["answer"].startswith("根据知识库：") and "thirty days" in out["answer"]
                    )
                    assert [c["file"] for c in out["citations"]][:1] == ["guide.md"]

        anyio.run(main)
        assert len(chat.chat_requests()) == 2


@pytest.mark.parametrize(
    ("token", "says"),
    [(None, "no API token"), ("kb_not-a-token", "invalid"), ("revoked", "revoked")],
)
def test_stdio_refuses_to_start_without_a_valid_token(kb: Kb, token: str | None, says: str) -> None:
    args = [*KB, "--token", kb.revoked if token == "revoked" else token] if token else KB
    r = subprocess.run(
        args, env=_env(kb.data), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and r.stdout == ""
    assert says in r.stderr and "KB_MCP_TOKEN" in r.stderr


# --- streamable HTTP -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_url(kb: Kb) -> Iterator[str]:
    """``kb mcp --http`` on a free port (the token in the environment is ignored there)."""
    port = _free_port()
    proc = subprocess.Popen(
        [*KB, "--http", "--port", str(port)],
        env=_env(kb.data, KB_MCP_TOKEN=kb.reader),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        for _ in range(300):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        else:
            raise AssertionError("the MCP server did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _http_client(url: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # The SDK's own client timeouts (30 s, and 300 s to read: the server holds its event
    # stream open between messages); httpx2's default 5 s read timeout ends that stream
    # whenever a tool call (ask, on a busy CPU) takes longer.
    timeout = httpx2.Timeout(30.0, read=300.0)
    client = httpx2.AsyncClient(headers=headers, timeout=timeout)
    transport = streamable_http_client(url, http_client=client)
    return Client(transport)


def test_http_search_and_ask(kb: Kb, http_url: str) -> None:
    async def main() -> None:
        async with _http_client(http_url, kb.reader) as client:
            await _check_tools(client)

    anyio.run(main)


@pytest.mark.parametrize("token", [None, "kb_not-a-token", "revoked"])
def test_http_refuses_requests_without_a_valid_token(
    kb: Kb, http_url: str, token: str | None
) -> None:
    sent = kb.revoked if token == "revoked" else token
    headers = {"Authorization": f"Bearer {sent}"} if sent else {}
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    r = httpx.post(
        http_url,
        json=hello,
        headers={**headers, "Accept": "application/json, text/event-stream"},
    )
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert ("no API token" if sent is None else "invalid, revoked or disabled") in r.json()[
        "detail"
    ]

    async def main() -> None:
        async with _http_client(http_url, sent) as client:
            await client.list_tools()

    with pytest.raises(BaseExceptionGroup) as refused:  # the client gives up on the 401
        anyio.run(main)
    assert refused.group_contains(MCPError, match="error response")


def test_http_token_revoked_mid_session_is_refused(kb: Kb, http_url: str) -> None:
    """Every request is checked, not only the session's first: a revoked token stops."""
    rt = Runtime.create(Settings(data_dir=kb.data))
    try:
        token = token_for(rt, "short-lived", Role.READER)

        async def main() -> None:
            async with _http_client(http_url, token) as client:
                first = await client.call_tool("search", {"query": "backups", "k": 1})
                assert not first.is_error
                with transaction(rt.sessions) as s:
                    found = auth.token_for(s, token)
                    assert found is not None
                    auth.revoke_token(s, found.id, by=found.user)
                await client.call_tool("search", {"query": "backups", "k": 1})

        with pytest.raises(BaseExceptionGroup) as refused:
            anyio.run(main)
        assert refused.group_contains(MCPError, match="error response")
    finally:
        rt.close()
