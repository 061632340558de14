"""A conservative token estimate without a tokenizer: what the chunker budgets chunks by
and the embedding client budgets requests by (one function, so the two always agree)."""

from __future__ import annotations

import re

from app.text.scripts import TOKEN_CJK

# One CJK character, or a run of other letters/digits, or one other non-space character.
# Every match of length > 1 is a letter/digit run, so cost = ceil(len / 4) for all (the
# chunker cuts over-long blocks between these matches).
TOKEN_RE = re.compile(rf"[^\W_{TOKEN_CJK}]+|\S")


def count_tokens(text: str) -> int:
    """Estimate subword tokens conservatively: 1 per CJK char, ~4 chars per word token."""
    return sum((len(m) + 3) // 4 for m in TOKEN_RE.findall(text))
