"""Images (scans) via OCR -> blocks. (Being written: refuses for now.)"""

from __future__ import annotations

from pathlib import Path

from ingest.errors import IngestError
from ingest.types import ParsedDocument


def parse_image(path: Path) -> ParsedDocument:
    raise IngestError("Images are not supported yet.")
