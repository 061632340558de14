"""Word list numbering (``word/numbering.xml``) -> the markers Word shows ("1.", "（一）", "A.").

Word stores no list numbers in the text: each numbered paragraph names a list instance
(``w:numId``) and a level (``w:ilvl``), and the numbering part says how each level
counts (decimal, letters, Chinese numerals ...), where it starts and how the marker is
written ("%1.", "（%1）", "%1.%2"). ``Numbering`` counts paragraphs in document order,
as Word does, so that auto-numbered exam questions read "1." "2." "3.".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"

_CN_DIGITS = "零一二三四五六七八九"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_ROMAN = (
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
    (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
)  # fmt: skip
BULLET = "-"


@dataclass(frozen=True, slots=True)
class _Level:
    fmt: str
    text: str
    start: int


def _val(el: Any, name: str) -> str | None:
    child = el.find(W + name) if el is not None else None
    return None if child is None else child.get(W + "val")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def chinese_number(n: int) -> str:
    """1 -> 一, 10 -> 十, 12 -> 十二, 20 -> 二十, 105 -> 一百零五 (up to 9999)."""
    if n <= 0 or n > 9999:
        return str(n)
    out = ""
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit:
            if zero:
                out += "零"
            zero = False
            out += ("" if unit == "十" and digit == 1 and not out else _CN_DIGITS[digit]) + unit
        elif out:
            zero = True
    return out


def _roman(n: int) -> str:
    out = ""
    for value, letters in _ROMAN:
        while n >= value:
            out += letters
            n -= value
    return out


def _letters(n: int) -> str:
    # Word repeats the letter past Z: 27 -> "AA", 28 -> "BB".
    return chr(ord("A") + (n - 1) % 26) * ((n - 1) // 26 + 1) if n > 0 else str(n)


def format_number(n: int, fmt: str) -> str:
    """A counter in one of Word's number formats (unknown formats as decimals)."""
    if fmt in ("upperLetter",):
        return _letters(n)
    if fmt == "lowerLetter":
        return _letters(n).lower()
    if fmt == "upperRoman":
        return _roman(n)
    if fmt == "lowerRoman":
        return _roman(n).lower()
    if fmt.startswith(("chinese", "ideograph", "taiwanese", "japaneseCounting")):
        return chinese_number(n)
    if fmt.startswith("decimalEnclosedCircle") and 0 < n <= len(_CIRCLED):
        return _CIRCLED[n - 1]
    return str(n)


class Numbering:
    """Counts numbered paragraphs of one document and writes their markers."""

    def __init__(self, root: Any | None) -> None:
        self._abstract: dict[str, dict[int, _Level]] = {}
        self._nums: dict[str, tuple[str, dict[int, int]]] = {}
        self._counters: dict[str, dict[int, int]] = {}
        if root is None:
            return
        for abstract in root.iter(W + "abstractNum"):
            levels: dict[int, _Level] = {}
            for lvl in abstract.iter(W + "lvl"):
                ilvl = _int(lvl.get(W + "ilvl"), 0)
                levels[ilvl] = _Level(
                    fmt=_val(lvl, "numFmt") or "decimal",
                    text=_val(lvl, "lvlText") or "",
                    start=_int(_val(lvl, "start"), 1),
                )
            self._abstract[abstract.get(W + "abstractNumId") or ""] = levels
        for num in root.iter(W + "num"):
            overrides: dict[int, int] = {}
            for override in num.iter(W + "lvlOverride"):
                start = _val(override, "startOverride")
                if start is not None:
                    overrides[_int(override.get(W + "ilvl"), 0)] = _int(start, 1)
            abstract_id = _val(num, "abstractNumId") or ""
            self._nums[num.get(W + "numId") or ""] = (abstract_id, overrides)

    def marker(self, num_id: str, ilvl: int) -> str | None:
        """The next marker of list ``num_id`` at level ``ilvl`` ("1.", "A.", "-" for a
        bullet), or None when the list is unknown or its level writes nothing."""
        found = self._nums.get(num_id)
        if found is None:
            return None
        abstract_id, overrides = found
        levels = self._abstract.get(abstract_id, {})
        level = levels.get(ilvl)
        if level is None:
            return None
        if level.fmt == "bullet":
            return BULLET
        if level.fmt == "none":
            return level.text.strip() or None
        counters = self._counters.setdefault(num_id, {})
        start = overrides.get(ilvl, level.start)
        counters[ilvl] = counters.get(ilvl, start - 1) + 1
        for deeper in [k for k in counters if k > ilvl]:
            del counters[deeper]  # a higher level restarts the levels below it
        text = level.text
        for k in range(ilvl, -1, -1):
            if f"%{k + 1}" not in text:
                continue
            lv = levels.get(k)
            if lv is None:
                continue
            value = counters.get(k, overrides.get(k, lv.start))
            text = text.replace(f"%{k + 1}", format_number(value, lv.fmt))
        return text.strip() or None
