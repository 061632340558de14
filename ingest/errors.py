"""Errors of the ingest pipeline.

``IngestError`` means the input itself is bad: retrying cannot help, so the document
fails with ``reason``, written for a person. Anything else is treated as transient.
"""

from app.text.errors import error_detail


class IngestError(Exception):
    """The file cannot be ingested; ``reason`` says why, for a person to read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


__all__ = ["IngestError", "error_detail"]
