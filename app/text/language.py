"""A document's main language, from its script (enough to tell zh from en)."""

from __future__ import annotations

import re

from app.text.scripts import HAN, HANGUL_SYLLABLES, KANA

_CJK = re.compile(f"[{HAN}]")
_KANA = re.compile(f"[{KANA}]")
_HANGUL = re.compile(f"[{HANGUL_SYLLABLES}]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str, *, sample: int = 20000) -> str | None:
    """'zh', 'ja', 'ko', 'en' or None; CJK characters weigh as words of Latin letters."""
    s = text[:sample]
    han, kana, hangul = len(_CJK.findall(s)), len(_KANA.findall(s)), len(_HANGUL.findall(s))
    latin_words = len(_LATIN.findall(s)) / 5  # ~5 letters a word; one CJK char ~ one word
    if kana > 0.1 * (han + kana) and kana + han > latin_words:
        return "ja"
    if hangul > latin_words and hangul > han:
        return "ko"
    if han > latin_words:
        return "zh"
    if latin_words >= 1:
        return "en"
    return None
