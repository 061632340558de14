"""The rendered text of a Markdown document, in parts, cached on disk by content hash.

A document page shows one part of the text (at most ``PART_BYTES`` of source, see
``app.text.parts``), so a request never renders more than that, however long the
document. What it renders is kept, so each part is rendered once per content (a second
view, or the same file in another collection, reads the HTML back):

    <data_dir>/render-cache/v<VERSION>/<hash[:2]>/<hash>/
        outline.json          where each part starts and ends (written last: complete)
        source.txt            the decoded text, UTF-8, "\\n" line ends
        references.json       the link reference definitions of the whole text
        part-<n>.json         one part's sanitised HTML and headings
        chunks-<key>.json     first chunk ordinal of each part, for one ingest of a document

The outline is one linear pass over the text (decode and a few regular-expression
scans, no Markdown parse); the chunk map one pass more (each chunk's first line looked
up in order). Files are written whole to a temporary name and renamed, so a reader
never sees half of one; when the data directory cannot be written, pages still work,
uncached. Nothing here removes a cache: it is derived data, safe to delete at any time.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from app.text.decode import NotText, decode_text
from app.text.parts import PART_BYTES, Part, locate, normalise_newlines, split_parts
from app.text.render import Heading, link_references, render_markdown

# Bump when the renderer's output or the cut into parts changes: old caches are ignored.
VERSION = 1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outline:
    """The parts of one document's text; ``not_text`` when the file is not text."""

    dir: Path
    parts: tuple[Part, ...]
    byte_starts: tuple[int, ...]  # of each part in source.txt, and its length at the end
    not_text: str | None = None
    # The text itself, only when the cache could not be written (read-only data dir).
    text: str | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.parts)


@dataclass(frozen=True)
class RenderedPart:
    html: Markup
    headings: list[Heading]


