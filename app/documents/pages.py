"""Document pages: list with live progress, upload, view, original, delete, retry."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import FileResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.deps import EditorUser, ReaderUser
from app.auth.models import Role, User
from app.collections import service as collections
from app.collections.access import Access, check_write
from app.collections.access import readable as readable_collections
from app.collections.deps import AccessDep
from app.collections.models import Collection
from app.collections.service import CollectionNotFound
from app.db import utcnow
from app.deps import IdPath, RuntimeDep, SessionDep
from app.documents import chunks as chunk_edits
from app.documents import preview, service
from app.documents.models import Chunk, Document, DocumentStatus
from app.documents.rendered import RenderCache, chunk_key
from app.jobs.models import Job
from app.runtime import Runtime
from app.text import filetypes
from app.text.sizes import human_size
from app.web import is_htmx, render

router = APIRouter(include_in_schema=False)

IN_PROGRESS = {DocumentStatus.QUEUED, DocumentStatus.PARSING, DocumentStatus.EMBEDDING}


@dataclass(frozen=True)
class DocRow:
    doc: Document
    uploader: str | None
    progress: float | None  # 0..1 while a job runs
    message: str
    can_delete: bool
    collection: str = ""
    eta_s: float | None = None  # seconds left, None when unknown
    for_good: bool = False  # failed in a way a retry cannot fix (needs a new upload)

    @property
    def percent(self) -> int | None:
        return None if self.progress is None else round(self.progress * 100)


def _rows(session: Session, user: User, docs: list[Document] | None = None) -> list[DocRow]:
    if docs is None:
        docs = service.list_documents(session, limit=500)
    names = dict(session.execute(select(User.id, User.username)).all())
    collection_names = {c.id: c.name for c in collections.list_all(session)}
    running = {d.id for d in docs if d.status in IN_PROGRESS}
    jobs: dict[int, Job] = {}
    if running:
        query = select(Job).where(Job.document_id.in_(running)).order_by(Job.id)
        for j in session.scalars(query):  # ordered by id: the latest job per document wins
            if j.document_id is not None:
                jobs[j.document_id] = j
    now = utcnow()
    rows = []
    for d in docs:
        job = jobs.get(d.id)
        eta = None
        if job is not None and d.status in service.STAGE_START_PROGRESS:
            # The stage began when the document last changed status (app/lifecycle.py).
            elapsed = (now - d.updated_at).total_seconds()
            start = service.STAGE_START_PROGRESS[DocumentStatus(d.status)]
            eta = service.eta_seconds(job.progress, stage_start=start, elapsed_s=elapsed)
            if d.status == DocumentStatus.PARSING:
                eta = None  # embedding is still to come, and its length is unknown
        rows.append(
            DocRow(
                doc=d,
                uploader=names.get(d.uploaded_by_id) if d.uploaded_by_id else None,
                progress=job.progress if job else None,
                message=job.message if job else "",
                can_delete=_can_delete(user, d),
                collection=collection_names.get(d.collection_id, ""),
                eta_s=eta,
                for_good=service.failed_for_good(d),
            )
        )
    return rows


def _can_delete(user: User, doc: Document) -> bool:
    return user.can(Role.ADMIN) or (user.can(Role.EDITOR) and doc.uploaded_by_id == user.id)


# The documents page's query parameters, all plain text: a value that means nothing
# (an unknown sort, a page that is not a number) is ignored, never an error page.
_FILTER_KEYS = ("q", "status", "collection", "language", "tag", "type", "sort", "order")
_PARAM_MAX = 200
Param = Annotated[str, Query(max_length=10_000)]


def _clean(value: str) -> str:
    return "".join(ch for ch in value if ch.isprintable()).strip()[:_PARAM_MAX]


def _page_number(value: str) -> int:
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        return 1
    return max(1, int(value))


@dataclass(frozen=True)
class ListView:
    """The documents page's filter as the person asked for it (for the form and links)."""

    q: str
    status: str
    collection: str
    language: str
    tag: str
    type: str
    sort: str
    order: str

    def params(self, **changes: str | int) -> dict[str, str]:
        """The non-empty query parameters, with ``changes`` applied."""
        values = {k: str(getattr(self, k)) for k in _FILTER_KEYS}
        values.update({k: str(v) for k, v in changes.items()})
        default = {"sort": service.DEFAULT_SORT, "order": "desc"}
        return {k: v for k, v in values.items() if v and default.get(k) != v}

    def url(self, **changes: str | int) -> str:
        query = urlencode(self.params(**changes))
        return f"/documents?{query}" if query else "/documents"

    def sort_url(self, key: str) -> str:
        """Sort by ``key``; the current sort key again turns its order around."""
        order = "asc" if self.sort == key and self.order == "desc" else "desc"
        if self.sort != key and key in ("name", "status"):
            order = "asc"
        return self.url(sort=key, order=order, page="")


