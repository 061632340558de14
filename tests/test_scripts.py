"""Script ranges (app.text.scripts): the sets whose change would change stored data."""

from __future__ import annotations

import re

import pytest

from app.text.scripts import HAN, LEXICAL_CJK, TOKEN_CJK, UNSPACED

# Every code point of the BMP and the two ideographic planes (surrogates left out).
_ALL = "".join(chr(i) for i in range(0x40000) if not 0xD800 <= i < 0xE000)


def _members(ranges: str) -> set[str]:
    return set(re.findall(f"[{ranges}]", _ALL))


@pytest.mark.parametrize(
    ("ranges", "as_stored"),
    [
        # The lexical index's bigram scripts as of migration 0005 (chunks.search_terms).
        (
            LEXICAL_CJK,
            "\u1100-\u11ff\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3040-\u30ff"
            "\u3100-\u312f\u3130-\u318f\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
            "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\U00020000-\U0003ffff",
        ),
        # One token a character in the token estimate (chunks.token_count, request budgets).
        (
            TOKEN_CJK,
            "\u1100-\u11ff\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf"
            "\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
            "\U00020000-\U0003ffff",
        ),
    ],
)
def test_sets_behind_stored_data_do_not_change(ranges: str, as_stored: str) -> None:
    assert _members(ranges) == _members(as_stored)


def test_han_is_in_every_cjk_set() -> None:
    han = _members(HAN)
    assert "\u3400" in han and "\u4e00" in han and "\uf900" in han and "\U00020000" in han
    for ranges in (UNSPACED, LEXICAL_CJK, TOKEN_CJK):
        assert han <= _members(ranges)
