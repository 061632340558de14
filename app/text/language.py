"""A document's main language, from its script (enough to tell zh from en)."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
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