def _list_view(
    session: Session, q: str, status_: str, collection: str, language: str, tag: str,
    doc_type: str, sort: str, order: str,
) -> tuple[ListView, service.DocumentFilter]:  # fmt: skip
    q, tag, collection = _clean(q), _clean(tag), _clean(collection)
    status_ = status_ if status_ in set(DocumentStatus) else ""
    language, doc_type = _clean(language)[:10], _clean(doc_type)[:20]
    sort = sort if sort in service.SORT_KEYS else service.DEFAULT_SORT
    order = order if order in ("asc", "desc") else "desc"
    collection_id: int | None = None
    if collection:
        found = session.scalar(select(Collection.id).where(Collection.name == collection))
        collection_id = found if found is not None else -1  # an unknown name matches nothing
    view = ListView(q, status_, collection, language, tag, doc_type, sort, order)
    f = service.DocumentFilter(
        q=q,
        status=status_ or None,
        collection_id=collection_id,
        language=language or None,
        tag=tag or None,
        doc_type=doc_type or None,
        sort=sort,
        descending=order == "desc",
    )
    return view, f


def page_links(page: int, pages: int, *, around: int = 2) -> list[int | None]:
    """The page numbers to link: the first, the last, and ``around`` each side of
    ``page``; None where numbers are left out ("…")."""
    keep = {1, pages, *range(page - around, page + around + 1)}
    links: list[int | None] = []
    for p in sorted(k for k in keep if 1 <= k <= pages):
        if links and p - (links[-1] or 0) > 1:
            links.append(None)
        links.append(p)
    return links


# Bulk results shown after the redirect (``?done=delete&n=3&skipped=1``).
_BULK_DONE = {"delete", "reingest"}


