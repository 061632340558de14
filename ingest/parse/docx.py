"""Word (.docx) documents -> blocks. (Being written: refuses for now.)"""

from __future__ import annotations

from pathlib import Path

from ingest.errors import IngestError
from ingest.types import ParsedDocument


def parse_docx(path: Path) -> ParsedDocument:
    raise IngestError("Word documents are not supported yet.")
