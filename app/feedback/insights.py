"""What the questions and ratings say: the questions to answer first, counts per day,
and the export of rated and unanswered questions as graded queries."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.feedback.models import Feedback, FeedbackKind, QueryLog, Rating
from app.text.language import detect_language

# The Insights page lists this many questions at most.
MAX_QUESTIONS = 100


def question_key(query: str) -> str:
    """Questions that differ only in case and spacing are the same question."""
    return " ".join(query.split()).casefold()


@dataclass
class Relevant:
    file: str
    heading_or_text: str
    doc_lang: str | None


@dataclass
class Question:
    """One question (per collection) with how it was asked and rated."""

    query: str
    collection: str
    asked: int = 0
    weak: int = 0
    up: int = 0
    down: int = 0
    last: datetime | None = None
    liked: list[Relevant] = field(default_factory=list)  # the hits rated up
    models: set[str] = field(default_factory=set)

    @property
    def needs_answer(self) -> bool:
        """A weak match, or rated down more than up: what the FAQ is missing."""
        return self.weak > 0 or self.down > self.up

    def seen(self, when: datetime | None) -> None:
        if when is not None and (self.last is None or when > self.last):
            self.last = when


def since(days: int, *, now: datetime | None = None) -> datetime:
    """The start of the window of the last ``days`` days (today included), in UTC."""
    today = (now or utcnow()).date()
    return datetime.combine(today - timedelta(days=days - 1), datetime.min.time())


def questions(session: Session, *, start: datetime) -> list[Question]:
    """Every question asked or rated since ``start``: those that need an answer first,
    then by how often they were asked."""
    found: dict[tuple[str, str], Question] = {}

    # Per question, its wordings: how often each was used, and when last.
    wordings: dict[tuple[str, str], dict[str, tuple[int, datetime]]] = {}

    def at(query: str, collection: str, count: int, when: datetime) -> Question:
        key = (collection, question_key(query))
        if key not in found:
            found[key] = Question(query=" ".join(query.split()), collection=collection)
        used = wordings.setdefault(key, {})
        text = " ".join(query.split())
        before = used.get(text, (0, when))
        used[text] = (before[0] + count, max(before[1], when))
        return found[key]

    weak = func.sum(case((QueryLog.weak_match.is_(True), 1), else_=0))
    for query, collection, asked, weak_count, last in session.execute(
        select(
            QueryLog.query, QueryLog.collection, func.count(), weak, func.max(QueryLog.created_at)
        )
        .where(QueryLog.created_at >= start)
        .group_by(QueryLog.query, QueryLog.collection)
    ):
        q = at(query, collection, int(asked), last)
        q.asked += int(asked)
        q.weak += int(weak_count or 0)
        q.seen(last)
    for fb in session.scalars(
        select(Feedback).where(Feedback.created_at >= start).order_by(Feedback.id)
    ):
        q = at(fb.query, fb.collection, 1, fb.created_at)
        if fb.rating == Rating.UP:
            q.up += 1
            if fb.kind == FeedbackKind.HIT and fb.file and fb.heading:
                rel = Relevant(fb.file, fb.heading, fb.doc_language)
                if rel not in q.liked:
                    q.liked.append(rel)
        else:
            q.down += 1
        if fb.model:
            q.models.add(fb.model)
        q.seen(fb.created_at)
    for key, q in found.items():  # shown as it was asked most often, then most recently
        q.query = max(wordings[key].items(), key=lambda item: (item[1], item[0]))[0]
    return sorted(
        found.values(),
        key=lambda q: (
            not q.needs_answer,
            -(q.weak + q.down),
            -q.asked,
            -(q.last.timestamp() if q.last else 0),
        ),
    )


@dataclass(frozen=True)
class Day:
    day: date
    questions: int = 0
    weak: int = 0
    up: int = 0
    down: int = 0

    @property
    def weak_rate(self) -> float | None:
        """The share of questions that found no good match (None: no questions)."""
        return self.weak / self.questions if self.questions else None


def _as_date(value: object) -> date:
    """``date(created_at)``: a date on PostgreSQL, 'YYYY-MM-DD' text on SQLite."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def per_day(session: Session, *, days: int, now: datetime | None = None) -> list[Day]:
    """Questions, weak matches and ratings for each of the last ``days`` days, oldest first."""
    start = since(days, now=now)
    asked: dict[date, tuple[int, int]] = {}
    day = func.date(QueryLog.created_at)
    weak = func.sum(case((QueryLog.weak_match.is_(True), 1), else_=0))
    for when, count, weak_count in session.execute(
        select(day, func.count(), weak).where(QueryLog.created_at >= start).group_by(day)
    ):
        asked[_as_date(when)] = (int(count), int(weak_count or 0))
    rated: dict[tuple[date, str], int] = {}
    fday = func.date(Feedback.created_at)
    for when, rating, count in session.execute(
        select(fday, Feedback.rating, func.count())
        .where(Feedback.created_at >= start)
        .group_by(fday, Feedback.rating)
    ):
        rated[(_as_date(when), str(rating))] = int(count)
    out = []
    for i in range(days):
        d = start.date() + timedelta(days=i)
        count, weak_count = asked.get(d, (0, 0))
        out.append(
            Day(d, count, weak_count, rated.get((d, Rating.UP), 0), rated.get((d, Rating.DOWN), 0))
        )
    return out


def _lang(query: str) -> str:
    found = detect_language(query)
    return found if found in ("zh", "en") else "en"


def graded_queries(session: Session, *, start: datetime) -> Iterator[dict[str, Any]]:
    """The rated and the weakly matched questions as graded queries (the ``kb search
    --batch`` input and dev-eval ``queries.jsonl`` format): a thumbs-up hit is a relevant
    passage; a question without one has an empty ``relevant`` list and a note, for a
    person to fill in."""
    for q in questions(session, start=start):
        if not (q.up or q.down or q.weak):
            continue
        lang = _lang(q.query)
        digest = hashlib.sha1(f"{q.collection}\0{question_key(q.query)}".encode()).hexdigest()
        relevant = [
            {"file": r.file, "heading_or_text": r.heading_or_text, "doc_lang": r.doc_lang or ""}
            for r in q.liked
        ]
        cross: bool | None = None
        kind: str | None = None
        if relevant:
            cross = all(r["doc_lang"] != lang for r in relevant)
            kind = "cross-lingual" if cross else "monolingual"
        notes = []
        if q.weak:
            notes.append(f"weak match in {q.weak} of {q.asked} searches")
        if q.down:
            notes.append(f"rated down {q.down} time" + ("s" if q.down > 1 else ""))
        if q.up:
            notes.append(f"rated up {q.up} time" + ("s" if q.up > 1 else ""))
        if not relevant:
            notes.append("no passage rated up: fill in the relevant passages")
        yield {
            "id": f"fb-{digest[:12]}",
            "query": q.query,
            "lang": lang,
            "relevant": relevant,
            "kind": kind,
            "cross_lingual": cross,
            "parallel": False,
            "collection": q.collection,
            "asked": q.asked,
            "weak_matches": q.weak,
            "up": q.up,
            "down": q.down,
            "models": sorted(q.models),
            "last": q.last.isoformat(timespec="seconds") if q.last else None,
            "note": "; ".join(notes),
        }