def _count(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 7 else None


@router.get("/documents")
def documents_page(
    request: Request,
    session: SessionDep,
    user: ReaderUser,
    access: AccessDep,
    q: Param = "",
    status_: Annotated[str, Query(alias="status", max_length=10_000)] = "",
    collection: Param = "",
    language: Param = "",
    tag: Param = "",
    doc_type: Annotated[str, Query(alias="type", max_length=10_000)] = "",
    sort: Param = "",
    order: Param = "",
    page: Param = "",
    done: Param = "",
    n: Param = "",
    skipped: Param = "",
) -> Response:
    """Documents, searched by name, filtered, sorted and paged (GET parameters, so a
    view is a link); while any shown is being ingested, htmx refreshes its rows every
    second, and the rows only (``HX-Target: doc-rows``) when that is what asks."""
    view, f = _list_view(session, q, status_, collection, language, tag, doc_type, sort, order)
    found = service.find_documents(
        session, f, page=_page_number(page), collection_ids=access.readable
    )
    rows = _rows(session, user, found.documents)
    polling = any(r.doc.status in IN_PROGRESS for r in rows)
    facets = service.document_facets(session, collection_ids=access.readable)
    bulk = None
    if done in _BULK_DONE and _count(n) is not None:
        bulk = {"action": done, "n": _count(n), "skipped": _count(skipped) or 0}
    ctx = {
        "rows": rows,
        "polling": polling,
        "found": found,
        "view": view,
        "facets": facets,
        "statuses": list(DocumentStatus),
        "collections": [c.name for c in readable_collections(session, access)],
        "bulk": bulk,
        "rows_url": view.url(page=found.page if found.page > 1 else ""),
        "page_links": page_links(found.page, found.pages),
    }
    block = "rows" if request.headers.get("HX-Target") == "doc-rows" else "results"
    return render(request, "documents.html", ctx, block=block)


@router.post("/documents/bulk")
def bulk_documents(
    rt: RuntimeDep,
    session: SessionDep,
    user: EditorUser,
    access: AccessDep,
    action: Annotated[str, Form(max_length=20)] = "",
    ids: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    back: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Delete or re-index the chosen documents; the list says how many and how many
    were skipped (an editor deletes only their own; one being ingested is not queued)."""
    if action not in ("delete", "reingest"):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "unknown bulk action")
    numbers = [int(i) for i in ids[:1000] if i.isascii() and i.isdigit() and len(i) < 12]
    result = service.run_bulk(
        session,
        rt.settings,
        action="delete" if action == "delete" else "reingest",
        ids=numbers,
        user=user,
        collection_ids=access.writable,
    )
    kept = {k: v for k, v in parse_qsl(back)[:20] if k in _FILTER_KEYS or k == "page"}
    kept.update(done=action, n=str(len(result.done)), skipped=str(len(result.skipped)))
    return RedirectResponse(f"/documents?{urlencode(kept)}", status_code=303)


def _get(session: Session, document_id: int, access: Access, *, write: bool = False) -> Document:
    """The document, if ``access`` may read (with ``write``: change) its collection; 404
    for one it may not read, as for one that does not exist."""
    try:
        return service.get_for(session, document_id, access, write=write)
    except service.DocumentNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.post("/documents/{document_id}/delete")
def delete_document(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    user: EditorUser,
    access: AccessDep,
    document_id: IdPath,
) -> Response:
    doc = _get(session, document_id, access, write=True)
    if not _can_delete(user, doc):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "editors can delete only their own documents"
        )
    removed = service.delete_document(session, doc)
    session.commit()
    service.remove_files(rt.settings, removed)
    return RedirectResponse("/documents", status_code=303)


@router.post("/documents/{document_id}/reingest")
def reingest_document(
    rt: RuntimeDep, session: SessionDep, _user: EditorUser, access: AccessDep, document_id: IdPath
) -> Response:
    """Retry a failed document, or parse and embed a ready one again."""
    service.reingest(
        session,
        _get(session, document_id, access, write=True),
        max_attempts=rt.settings.job_max_attempts,
    )
    session.commit()
    return RedirectResponse("/documents", status_code=303)


@dataclass(frozen=True)
class ChunkView:
    chunk: Chunk
    anchor: str | None  # the rendered Markdown heading this chunk sits under (on this page)


@dataclass(frozen=True)
class PartNav:
    """Where this page is among the parts of a long document (1-based)."""

    number: int
    count: int


# A document without rendered text (PDF) shows this much chunk text per page.
CHUNK_PAGE_CHARS = 128 * 1024


@router.get("/documents/{document_id}")
def document_page(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    user: ReaderUser,
    access: AccessDep,
    document_id: IdPath,
    part: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    chunk: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    edit: Param = "",
) -> Response:
    """A document's metadata and one part of its text: rendered (Markdown) and its chunks.

    A long document is shown in parts (``?part=N``) of a bounded size; ``?chunk=ID``
    opens the part that holds that chunk (search results link there). A part is rendered
    once per content and read back from the cache after that (``app.documents.rendered``).
    """
    doc = _get(session, document_id, access)
    cache = RenderCache(rt.settings.render_cache_dir)
    outline = None
    if doc.doc_type == "markdown":
        outline = cache.outline(doc.content_hash, service.original_path(rt.settings.files_dir, doc))
    if outline:
        key = chunk_key(doc.id, doc.updated_at, doc.chunk_count)
        starts = cache.chunk_starts(outline, key, lambda: _chunk_texts(session, doc.id))
    else:
        starts = _chunk_pages(session, doc.id)
    index = min(part, len(starts)) - 1
    if chunk is not None:
        ordinal = session.scalar(
            select(Chunk.ordinal).where(Chunk.id == chunk, Chunk.document_id == doc.id)
        )
        if ordinal is not None:
            index = max(0, bisect.bisect_right(starts, ordinal) - 1)
    query = select(Chunk).where(Chunk.document_id == doc.id, Chunk.ordinal >= starts[index])
    if index + 1 < len(starts):
        query = query.where(Chunk.ordinal < starts[index + 1])
    chunks = list(session.scalars(query.order_by(Chunk.ordinal)))
    html: Markup | None = None
    anchors: dict[str, str] = {}
    if outline:
        rendered = cache.part(outline, index)
        html = rendered.html
        for h in rendered.headings:
            anchors.setdefault(h.text, h.anchor)
    views = [ChunkView(c, _nearest_anchor(c.heading_path, anchors)) for c in chunks]
    collection = collections.get(session, doc.collection_id)
    can_edit = _can_edit_chunks(user, access, doc)
    ctx = {
        "doc": doc,
        "chunks": views,
        "html": html,
        "nav": PartNav(index + 1, len(starts)) if len(starts) > 1 else None,
        "collection": collection,
        "can_delete": _can_delete(user, doc),
        "can_edit": can_edit,
        # ?edit=1: each chunk links to its tools (left out of the plain view: a part of
        # thousands of small chunks would double in size).
        "edit_mode": can_edit and edit == "1",
        "max_chars": chunk_edits.MAX_TEXT_CHARS,
    }
    return render(request, "document.html", ctx)


def _chunk_texts(session: Session, document_id: int) -> list[tuple[int, str]]:
    query = select(Chunk.ordinal, Chunk.text).where(Chunk.document_id == document_id)
    return [(o, t) for o, t in session.execute(query.order_by(Chunk.ordinal))]


def _chunk_pages(session: Session, document_id: int) -> list[int]:
    """First chunk ordinal of each page of a document shown by its chunks alone."""
    query = select(Chunk.ordinal, func.length(Chunk.text)).where(Chunk.document_id == document_id)
    starts: list[int] = []
    used = 0
    for ordinal, size in session.execute(query.order_by(Chunk.ordinal)):
        if not starts or (used and used + size > CHUNK_PAGE_CHARS):
            starts.append(ordinal)
            used = 0
        used += size
    return starts or [0]


# What an original is served as, by extension; anything not listed is a download of
# bytes. Never text/html (nor SVG): an uploaded page must not run as a page of this site,
# so HTML is served as bytes to save, like any file of an unknown type.
ORIGINAL_MEDIA_TYPES: dict[str, str] = {
    ".md": "text/plain; charset=utf-8",
    ".markdown": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
_BYTES = "application/octet-stream"


def original_media_type(filename: str, doc_type: str) -> str:
    """The media type an original (other than a PDF) is downloaded as."""
    if doc_type == "html":
        return _BYTES
    suffix = PurePath(filename).suffix.lower()
    return ORIGINAL_MEDIA_TYPES.get(
        suffix, "text/plain; charset=utf-8" if doc_type == "markdown" else _BYTES
    )


@router.get("/documents/{document_id}/original")
def original(
    rt: RuntimeDep, session: SessionDep, _user: ReaderUser, access: AccessDep, document_id: IdPath
) -> Response:
    """The uploaded file: a PDF opens in the browser (``#page=N`` works), any other type
    downloads with its own media type (an HTML page as bytes, never as a page)."""
    doc = _get(session, document_id, access)
    path = service.original_path(rt.settings.files_dir, doc)
    if not path.exists():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the original file is missing")
    if doc.doc_type == "pdf":
        media, disposition = "application/pdf", "inline"
    else:
        media, disposition = original_media_type(doc.filename, doc.doc_type), "attachment"
    return FileResponse(
        path,
        media_type=media,
        filename=doc.filename,
        content_disposition_type=disposition,
        # sandbox: a PDF's scripts and forms run in an opaque origin, never as this site
        # (Chromium's viewer still shows it inline, #page=N included).
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'; frame-ancestors 'none'",
        },
    )


# --- upload ---------------------------------------------------------------------------


def _upload_ctx(
    rt: Runtime, session: Session, access: Access, **extra: object
) -> dict[str, object]:
    rt.collection(session)  # the default collection exists
    return {
        # The collections the user may add to.
        "collections": [
            c.name for c in readable_collections(session, access) if access.can_write(c.id)
        ],
        "max_bytes": rt.settings.max_upload_bytes,
        "max_size": human_size(rt.settings.max_upload_bytes),
        "accepted": filetypes.accepted_list(),
        "accept": filetypes.accept_attribute(),
        "archive_limits": service.ARCHIVE_LIMITS,
        "archive_total": human_size(service.ARCHIVE_LIMITS.max_total_bytes),
        **extra,
    }


@router.get("/upload")
def upload_page(
    request: Request, rt: RuntimeDep, session: SessionDep, _user: EditorUser, access: AccessDep
) -> Response:
    return render(request, "upload.html", _upload_ctx(rt, session, access, items=None))


@router.post("/upload")
def upload(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    user: EditorUser,
    access: AccessDep,
    files: Annotated[list[UploadFile], File()],
    collection: Annotated[str, Form()] = "",
    tags: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Accept several files; report for each: accepted, duplicate, or rejected and why."""
    try:
        col = rt.collection(session, collection or None)
        check_write(access, col)
    except CollectionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    # Each file's outcome shows on the page, a full or read-only disk included (its reason,
    # translated): the page answers 200 so that htmx shows it.
    # Admins load whole knowledge bases: a .zip is unpacked (each file its own line),
    # and a picked folder's paths ("kb/hr/leave.md") become a folder tag ("kb/hr").
    admin = user.can(Role.ADMIN)
    items = service.upload_batch(
        session,
        collection=col,
        files=[(f.filename or "unnamed", f.file) for f in files if f.filename],
        files_dir=rt.settings.files_dir,
        max_bytes=rt.settings.max_upload_bytes,
        max_attempts=rt.settings.job_max_attempts,
        uploaded_by=user,
        tags=service.parse_tags(tags),
        archives=admin,
        folders=admin,
    )
    ctx = _upload_ctx(rt, session, access, items=items, chosen=col.name)
    return render(request, "upload.html", ctx, block="upload_results")


def _nearest_anchor(path: list[str] | None, anchors: dict[str, str]) -> str | None:
    """The anchor of the deepest entry of a chunk's heading path that is a rendered
    heading: a man-page option or an exam part is named in the path but is no heading."""
    for entry in reversed(path or []):
        if entry in anchors:
            return anchors[entry]
    return None


# --- page preview (app.documents.preview) -----------------------------------------------

# A page's picture changes only with the file (its hash is in the ETag and the cache).
PAGE_MAX_AGE = 7 * 24 * 3600
MAX_PAGE = 1_000_000
NOT_A_PDF = "Page previews exist only for PDF documents."


def _pdf_original(rt: Runtime, doc: Document) -> Path:
    if doc.doc_type != "pdf":
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_A_PDF)
    path = service.original_path(rt.settings.files_dir, doc)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the original file is missing")
    return path


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return tag in tags or "*" in tags


@router.get("/documents/{document_id}/pages/{page}.png")
def page_picture(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    _user: ReaderUser,
    access: AccessDep,
    document_id: IdPath,
    page: int,
    x: Annotated[int, Query(ge=1, le=2)] = 1,
) -> Response:
    """Page ``page`` (from 1) of a PDF as a PNG (``?x=2``: twice the resolution), drawn
    once per content and kept (``app.documents.preview``)."""
    doc = _get(session, document_id, access)
    if not 1 <= page <= MAX_PAGE or (doc.page_count and page > doc.page_count):
        raise HTTPException(status.HTTP_404_NOT_FOUND, preview.PAGE_MISSING)
    path = _pdf_original(rt, doc)
    tag = preview.etag(doc.content_hash, page, x)
    headers = {
        "Cache-Control": f"private, max-age={PAGE_MAX_AGE}",
        "ETag": tag,
        "X-Content-Type-Options": "nosniff",
    }
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    try:
        picture = preview.page_picture(
            rt.settings.render_cache_dir, doc.content_hash, path, page, x
        )
    except preview.PageNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.message) from exc
    except preview.Unreadable as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.message) from exc
    if picture.path is not None:
        return FileResponse(picture.path, media_type="image/png", headers=headers)
    return Response(picture.data, media_type="image/png", headers=headers)


