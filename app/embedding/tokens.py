"""A conservative token estimate for embedding requests, without a tokenizer.

A copy of ``ingest.chunk.count_tokens`` (``app`` must not import from ``ingest``); keep
the two in step: tests/test_openai_embedder.py checks that they agree.
"""

from __future__ import annotations

import re

# CJK ideographs and radicals, CJK punctuation, kana, bopomofo, hangul, full-width forms.
_CJK_RANGES = (
    "\u1100-\u11ff\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
    "\U00020000-\U0003ffff"
)
# One CJK character, or a run of other letters/digits, or one other non-space character.
_TOKEN_RE = re.compile(rf"[^\W_{_CJK_RANGES}]+|\S")


def count_tokens(text: str) -> int:
    """Estimate subword tokens conservatively: 1 per CJK char, ~4 chars per word token."""
    return sum((len(m) + 3) // 4 for m in _TOKEN_RE.findall(text))
