"""Byte counts as a person reads them, in binary units (1 KiB = 1024 bytes)."""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_size(n: int) -> str:
    """``512 B``, ``1000 B``, ``64 KiB``, ``1.5 MiB``, ``100 MiB``: at most one decimal,
    none when it is zero, so a limit under 1 MiB never reads as "0 MiB"."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if round(value, 1) < 1024 or unit == _UNITS[-1]:
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    raise AssertionError("unreachable")