@router.get("/documents/{document_id}/preview")
def page_preview(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    _user: ReaderUser,
    access: AccessDep,
    document_id: IdPath,
    chunk: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    page: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
) -> Response:
    """The page of a PDF that holds a passage, with the passage marked on it: an htmx
    fragment (opened in a search hit or the document's chunk list), or a whole page.
    ``?page=`` shows another page of a passage that runs over several."""
    doc = _get(session, document_id, access)
    path = _pdf_original(rt, doc)
    # (Without ?chunk= there is no passage to show: a 404, as for another document's.)
    row = session.scalars(
        select(Chunk).where(Chunk.id == chunk, Chunk.document_id == doc.id)
    ).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no passage with that id")
    first = row.page_start or 1
    last = max(row.page_end or first, first)
    shown = page or first
    if not first <= shown <= last:
        raise HTTPException(status.HTTP_404_NOT_FOUND, preview.PAGE_MISSING)
    ctx: dict[str, object] = {
        "doc": doc,
        "chunk": row,
        "page": shown,
        "pages": list(range(first, last + 1)),
        "fragment": is_htmx(request),
        "language": row.language or doc.language,
    }
    try:
        ctx["located"] = preview.locate(path, shown, row.text)
    except preview.PreviewError as exc:
        code = 404 if isinstance(exc, preview.PageNotFound) else 422
        ctx |= {"located": None, "error": exc.message}
        return render(request, "_preview.html", ctx, block="preview", status_code=code)
    return render(request, "_preview.html", ctx, block="preview")


