"""The Ask page's written answer: what its script needs to stream one, and the answer
written on the server (without JavaScript) with each ``[n]`` linking to its passage.

The script (web/static/answer.js) posts :func:`stream_request` to ``POST
/api/v1/answer`` and reads the events of :func:`app.answer.service.generate`; the page
without JavaScript renders :func:`written_view` of :func:`app.answer.service.answer`.
Neither repeats the service: this module only shapes its input and output for the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from app.search.service import SearchFilters

# A citation as the service leaves it in the text: ``[n]`` (groups become ``[a][b]``).
CITE = re.compile(r"\[(\d{1,4})\]")


@dataclass(frozen=True)
class WrittenView:
    """A whole written answer as the page shows it."""

    html: Markup  # the answer as text, each valid [n] a link to its passage
    model: str | None
    notice: str | None
    cited_ids: str  # the cited passages' chunk ids, "3,1" (the thumbs' chunk_ids)


def stream_request(
    *, question: str, collection: str, k: int, filters: SearchFilters
) -> dict[str, Any]:
    """The JSON body of ``POST /api/v1/answer`` for the page's question, streamed.

    ``k`` and the filters are the page's, so the passages the model is given are the
    page's numbered passages (or the first of them, when the budget is short)."""
    body: dict[str, Any] = {"q": question, "k": k, "stream": True}
    if collection:
        body["collection"] = collection
    if filters.tags:
        body["tag"] = list(filters.tags)
    if filters.kind:
        body["kind"] = filters.kind
    return body


def cite_href(citation: Mapping[str, Any], ranks: Mapping[int, int]) -> str:
    """Where ``[n]`` leads: the page's numbered passage, else the passage's document."""
    rank = ranks.get(int(citation["chunk_id"]))
    return f"#answer-{rank}" if rank is not None else str(citation["link"])


def linked_answer(
    text: str, citations: Sequence[Mapping[str, Any]], ranks: Mapping[int, int]
) -> Markup:
    """``text`` escaped, each ``[n]`` of a cited passage an ``<a class="cite-ref">``."""
    by_n = {int(c["n"]): c for c in citations}
    parts: list[Markup] = []
    pos = 0
    for m in CITE.finditer(text):
        cited = by_n.get(int(m.group(1)))
        if cited is None:
            continue
        parts.append(escape(text[pos : m.start()]))
        parts.append(
            Markup('<a class="cite-ref" href="{href}">[{n}]</a>').format(
                href=cite_href(cited, ranks), n=int(m.group(1))
            )
        )
        pos = m.end()
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)


def written_view(
    *,
    answer: str | None,
    citations: Sequence[Mapping[str, Any]],
    model: str | None,
    notice: str | None,
    ranks: Mapping[int, int],
) -> WrittenView:
    """The page's view of a whole answer (``ranks``: chunk id -> its number on the page)."""
    return WrittenView(
        html=linked_answer(answer or "", citations, ranks),
        model=model,
        notice=notice,
        cited_ids=",".join(str(int(c["chunk_id"])) for c in citations),
    )
