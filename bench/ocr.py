"""OCR speed and accuracy: our own PDF pages rendered to images, read back by RapidOCR.

    python bench/ocr.py [--dpi 150,200,300] [--processes 1,2] [--pages N]

The pages are tests/pdfgen's English install guide and Chinese leave FAQ (A4, 11 pt body
text, 18/14 pt headings): each page is rendered with pypdfium2 at each dpi (grey, as
ingest renders scanned pages) and OCR'd; its text layer is the reference. Per dpi:

* ``similarity``: difflib ratio of the OCR text to the text layer, whitespace removed,
  per language (mean over the pages) and overall;
* ``confidence``: the engine's mean confidence;
* per process count N (each process with cores/N ONNX Runtime threads, the model loaded
  and warmed before the clock starts): wall seconds and pages/s over all pages.

Also the OCR process's peak memory (VmHWM, VmPeak: what KB_OCR_MEMORY_MB must allow).
The last line of output is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pypdf import PdfReader  # noqa: E402

from tests import pdfgen  # noqa: E402


def _pages(directory: Path) -> list[tuple[str, Path, int, str]]:
    """(language, pdf, 0-based index, text layer) of every bench page."""
    out = []
    for lang, make in (("en", pdfgen.english_outline_pdf), ("zh", pdfgen.chinese_outline_pdf)):
        pdf = make(directory)
        for i, page in enumerate(PdfReader(pdf).pages):
            out.append((lang, pdf, i, page.extract_text() or ""))
    return out


def _render(pdf: Path, index: int, dpi: int) -> bytes:
    import pypdfium2

    doc = pypdfium2.PdfDocument(pdf)
    try:
        image = doc[index].render(scale=dpi / 72, grayscale=True).to_pil()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    finally:
        doc.close()


def _init(threads: int) -> None:
    from ingest.parse import ocr

    ocr.configure(ocr.OcrConfig(enabled=True, threads=threads))
    ocr.engine()


def _ocr(png: bytes) -> tuple[str, float | None, float]:
    from PIL import Image

    from ingest.parse import ocr

    t0 = time.perf_counter()
    page = ocr.ocr_page(Image.open(io.BytesIO(png)), 1)
    return page.text, page.confidence, time.perf_counter() - t0


def _memory() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmPeak"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def _similarity(expected: str, got: str) -> float:
    a, b = "".join(expected.split()), "".join(got.split())
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dpi", default="150,200,300")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--pages", type=int, default=0, help="at most this many pages (0: all)")
    args = parser.parse_args()
    dpis = [int(x) for x in args.dpi.split(",")]
    counts = [int(x) for x in args.processes.split(",")]
    cores = os.cpu_count() or 1
    ctx = multiprocessing.get_context("forkserver")

    with tempfile.TemporaryDirectory() as tmp:
        pages = _pages(Path(tmp))
        if args.pages:
            pages = pages[: args.pages]
        result: dict[str, object] = {
            "cpu_count": cores,
            "pages": len(pages),
            "languages": sorted({lang for lang, *_ in pages}),
        }
        per_dpi: dict[str, object] = {}
        memory: dict[str, dict[str, float]] = {}
        for dpi in dpis:
            images = [_render(pdf, i, dpi) for _, pdf, i, _ in pages]
            row: dict[str, object] = {}
            for n in counts:
                threads = max(1, cores // n)
                with ProcessPoolExecutor(
                    n, mp_context=ctx, initializer=_init, initargs=(threads,)
                ) as pool:
                    list(pool.map(_ocr, images[:n]))  # warm: model loaded, first run done
                    t0 = time.perf_counter()
                    done = list(pool.map(_ocr, images))
                    wall = time.perf_counter() - t0
                    if n == 1:
                        memory[str(dpi)] = pool.submit(_memory).result()
                row[f"processes_{n}"] = {
                    "threads_each": threads,
                    "wall_s": round(wall, 2),
                    "pages_per_s": round(len(images) / wall, 3),
                }
                if n == counts[0]:
                    sims: dict[str, list[float]] = {}
                    for (lang, _, _, text), (got, _, _) in zip(pages, done, strict=True):
                        sims.setdefault(lang, []).append(_similarity(text, got))
                    row["similarity"] = {k: round(statistics.mean(v), 4) for k, v in sims.items()}
                    row["similarity"]["all"] = round(  # type: ignore[index]
                        statistics.mean(s for v in sims.values() for s in v), 4
                    )
                    confs = [c for _, c, _ in done if c is not None]
                    row["confidence"] = round(statistics.mean(confs), 4) if confs else None
                    row["page_s"] = [round(s, 2) for _, _, s in done]
                print(f"dpi {dpi}, {n} process(es): {row}", file=sys.stderr, flush=True)
            per_dpi[str(dpi)] = row
        result["dpi"] = per_dpi
        result["ocr_process_memory_mb"] = memory
    print(json.dumps(result))


if __name__ == "__main__":
    main()