# --- chunk editing (app.documents.chunks) -------------------------------------------------


def _chunk_ctx(
    doc: Document, chunk: Chunk, user: User, access: Access, **extra: object
) -> dict[str, object]:
    return {
        "doc": doc,
        "v": ChunkView(chunk, None),
        "can_edit": _can_edit_chunks(user, access, doc),
        "edit_mode": True,
        "max_chars": chunk_edits.MAX_TEXT_CHARS,
        **extra,
    }


def _can_edit_chunks(user: User, access: Access, doc: Document) -> bool:
    return access.can_write(doc.collection_id) and chunk_edits.can_edit(user, doc)


def _chunk_answer(
    request: Request, doc: Document, chunk: Chunk, user: User, access: Access
) -> Response:
    """htmx: the chunk's item, swapped in place; a plain form: back to it on its page."""
    if is_htmx(request):
        return render(request, "_chunk.html", _chunk_ctx(doc, chunk, user, access))
    return RedirectResponse(
        f"/documents/{doc.id}?chunk={chunk.id}&edit=1#chunk-{chunk.id}", status_code=303
    )


def _writable_chunk(
    session: Session, user: User, access: Access, document_id: int, chunk_id: int
) -> tuple[Document, Chunk]:
    try:
        return chunk_edits.get_for(session, chunk_id, access, user, document_id=document_id)
    except service.DocumentNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.post("/documents/{document_id}/chunks/{chunk_id}")