class RenderCache:
    """Parts of documents' rendered text under ``root`` (``<data_dir>/render-cache``)."""

    def __init__(self, root: Path, *, part_bytes: int = PART_BYTES) -> None:
        self.root = root / f"v{VERSION}"
        self.part_bytes = part_bytes

    def outline(self, content_hash: str, original: Path) -> Outline | None:
        """The parts of a stored original (cut on first use); None if it is missing."""
        folder = self.root / content_hash[:2] / content_hash
        meta = _read_json(folder / "outline.json")
        if meta is not None and meta.get("part_bytes") == self.part_bytes:
            parts = tuple(Part(s, e, p) for s, e, p in meta["parts"])
            # (A cache someone cleared in part is cut again.)
            if not parts or (folder / "source.txt").exists():
                return Outline(folder, parts, tuple(meta["byte_starts"]), meta.get("not_text"))
        try:
            data = original.read_bytes()
        except FileNotFoundError:
            return None
        return self._cut(folder, data)

    def forget(self, content_hash: str) -> None:
        """Drop what is kept for a content hash (its document was deleted)."""
        shutil.rmtree(self.root / content_hash[:2] / content_hash, ignore_errors=True)

    def part(self, outline: Outline, index: int) -> RenderedPart:
        """Part ``index`` (from 0) rendered and sanitised: from the cache, or rendered now."""
        path = outline.dir / f"part-{index + 1}.json"
        cached = _read_json(path)
        if cached is not None:
            headings = [Heading(level, text, anchor) for level, text, anchor in cached["headings"]]
            return RenderedPart(Markup(cached["html"]), headings)
        part = outline.parts[index]
        source = part.prefix + self._source(outline, index)
        prefix = "sec" if index == 0 else f"p{index + 1}-sec"
        references = _read_json(outline.dir / "references.json")
        html, headings = render_markdown(source, anchor_prefix=prefix, references=references)
        payload = {"html": str(html), "headings": [[h.level, h.text, h.anchor] for h in headings]}
        _write(path, json.dumps(payload, ensure_ascii=False).encode())
        return RenderedPart(html, headings)

    def chunk_starts(
        self, outline: Outline, key: str, load: Callable[[], Sequence[tuple[int, str]]]
    ) -> list[int]:
        """The first chunk ordinal of each part (the next part's when a part has none).

        ``load`` gives the document's (ordinal, text) in order; ``key`` names one ingest
        of one document (its chunks), so a re-ingest maps its new chunks again.
        """
        path = outline.dir / f"chunks-{key}.json"
        cached = _read_json(path)
        if cached is not None and len(cached["starts"]) == len(outline):
            return list(cached["starts"])
        rows = load()
        starts = self._map_chunks(outline, rows)
        if _write(path, json.dumps({"starts": starts}).encode()):
            # The maps of the document's earlier ingests are of no use any more.
            for old in outline.dir.glob(f"chunks-{key.split('-', 1)[0]}-*.json"):
                if old != path:
                    with contextlib.suppress(OSError):
                        old.unlink()
        return starts

    def _map_chunks(self, outline: Outline, rows: Sequence[tuple[int, str]]) -> list[int]:
        if not rows:
            return [0] * len(outline)
        text = self._text(outline)
        offsets = locate(text, [t for _, t in rows])
        part_starts = [p.start for p in outline.parts]
        starts: list[int | None] = [None] * len(outline)
        for (ordinal, _), offset in zip(rows, offsets, strict=True):
            k = max(0, bisect.bisect_right(part_starts, offset) - 1)
            if starts[k] is None:
                starts[k] = ordinal
        # A part without chunks starts where the next one does (its chunk list is empty).
        following = rows[-1][0] + 1
        filled: list[int] = []
        for s in reversed(starts):
            following = s if s is not None else following
            filled.append(following)
        filled.reverse()
        return filled

    def _cut(self, folder: Path, data: bytes) -> Outline:
        try:
            text = decode_text(data)
        except NotText as exc:
            outline = Outline(folder, (), (0,), exc.reason)
            self._save_outline(outline)
            return outline
        del data
        text = text.removeprefix("\ufeff")
        if "\r" in text:
            text = normalise_newlines(text)
        parts = split_parts(text, max_bytes=self.part_bytes)
        byte_starts = [0]
        written = _write_parts(folder / "source.txt", text, parts, byte_starts)
        _write(folder / "references.json", json.dumps(link_references(text)).encode())
        outline = Outline(folder, tuple(parts), tuple(byte_starts), None, None if written else text)
        if written:
            self._save_outline(outline)
        return outline

    def _save_outline(self, outline: Outline) -> None:
        meta = {
            "part_bytes": self.part_bytes,
            "parts": [[p.start, p.end, p.prefix] for p in outline.parts],
            "byte_starts": list(outline.byte_starts),
            "not_text": outline.not_text,
        }
        _write(outline.dir / "outline.json", json.dumps(meta).encode())

    def _source(self, outline: Outline, index: int) -> str:
        if outline.text is not None:
            part = outline.parts[index]
            return outline.text[part.start : part.end]
        start, end = outline.byte_starts[index], outline.byte_starts[index + 1]
        with open(outline.dir / "source.txt", "rb") as f:
            f.seek(start)
            return f.read(end - start).decode("utf-8")

    def _text(self, outline: Outline) -> str:
        if outline.text is not None:
            return outline.text
        return (outline.dir / "source.txt").read_bytes().decode("utf-8")


def chunk_key(document_id: int, *versions: object) -> str:
    """A name for one ingest of a document: its id and what changes when it is re-ingested."""
    digest = hashlib.sha256(repr(versions).encode()).hexdigest()[:16]
    return f"{document_id}-{digest}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _write(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` whole (temporary file, then rename); False if we cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        log.warning("render cache: cannot write %s: %s", path, exc)
        return False
    return True


def _write_parts(path: Path, text: str, parts: Sequence[Part], byte_starts: list[int]) -> bool:
    """Write ``text`` as UTF-8 part by part, recording where each part's bytes start."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(data := text[part.start : part.end].encode("utf-8"))
                byte_starts.append(byte_starts[-1] + len(data))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("render cache: cannot write %s: %s", path, exc)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        # The byte offsets are still right: they are the text's, not the file's.
        while len(byte_starts) < len(parts) + 1:
            part = parts[len(byte_starts) - 1]
            byte_starts.append(byte_starts[-1] + len(text[part.start : part.end].encode()))
        return False
    return True
