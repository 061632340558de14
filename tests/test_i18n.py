"""Interface language negotiation and translation (app.i18n)."""

from __future__ import annotations

import re
import string

import pytest

from app.i18n import SUPPORTED, match_language, negotiate, translator
from app.i18n_catalog import CATALOGS, ZH


@pytest.mark.parametrize(
    ("accept", "cookie", "expected"),
    [
        (None, None, "en"),
        ("", None, "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh"),
        ("zh-Hans", None, "zh"),
        ("zh-TW", None, "zh"),
        ("zh-Hant-HK", None, "zh"),
        ("en-US,en;q=0.9", None, "en"),
        ("en;q=0.5, zh;q=0.9", None, "zh"),
        ("fr-FR, de;q=0.9, zh;q=0.1", None, "zh"),
        ("fr-FR, de;q=0.9", None, "en"),
        ("zh;q=0, en;q=0.1", None, "en"),  # q=0: not acceptable
        ("*", None, "en"),
        ("zh;q=abc, en;q=0.2", None, "en"),  # a malformed weight drops its entry
        ("zh ; q = 0.7 , en;q=0.6", None, "zh"),
        (",,;;garbage;;", None, "en"),
        ("en-US", "zh", "zh"),  # the cookie wins
        ("zh-CN", "en", "en"),
        ("zh-CN", "fr", "zh"),  # an unsupported cookie is ignored
        ("en", "zh-CN", "zh"),
        (None, "", "en"),
    ],
)
def test_negotiate(accept: str | None, cookie: str | None, expected: str) -> None:
    assert negotiate(accept, cookie) == expected


def test_match_language() -> None:
    assert match_language("zh_CN") == "zh"
    assert match_language("EN-gb") == "en"
    assert match_language("ja") is None
    assert match_language("") is None


def test_translate_chinese_and_fallback_to_english() -> None:
    _ = translator("zh")
    assert _("Search") == "搜索"
    assert _("Log out") == "退出登录"
    assert _("A message nobody translated") == "A message nobody translated"
    en = translator("en")
    assert en("Search") == "Search"
    assert translator("fr")("Search") == "Search"
    assert translator("zh-CN")("Search") == "搜索"


def test_translate_formats_keyword_arguments() -> None:
    zh, en = translator("zh"), translator("en")
    assert zh("Delete {name}?", name="合同.pdf") == "确定删除“合同.pdf”吗？"
    assert en("Delete {name}?", name="a.pdf") == "Delete a.pdf?"
    assert zh("{n} results in {ms} ms", n=3, ms=12) == "找到 3 条结果，用时 12 毫秒"
    assert zh("Too many attempts; try again in {seconds} seconds.", seconds=30) == (
        "尝试次数过多，请在 30 秒后重试。"
    )
    # Without arguments the text is returned as is, braces and all.
    assert en("{n} results in {ms} ms") == "{n} results in {ms} ms"
    # A keyword named like the message id parameter does not clash.
    assert en("Hello {msgid}", msgid="x") == "Hello x"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_catalog_placeholders_match() -> None:
    for msgid, translation in ZH.items():
        assert _fields(translation) == _fields(msgid), msgid


def test_catalog_is_chinese() -> None:
    untranslated = {"PDF", "Markdown"}
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for msgid, translation in ZH.items():
        assert translation.strip() == translation and translation, msgid
        if msgid not in untranslated:
            assert cjk.search(translation), msgid


def test_catalog_covers_the_interface() -> None:
    required = [
        "Search", "Ask", "Documents", "Upload", "Admin", "Collections", "Users",
        "API tokens", "Jobs", "Log in", "Log out", "Language",
        "Ask a question in any language…",
        "An English question finds Chinese passages, and a Chinese question finds English ones.",
        "Filters", "Collection", "Document type", "Any", "PDF", "Markdown", "Chinese", "English",
        "No passages found.", "{n} results in {ms} ms", "page {n}", "Open at page {n}",
        "Open section", "score",
        "Best answers", "Most relevant sentences are highlighted.", "Cite", "Link to this passage",
        "An answer written by an assistant will appear here in a later version.",
        "Status", "queued", "parsing", "embedding", "ready", "failed", "Chunks", "Pages", "Size",
        "Uploaded by", "Date", "Retry", "Delete", "Re-index", "Delete {name}?", "Sections",
        "Original", "Download original", "Reason",
        "Upload documents", "Drop files here or click to choose", "Maximum size per file: {size}",
        "accepted", "duplicate", "rejected",
        "Create", "Rename", "Description", "Embedder", "Dimension", "Model", "Username",
        "Password", "Role", "admin", "editor", "reader", "Disabled", "Enable", "Disable", "Save",
        "Name", "Created", "Last used", "Revoke", "Copy this token now: it is shown only once.",
        "Attempts", "Error",
        "Invalid username or password.", "Too many attempts; try again in {seconds} seconds.",
        "Page not found", "You do not have permission to do this.",
        "Your session expired; reload the page and try again.",
    ]  # fmt: skip
    assert [m for m in required if m not in ZH] == []
    assert set(CATALOGS) == set(SUPPORTED)


def test_every_message_the_templates_use_has_a_chinese_translation() -> None:
    """A new string in a template without a translation fails here, not in front of users."""
    import re
    from pathlib import Path

    from app.i18n_catalog import ZH

    root = Path(__file__).resolve().parent.parent
    used: set[str] = set()
    for path in (root / "web" / "templates").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'_\(\s*"([^"]+)"', text)) | set(
            re.findall(r"_\(\s*'([^']+)'", text)
        )
    for path in (root / "app").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'"message_id": "([^"]+)"', source))
        used |= set(re.findall(r'forbidden\(request, exc, "([^"]+)"\)', source))
    statuses = {"queued", "parsing", "embedding", "ready", "failed", "running", "done"}
    used |= statuses | {"accepted", "duplicate", "rejected", "admin", "editor", "reader"}
    assert sorted(m for m in used if m not in ZH) == []


def test_stored_reasons_are_translated_by_their_format() -> None:
    from app.i18n import reason_translator

    zh, en = reason_translator("zh"), reason_translator("en")
    waiting = "waiting: the disk is full; next try at 14:05:09 UTC"
    assert zh(waiting) == "等待中：磁盘已满；将于 UTC 14:05:09 重试"
    assert en(waiting) == waiting
    assert zh("no document with id 5") == "没有编号为 5 的文档"
    assert zh("retrying: waiting: the database is busy; next try at 1 UTC; next try at 2 UTC")
    assert zh("a reason nobody translated") == "a reason nobody translated"
    assert zh(None) == "" and zh("") == ""
