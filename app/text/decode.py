"""Decode a text file's bytes: the one decoder of ingest and of the document page.

UTF-8 (BOM optional), UTF-16 (BOM optional: the byte order is read from where the NULs
of ASCII characters sit), else GB18030. Bytes that decode to no plausible text raise
:class:`NotText`, whose ``reason`` is written for a person.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

# Share of control / unassigned characters above which decoded "text" is really binary.
_MAX_ODD_SHARE = 0.01
# C0 and C1 controls other than the whitespace ones (tab, newline, form feed, CR).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")

NOT_TEXT = (
    "The file looks binary, not text: it is named like Markdown or text but contains "
    "bytes that are not UTF-8, UTF-16 or GB18030 text. Check that you uploaded the "
    "right file, or save it as UTF-8 text."
)


class NotText(ValueError):
    """The bytes are not text in any encoding we read; ``reason`` says so for a person."""

    def __init__(self, reason: str = NOT_TEXT) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_text(data: bytes) -> str:
    """Decode a text file: UTF-8 (BOM optional), UTF-16 (BOM optional), else GB18030."""
    if data.startswith(codecs.BOM_UTF8):
        text = _strict(data[len(codecs.BOM_UTF8) :], "utf-8")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # The "utf-16" codec reads the BOM to pick the byte order and drops it.
        text = _strict(data, "utf-16")
    elif (bom_less := utf16_without_bom(data)) is not None:
        text = _strict(data, bom_less)
    else:
        if b"\x00" in data:
            raise NotText()
        text = _strict(data, "utf-8")
        if text is None:
            text = _strict(data, "gb18030")
            if text is not None and _odd_share(text) > _MAX_ODD_SHARE:
                raise NotText()
    if text is None or _control_share(text) > _MAX_ODD_SHARE:
        raise NotText()
    return text


def utf16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when the bytes look like UTF-16 saved without a BOM.

    Text in UTF-16 has a NUL in the high byte of every ASCII character (newlines,
    spaces, Markdown markup), so NULs sit at one parity; a binary file has them at both.
    """
    sample = data[:4096]
    if len(sample) < 4 or len(sample) % 2 or b"\x00" not in sample:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    pairs = len(sample) // 2
    # Markup and line ends alone make ASCII at least a few percent of any real text; the
    # other parity has NULs only from the rare characters U+xx00 (such as 一, U+4E00).
    if odd >= pairs * 0.05 and even * 4 <= odd:
        return "utf-16-le"
    if even >= pairs * 0.05 and odd * 4 <= even:
        return "utf-16-be"
    return None


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _control_share(text: str) -> float:
    """Share of control characters that no text file has (NUL, backspace, ESC ...)."""
    return len(_CONTROL_RE.findall(text)) / max(1, len(text))


def _odd_share(text: str) -> float:
    """Share of unassigned, private-use or control characters."""
    # GB18030 maps almost every byte sequence to some code point, so a binary file can
    # decode "cleanly"; its characters then land in these categories, real text's do not.
    odd = sum(1 for ch in text if unicodedata.category(ch) in ("Cn", "Co", "Cs", "Cc"))
    odd -= text.count("\n") + text.count("\t") + text.count("\r") + text.count("\f")
    return odd / max(1, len(text))
