"""HTML pages -> blocks. (Being written: refuses for now.)"""

from __future__ import annotations

from pathlib import Path

from ingest.errors import IngestError
from ingest.types import ParsedDocument


def parse_html(path: Path) -> ParsedDocument:
    raise IngestError("HTML pages are not supported yet.")