def edit_chunk(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    user: EditorUser,
    access: AccessDep,
    document_id: IdPath,
    chunk_id: IdPath,
    text: Annotated[str, Form(max_length=4 * chunk_edits.MAX_TEXT_CHARS)] = "",
) -> Response:
    """Save a chunk's new text (embedded again at once). htmx gets the chunk back, with
    the reason and the typed text kept when it could not be saved."""
    doc, chunk = _writable_chunk(session, user, access, document_id, chunk_id)
    try:
        chunk_edits.edit_chunk(rt, session, chunk, text, user)
    except (
        chunk_edits.ChunkInvalid,
        chunk_edits.EmbeddingUnavailable,
        chunk_edits.DocumentBusy,
    ) as exc:
        session.rollback()
        doc, chunk = _writable_chunk(session, user, access, document_id, chunk_id)
        ctx = _chunk_ctx(doc, chunk, user, access, error=exc, draft=text, editing=True)
        name = "_chunk.html" if is_htmx(request) else "chunk_edit.html"
        response = render(request, name, ctx, status_code=exc.status)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    session.commit()
    return _chunk_answer(request, doc, chunk, user, access)


@router.get("/documents/{document_id}/chunks/{chunk_id}")
def chunk_item(
    request: Request,
    session: SessionDep,
    user: EditorUser,
    access: AccessDep,
    document_id: IdPath,
    chunk_id: IdPath,
) -> Response:
    """The chunk as the document page shows it (htmx: closing its edit form)."""
    doc, chunk = _writable_chunk(session, user, access, document_id, chunk_id)
    return _chunk_answer(request, doc, chunk, user, access)


