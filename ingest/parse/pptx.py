"""PowerPoint (.pptx) decks -> blocks. (Being written: refuses for now.)"""

from __future__ import annotations

from pathlib import Path

from ingest.errors import IngestError
from ingest.types import ParsedDocument


def parse_pptx(path: Path) -> ParsedDocument:
    raise IngestError("PowerPoint decks are not supported yet.")
