"""Fuzz the parsers for a bounded time; prints JSON and saves what crashes or hangs.

    .venv/bin/python scripts/fuzz.py --seconds 300 --seed 1
    .venv/bin/python scripts/fuzz.py --make-seeds     # rewrite tests/fuzz_seeds/ (committed)

The same harness as tests/test_fuzz_parsers.py, run for longer. Each example is one of

* ``pdf``: a seed PDF from tests/fuzz_seeds/ with 1-8 random mutations (byte flips,
  truncation, splicing with another seed, duplicated ranges, inserted PDF tokens,
  replaced numbers, a deleted xref), through ``ingest.parse.parse`` as ``x.pdf``;
* ``markdown-bytes``: a mutated Markdown seed through ``ingest.parse.parse`` as ``x.md``
  (decoding included);
* ``markdown``: text built from Markdown pieces and random characters through
  ``parse_markdown`` and then ``ingest.chunk.chunk``.

Parsing runs in this process under an alarm (``--timeout``, default 10 s) and an
address-space limit (``--memory-mb``, default 2048, as the sandbox has). An example that
returns a ParsedDocument or raises IngestError is fine (so is a MemoryError: the sandbox
turns it into a clear failure); any other exception is a crash and running past the
alarm a hang. Each crash or hang is saved in ``--crashers`` (default
tests/fuzz_seeds/crashers/) as the input file plus a ``.json`` with the traceback;
``--ignore REGEX`` counts crashes of a bug already reported as "known" instead.
The JSON report: examples run, crashes, hangs and per-parser counts.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import random
import re
import resource
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.chunk import chunk  # noqa: E402
from ingest.parse import parse, parse_markdown  # noqa: E402
from ingest.types import ParsedDocument  # noqa: E402
from tests import hostile  # noqa: E402

SEEDS = ROOT / "tests" / "fuzz_seeds"
CRASHERS = SEEDS / "crashers"


def load_seeds(folder: Path = SEEDS) -> tuple[list[bytes], list[bytes]]:
    """The seed PDFs and Markdown files, as bytes, in a stable order."""
    pdfs = [p.read_bytes() for p in sorted(folder.glob("*.pdf"))]
    mds = [p.read_bytes() for p in sorted(folder.glob("*.md"))]
    return pdfs, mds


def random_mutations(rng: random.Random) -> list[hostile.Mutation]:
    count = rng.choice([1, 1, 1, 2, 2, 3, 4, 8])
    return [
        (
            rng.randrange(len(hostile.MUTATION_KINDS)),
            rng.getrandbits(24),
            rng.getrandbits(16),
            rng.getrandbits(24),
        )
        for _ in range(count)
    ]


def random_markdown(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randrange(1, 40)):
        roll = rng.random()
        if roll < 0.7:
            piece = rng.choice(hostile.MARKDOWN_PIECES)
        elif roll < 0.85:
            piece = "".join(
                chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x4E00, 0x9FFF)]))
                for _ in range(rng.randrange(0, 60))
            )
        else:
            piece = "".join(_random_char(rng) for _ in range(rng.randrange(0, 30)))
        lines.append(rng.choice(["", " ", "   ", "> ", "- ", "1. "]) * (rng.random() < 0.3) + piece)
    return rng.choice(["\n", "\r\n", "\n\n"]).join(lines)


def _random_char(rng: random.Random) -> str:
    while True:
        cp = rng.randrange(0, 0x110000) if rng.random() < 0.3 else rng.randrange(0, 0x3000)
        if not 0xD800 <= cp <= 0xDFFF:  # lone surrogates cannot come from a decoded file
            return chr(cp)


def check_chunks(doc: ParsedDocument, max_tokens: int) -> None:
    """``chunk`` must work on every parsed document, within its budget."""
    chunks = chunk(doc, max_tokens=max_tokens)
    assert [c.ordinal for c in chunks] == list(range(len(chunks))), "ordinals"
    for c in chunks:
        assert c.text.strip(), "empty chunk"
        assert c.token_count <= max_tokens, f"chunk over budget: {c.token_count} > {max_tokens}"


def run_markdown(text: str, max_tokens: int) -> None:
    check_chunks(parse_markdown(text), max_tokens)


def run_file(data: bytes, filename: str, folder: Path) -> None:
    path = folder / filename
    path.write_bytes(data)
    parse(path, filename=filename)


def signature(kind: str, detail: str) -> str:
    """Where a failure happened: the innermost frame and the exception's type, so that
    one bug hit a thousand times is saved once."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', detail)
    frames = [f for f in frames if f[2] != "ring"]  # the alarm's own frame
    last = detail.strip().splitlines()[-1] if detail.strip() else kind
    where = f"{Path(frames[-1][0]).name}:{frames[-1][1]} {frames[-1][2]}" if frames else "?"
    return f"{where}: {last.split(':')[0] if kind == 'crash' else 'hang'}"