@router.get("/documents/{document_id}/chunks/{chunk_id}/edit")
def chunk_edit_form(
    request: Request,
    session: SessionDep,
    user: EditorUser,
    access: AccessDep,
    document_id: IdPath,
    chunk_id: IdPath,
) -> Response:
    """The chunk with its edit form open: swapped in by htmx, or a page of its own."""
    doc, chunk = _writable_chunk(session, user, access, document_id, chunk_id)
    ctx = _chunk_ctx(doc, chunk, user, access, editing=True)
    return render(request, "_chunk.html" if is_htmx(request) else "chunk_edit.html", ctx)


def _toggle(
    request: Request,
    session: Session,
    user: User,
    access: Access,
    document_id: int,
    chunk_id: int,
    disabled: bool,
) -> Response:
    doc, chunk = _writable_chunk(session, user, access, document_id, chunk_id)
    chunk_edits.set_disabled(session, chunk, disabled, user)
    session.commit()
    return _chunk_answer(request, doc, chunk, user, access)


@router.post("/documents/{document_id}/chunks/{chunk_id}/disable")
def disable_chunk(
    request: Request,
    session: SessionDep,
    user: EditorUser,
    access: AccessDep,
    document_id: IdPath,
    chunk_id: IdPath,
) -> Response:
    """Leave the chunk out of every search until it is enabled again."""
    return _toggle(request, session, user, access, document_id, chunk_id, True)


@router.post("/documents/{document_id}/chunks/{chunk_id}/enable")
def enable_chunk(
    request: Request,
    session: SessionDep,
    user: EditorUser,
    access: AccessDep,
    document_id: IdPath,
    chunk_id: IdPath,
) -> Response:
    return _toggle(request, session, user, access, document_id, chunk_id, False)


@router.get("/documents/{document_id}/chunks/{chunk_id}/history")
def chunk_history(
    request: Request,
    session: SessionDep,
    user: EditorUser,
    access: AccessDep,
    document_id: IdPath,
    chunk_id: IdPath,
) -> Response:
    """Who changed the chunk, when and how (an htmx fragment, or a page)."""
    doc, chunk = _writable_chunk(session, user, access, document_id, chunk_id)
    ctx = {"doc": doc, "chunk": chunk, "entries": chunk_edits.history(session, chunk.id)}
    return render(request, "chunk_history.html", ctx, block="history")
