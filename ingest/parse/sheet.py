"""Spreadsheets (.xlsx, .csv) -> blocks. (Being written: refuses for now.)"""

from __future__ import annotations

from pathlib import Path

from ingest.errors import IngestError
from ingest.types import ParsedDocument


def parse_sheet(path: Path, kind: str) -> ParsedDocument:
    raise IngestError("Spreadsheets are not supported yet.")