def save_crasher(
    folder: Path, kind: str, data: bytes, suffix: str, info: dict[str, object]
) -> Path:
    """Save the input as ``<kind>-<hash><suffix>`` and what happened beside it as JSON;
    tests/test_fuzz_parsers.py replays every one (an ``"open"`` entry marks it xfail)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{kind}-{hashlib.sha256(data).hexdigest()[:12]}"
    path = folder / f"{name}{suffix}"
    path.write_bytes(data)
    info = {"file": path.name, **info}
    (folder / f"{name}.json").write_text(
        json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return path


def make_seeds(folder: Path = SEEDS) -> list[str]:
    """Write the seed files (our own text; each well under 20 KB)."""
    from pypdf import PdfReader, PdfWriter
    from reportlab.lib.pagesizes import A5
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    folder.mkdir(parents=True, exist_ok=True)

    def render(
        pages: list[list[tuple[int, str]]], *, font: str, title: str | None, compress: int
    ) -> bytes:
        buf = io.BytesIO()
        c = canvas.Canvas(buf, pagesize=A5, pageCompression=compress, invariant=1)
        if title:
            c.setTitle(title)
        key = 0
        for page in pages:
            y = A5[1] - 60
            for level, text in page:
                if level:
                    key += 1
                    c.setFont(font, 16 - 2 * level)
                    c.drawString(40, y, text)
                    c.bookmarkHorizontal(f"k{key}", 0, y + 16)
                    c.addOutlineEntry(text, f"k{key}", level=level - 1)
                else:
                    c.setFont(font, 10)
                    c.drawString(40, y, text)
                y -= 22
            c.showPage()
        c.save()
        return buf.getvalue()

    english = [
        [
            (1, "1 Tide tables"),
            (0, "The harbour office prints the tide table every Monday."),
            (2, "1.1 Reading a row"),
            (0, "Each row gives the time and the height of high water."),
        ],
        [
            (1, "2 Moorings"),
            (0, "Visitors moor on the north pontoon; the fee is paid at the kiosk."),
        ],
    ]
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    chinese = [
        [
            (1, "第一章 借书"),
            (0, "读者凭借书证每次可借五本书，借期三十天。"),
            (2, "续借怎么办？"),
            (0, "到期前可在网上续借一次，续借期十五天。"),
        ],
        [(1, "第二章 还书"), (0, "逾期每本每天收取滞纳金一角。")],
    ]
    files = {
        "english.pdf": render(english, font="Helvetica", title="Harbour Guide", compress=1),
        "english-plain.pdf": render(english[:1], font="Helvetica", title=None, compress=0),
        "chinese.pdf": render(chinese, font="STSong-Light", title="图书馆借阅规则", compress=1),
        "tiny.pdf": hostile.good_pdf(),
        "objstm.pdf": hostile.object_stream_pdf(),
    }
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(files["english-plain.pdf"])))
    writer.encrypt(user_password="", owner_password="harbour", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    files["encrypted.pdf"] = out.getvalue()
    files["notes.md"] = (
        b"---\ntitle: Harbour notes\ntags: [harbour, tides]\n---\n\n"
        b"# Harbour notes\n\nThe office opens at *seven*; see [tides][t].\n\n"
        b"[t]: https://example.org/tides\n\n"
        b"## Fees\n\n| Boat | Fee |\n|------|----:|\n| small | 5 |\n| large | 12 |\n\n"
        b"Setext heading\n--------------\n\n"
        b"```sh\nharbour --fee small\n```\n\n> Pay at the kiosk.\n\n- one\n  - two\n1. first\n"
    )
    files["library-zh.md"] = (
        "# 图书馆借阅规则\n\n## 借书\n\n读者凭借书证每次可借五本书。\n\n"
        "~~~~\n代码块：借期 = 30\n~~~~\n\n## 还书\n\n1. 逾期每本每天一角。\n2. 损坏照价赔偿。\n"
    ).encode()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return sorted(files)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to run")
    ap.add_argument("--seed", type=int, default=0, help="random seed (a run is reproducible)")
    ap.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per example before it counts as a hang"
    )
    ap.add_argument(
        "--memory-mb", type=int, default=2048, help="address-space limit of this process"
    )
    ap.add_argument("--crashers", type=Path, default=CRASHERS)
    ap.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="REGEX",
        help="count crashes whose traceback matches as 'known' and do not save them "
        "(for a bug already reported); may be repeated",
    )
    ap.add_argument("--make-seeds", action="store_true", help="write tests/fuzz_seeds/ and exit")
    args = ap.parse_args()
    if args.make_seeds:
        print(json.dumps({"seeds": make_seeds()}))
        return

    import tempfile

    logging.disable(logging.ERROR)  # pypdf logs every damaged object it works around
    limit = args.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    rng = random.Random(args.seed)
    pdfs, mds = load_seeds()
    stats: dict[str, dict[str, int]] = {}
    found: dict[str, dict[str, object]] = {}  # one saved example per distinct failure
    seen: dict[str, int] = {}
    slowest: tuple[float, str] = (0.0, "")
    started = time.monotonic()
    examples = 0
    with tempfile.TemporaryDirectory(prefix="kb-fuzz-") as tmp:
        folder = Path(tmp)
        while time.monotonic() - started < args.seconds:
            roll = rng.random()
            max_tokens = rng.choice([8, 32, 400])
            if roll < 0.6:
                parser, suffix = "pdf", ".pdf"
                data = hostile.mutate(rng.choice(pdfs), random_mutations(rng), pdfs)
                run = partial(run_file, data, "x.pdf", folder)
            elif roll < 0.75:
                parser, suffix = "markdown-bytes", ".md"
                data = hostile.mutate(rng.choice(mds), random_mutations(rng), mds)
                run = partial(run_file, data, "x.md", folder)
            else:
                parser, suffix = "markdown", ".md"
                text = random_markdown(rng)
                data = text.encode("utf-8", "surrogatepass")
                run = partial(run_markdown, text, max_tokens)
            t0 = time.monotonic()
            kind, detail = hostile.outcome(run, seconds=args.timeout)
            took = time.monotonic() - t0
            examples += 1
            if took > slowest[0]:
                slowest = (took, parser)
            if kind == "crash" and any(re.search(p, detail) for p in args.ignore):
                kind = "known"
            counts = stats.setdefault(parser, {})
            counts[kind] = counts.get(kind, 0) + 1
            if kind in ("crash", "hang"):
                sig = signature(kind, detail)
                seen[sig] = seen.get(sig, 0) + 1
                if sig in found:
                    found[sig]["count"] = seen[sig]
                    continue
                info = {
                    "parser": parser,
                    "outcome": kind,
                    "seconds": round(took, 2),
                    "max_tokens": max_tokens,
                    "detail": detail,
                }
                saved = save_crasher(args.crashers, f"{parser}-{kind}", data, suffix, info)
                shown = saved.relative_to(ROOT) if saved.is_relative_to(ROOT) else saved
                found[sig] = {
                    "parser": parser,
                    "outcome": kind,
                    "where": sig,
                    "file": str(shown),
                    "count": 1,
                }
    print(
        json.dumps(
            {
                "seed": args.seed,
                "seconds": round(time.monotonic() - started, 1),
                "examples": examples,
                "crashes": sum(stats[p].get("crash", 0) for p in stats),
                "hangs": sum(stats[p].get("hang", 0) for p in stats),
                "per_parser": stats,
                "slowest_example_s": round(slowest[0], 2),
                "slowest_parser": slowest[1],
                "found": list(found.values()),
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
