"""Errors of the ingest pipeline.

``IngestError`` means the input itself is bad: retrying cannot help, so the document
fails with ``reason``, written for a person. Anything else is treated as transient.
"""


class IngestError(Exception):
    """The file cannot be ingested; ``reason`` says why, for a person to read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
