""".zip archives and folders of documents (admins): each file its own result line,
unpacked safely (entry count, sizes and ratios capped, no traversal, no links, no
nested archives), folder paths kept as tags (issue 16)."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.models import Role
from app.db import transaction
from app.documents import service
from app.documents.models import Document
from app.main import create_app
from app.runtime import Runtime
from app.text.sizes import human_size
from tests.factories import token_for
from tests.webclient import csrf, dom, login, make_user


@pytest.fixture
def backend() -> str:
    return "sqlite"


def md(title: str) -> bytes:
    return f"# {title}\n\nSome text about {title}.\n".encode()


def make_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def upload_zip(
    rt: Runtime, data: bytes, *, name: str = "kb.zip", max_bytes: int = 1 << 24, **kw: object
) -> list[service.UploadOutcome]:
    with transaction(rt.sessions) as s:
        return service.upload_batch(
            s,
            collection=rt.collection(s),
            files=[(name, io.BytesIO(data))],
            files_dir=rt.settings.files_dir,
            max_bytes=max_bytes,
            archives=True,
            folders=True,
            **kw,  # type: ignore[arg-type]
        )


def by_name(outcomes: list[service.UploadOutcome]) -> dict[str, service.UploadOutcome]:
    return {o.filename: o for o in outcomes}


def tags_of(rt: Runtime, doc_id: int | None) -> list[str]:
    assert doc_id is not None
    with rt.sessions() as s:
        return s.get_one(Document, doc_id).tags


def test_mixed_archive_each_entry_its_own_line(rt: Runtime) -> None:
    data = make_zip(
        [
            ("hr/leave.md", md("Leave")),
            ("hr/dup.md", md("Leave")),
            ("notes.txt", b"plain notes\n"),
            ("tools/setup.exe", b"MZ..."),
            ("inner.zip", make_zip([("a.md", md("A"))])),
            ("backup.tar.gz", b"\x1f\x8b..."),
            ("../evil.md", md("Evil")),
            ("/etc/abs.md", md("Abs")),
            ("C:/win.md", md("Win")),
            symlink("link.md", "/etc/passwd"),
            ("__MACOSX/hr/._leave.md", b"\x00\x05\x16\x07"),
            ("hr/.DS_Store", b"\x00"),
            ("empty/", b""),
            ("blank.md", b""),
        ]
    )
    out = by_name(upload_zip(rt, data))
    assert out["kb.zip/hr/leave.md"].result == "accepted"
    assert out["kb.zip/hr/dup.md"].result == "duplicate"
    assert out["kb.zip/notes.txt"].result == "accepted"
    assert out["kb.zip/tools/setup.exe"].message.startswith("unsupported file type")
    assert out["kb.zip/inner.zip"].message == service.ENTRY_NESTED
    assert out["kb.zip/backup.tar.gz"].message == service.ENTRY_NESTED
    for bad in ("../evil.md", "/etc/abs.md", "C:/win.md"):
        assert out[f"kb.zip/{bad}"].message == service.ENTRY_UNSAFE_PATH, bad
    assert out["kb.zip/link.md"].message == service.ENTRY_SYMLINK
    assert out["kb.zip/blank.md"].message == "the file is empty (0 bytes)"
    assert not any("MACOSX" in n or "DS_Store" in n or n.endswith("/") for n in out)
    # The folder inside the archive, under the archive's name, is a tag.
    assert tags_of(rt, out["kb.zip/hr/leave.md"].document_id) == ["kb/hr"]
    assert tags_of(rt, out["kb.zip/notes.txt"].document_id) == ["kb"]
    # Nothing was written outside the data folder.
    assert not (rt.settings.files_dir.parent / "evil.md").exists()


def test_zip_bomb_entry_is_refused_by_ratio(rt: Runtime) -> None:
    zeros = b"\0" * (4 << 20)  # 4 MiB of zeros deflate to ~4 KiB: ~1000:1
    data = make_zip([("bomb.txt", zeros), ("ok.md", md("Fine"))])
    out = by_name(upload_zip(rt, data, max_bytes=64 << 20))
    assert out["kb.zip/bomb.txt"].message == service.ENTRY_RATIO
    assert out["kb.zip/ok.md"].result == "accepted"


def test_entry_over_the_per_file_limit(rt: Runtime) -> None:
    data = make_zip([("big.txt", bytes(range(256)) * 40), ("small.md", md("Small"))])
    out = by_name(upload_zip(rt, data, max_bytes=5000))
    assert out["kb.zip/big.txt"].message == service.ENTRY_TOO_LARGE
    assert out["kb.zip/big.txt"].params["limit"] == human_size(5000)
    assert out["kb.zip/small.md"].result == "accepted"


def test_archive_limits_on_count_and_total(rt: Runtime) -> None:
    many = make_zip([(f"n{i}.md", md(f"N{i}")) for i in range(12)])
    out = upload_zip(rt, many, limits=service.ArchiveLimits(max_entries=10))
    assert [(o.filename, o.message) for o in out] == [("kb.zip", service.ARCHIVE_TOO_MANY)]
    out = upload_zip(rt, many, limits=service.ArchiveLimits(max_total_bytes=100))
    assert [(o.filename, o.message) for o in out] == [("kb.zip", service.ARCHIVE_TOO_BIG)]
    with rt.sessions() as s:
        assert s.scalars(select(Document)).first() is None  # nothing stored


def test_lying_entry_size_is_caught_while_reading(rt: Runtime) -> None:
    data = bytearray(make_zip([("liar.md", md("Liar") * 50)]))
    # The central directory and local header say 10 bytes; the data inflates to more:
    # reading stops at 10 bytes and the CRC check fails.
    real = len(md("Liar") * 50)
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(sig) + offset
        assert int.from_bytes(data[at : at + 4], "little") == real
        data[at : at + 4] = (10).to_bytes(4, "little")
    out = upload_zip(rt, bytes(data))
    assert out[0].result == "rejected" and out[0].message == service.ENTRY_DAMAGED


def test_unreadable_archive_and_encrypted_entry(rt: Runtime) -> None:
    out = upload_zip(rt, b"PK\x03\x04 not really a zip", name="broken.zip")
    assert [(o.filename, o.message) for o in out] == [("broken.zip", service.ARCHIVE_UNREADABLE)]
    data = bytearray(make_zip([("secret.md", md("Secret"))]))
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" flag
        at = data.index(sig) + offset
        data[at] |= 0x1
    out = upload_zip(rt, bytes(data))
    assert out[0].message == service.ENTRY_ENCRYPTED


@pytest.fixture
def editor(rt: Runtime, admin: TestClient) -> Iterator[TestClient]:
    make_user(rt, "ed", Role.EDITOR)
    with TestClient(create_app(runtime=rt)) as c:
        login(c, "ed")
        yield c


def post(client: TestClient, files: list[tuple[str, bytes]], **headers: str) -> list:
    r = client.post(
        "/upload",
        data={"csrf_token": csrf(client, "/upload")},
        files=[("files", f) for f in files],
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return dom(r.text).select(".upload-results li")


def test_upload_page_unpacks_for_admins_only(
    rt: Runtime, admin: TestClient, editor: TestClient
) -> None:
    data = make_zip([("guide/a.md", md("A")), ("guide/b.exe", b"x"), ("c.zip", b"PK")])
    items = post(admin, [("kb.zip", data)])
    classes = [li["class"][0] for li in items]
    assert classes == ["result-accepted", "result-rejected", "result-rejected"]
    assert "kb.zip/guide/a.md" in items[0].get_text()
    page = dom(admin.get("/upload").text)
    assert page.select_one("#folder-input[webkitdirectory]") is not None
    assert ".zip" in page.select_one("#dropzone input[type=file]")["accept"]
    zh = post(admin, [("kb2.zip", data)], **{"Accept-Language": "zh-CN"})
    assert "压缩包中的压缩包不会被解压" in zh[2].get_text()
    # An editor's archive is refused with a reason; no folder picker for them.
    items = post(editor, [("kb.zip", data)])
    assert "only administrators can upload .zip archives" in items[0].get_text()
    assert dom(editor.get("/upload").text).select_one("#folder-input") is None


def test_folder_upload_keeps_the_folder_as_a_tag(
    rt: Runtime, admin: TestClient, editor: TestClient
) -> None:
    items = post(admin, [("handbook/hr/leave.md", md("Leave")), ("handbook/top.md", md("Top"))])
    ids = [int(li.select_one("a")["href"].rsplit("/", 1)[1]) for li in items]
    assert [tags_of(rt, i) for i in ids] == [["handbook/hr"], ["handbook"]]
    # The documents page filters by it.
    page = dom(admin.get("/documents", params={"tag": "handbook/hr"}).text)
    assert len(page.select("#doc-rows tr")) == 1
    # An editor's file names are base names only: no folder tag.
    items = post(editor, [("x/y/other.md", md("Other"))])
    doc_id = int(items[0].select_one("a")["href"].rsplit("/", 1)[1])
    assert tags_of(rt, doc_id) == []


def test_api_upload_unpacks_zip_for_admins(rt: Runtime) -> None:
    data = make_zip([("a.md", md("A")), ("../b.md", md("B"))])
    with TestClient(create_app(runtime=rt)) as api:
        api.headers["Authorization"] = f"Bearer {token_for(rt, 'boss', Role.ADMIN)}"
        r = api.post("/api/v1/documents", files=[("files", ("kb.zip", data))])
        assert r.status_code == 201, r.text
        items = r.json()["items"]
        assert [(i["filename"], i["result"]) for i in items] == [
            ("kb.zip/a.md", "accepted"),
            ("kb.zip/../b.md", "rejected"),
        ]
        api.headers["Authorization"] = f"Bearer {token_for(rt, 'ed2', Role.EDITOR)}"
        r = api.post("/api/v1/documents", files=[("files", ("kb.zip", data))])
        assert r.status_code == 400
        assert "only administrators" in r.json()["detail"][0]["reason"]


def test_folder_of() -> None:
    assert service.folder_of("kb/hr/leave.md") == "kb/hr"
    assert service.folder_of("leave.md") is None
    assert service.folder_of("../../x/./y/z.md") == "x/y"
    assert service.folder_of("a\\b\\c.md") == "a/b"
