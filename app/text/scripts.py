"""Unicode script ranges: the one place that says which characters are Chinese, Japanese or
Korean, for the chunker, token counts, language detection, lexical terms, highlighting and
sentence splitting.

Each constant is the inside of a regex character class (``f"[{HAN}]"``). ``HAN`` is the
one definition of the ideographs; callers that need more than ideographs (kana, Hangul,
CJK punctuation, full-width forms) use a named set built from the blocks below, so that
the ideographs are the same everywhere.
"""

from __future__ import annotations

# Han ideographs, the widest correct set: CJK Unified Ideographs Extension A (U+3400-4DBF),
# CJK Unified Ideographs (U+4E00-9FFF), CJK Compatibility Ideographs (U+F900-FAFF), and the
# Supplementary and Tertiary Ideographic Planes (U+20000-3FFFF: Extensions B to I and the
# CJK Compatibility Ideographs Supplement).
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"

# Japanese kana: Hiragana (U+3040-309F) and Katakana (U+30A0-30FF).
KANA = "\u3040-\u30ff"
# Hangul Syllables (U+AC00-D7AF).
HANGUL_SYLLABLES = "\uac00-\ud7af"
# Hangul Jamo (U+1100-11FF), Hangul Jamo Extended-A (U+A960-A97F) and -B (U+D7B0-D7FF).
HANGUL_JAMO = "\u1100-\u11ff"
HANGUL_JAMO_EXT_A = "\ua960-\ua97f"
HANGUL_JAMO_EXT_B = "\ud7b0-\ud7ff"
# CJK Radicals Supplement (U+2E80-2EFF) and Kangxi Radicals (U+2F00-2FDF).
CJK_RADICALS = "\u2e80-\u2fdf"
# Ideographic Description Characters (U+2FF0-2FFF; U+2FE0-2FEF is unassigned).
IDEOGRAPHIC_DESCRIPTION = "\u2fe0-\u2fff"
# CJK Symbols and Punctuation (U+3000-303F): the ideographic space, 。、「」 and the like.
CJK_SYMBOLS = "\u3000-\u303f"
# The letters and numerals among CJK_SYMBOLS: 々, 〇, Hangzhou numerals 〡-〩, 〸-〻.
CJK_SYMBOL_LETTERS = "\u3005\u3007\u3021-\u3029\u3038-\u303b"
# Bopomofo (U+3100-312F), Hangul Compatibility Jamo (U+3130-318F), Kanbun (U+3190-319F),
# Bopomofo Extended (U+31A0-31BF), CJK Strokes (U+31C0-31EF), Katakana Phonetic
# Extensions (U+31F0-31FF).
BOPOMOFO = "\u3100-\u312f"
HANGUL_COMPAT_JAMO = "\u3130-\u318f"
KANBUN = "\u3190-\u319f"
BOPOMOFO_EXT = "\u31a0-\u31bf"
CJK_STROKES = "\u31c0-\u31ef"
KATAKANA_EXT = "\u31f0-\u31ff"
# CJK Compatibility Forms (U+FE30-FE4F): vertical punctuation.
CJK_COMPAT_FORMS = "\ufe30-\ufe4f"
# Halfwidth and Fullwidth Forms (U+FF00-FFEF): ＡＢＣ, １２３, ，。, half-width katakana.
HALF_FULL_WIDTH = "\uff00-\uffef"

# Scripts written without spaces between words: Han, kana, Hangul syllables. Query-term
# highlighting and sentence splitting treat a run of these as one unspaced word.
UNSPACED = KANA + HAN + HANGUL_SYLLABLES

# What the lexical index cuts into character bigrams (app.text.terms): the letters of
# Chinese, Japanese and Korean text, no punctuation. Changing it changes the stored index
# terms: it needs a migration that refills ``chunks.search_terms``.
LEXICAL_CJK = (
    HANGUL_JAMO
    + CJK_RADICALS
    + CJK_SYMBOL_LETTERS
    + KANA
    + BOPOMOFO
    + HANGUL_COMPAT_JAMO
    + BOPOMOFO_EXT
    + KATAKANA_EXT
    + HAN
    + HANGUL_JAMO_EXT_A
    + HANGUL_SYLLABLES
    + HANGUL_JAMO_EXT_B
)

# What the token estimate (app.text.tokens) counts one token a character: CJK letters and
# also CJK punctuation and full-width forms (one token each in subword vocabularies).
# Changing it changes stored token counts and the embedder's request budgets.
TOKEN_CJK = (
    HANGUL_JAMO
    + CJK_RADICALS
    + IDEOGRAPHIC_DESCRIPTION
    + CJK_SYMBOLS
    + KANA
    + BOPOMOFO
    + HANGUL_COMPAT_JAMO
    + KANBUN
    + BOPOMOFO_EXT
    + CJK_STROKES
    + KATAKANA_EXT
    + HAN
    + HANGUL_JAMO_EXT_A
    + HANGUL_SYLLABLES
    + HANGUL_JAMO_EXT_B
    + CJK_COMPAT_FORMS
    + HALF_FULL_WIDTH
)
