"""Small bar charts as SVG geometry, computed here and drawn by the template: no
JavaScript, no library, nothing from a CDN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 10, 24  # margins for the axis labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str  # the series' class: its colour comes from app.css
    title: str  # the hover text: day and value


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[Label]
    left: float  # the x of the y axis
    baseline: float  # the y of the x axis
    top: float  # the y of the highest value


@dataclass(frozen=True)
class Series:
    css: str
    values: Sequence[float | None]  # None or 0: no bar that day


def bar_chart(days: Sequence[date], series: Sequence[Series], *, percent: bool = False) -> Chart:
    """Bars per day, the series side by side; the y axis from 0 to the largest value
    (100 % for ``percent`` values between 0 and 1)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for s in series for v in s.values if v is not None]
    peak = 1.0 if percent else max([1.0, *values])
    slot = plot_w / max(1, len(days))
    bar_w = max(1.0, (slot * 0.8) / max(1, len(series)))
    baseline = TOP + plot_h
    bars = []
    for i, day in enumerate(days):
        for j, s in enumerate(series):
            value = s.values[i]
            if not value:  # no bar for nothing (a zero would be invisible anyway)
                continue
            h = plot_h * value / peak
            shown = f"{value * 100:.0f}%" if percent else f"{value:g}"
            bars.append(
                Bar(
                    x=round(LEFT + i * slot + slot * 0.1 + j * bar_w, 2),
                    y=round(baseline - h, 2),
                    width=round(bar_w, 2),
                    height=round(h, 2),
                    css=s.css,
                    title=f"{day.isoformat()}: {shown}",
                )
            )
    top_text = "100%" if percent else f"{peak:g}"
    labels = [
        Label(LEFT - 4, TOP + 4, top_text, "end"),
        Label(LEFT - 4, baseline, "0%" if percent else "0", "end"),
    ]
    if days:
        picks = sorted({0, len(days) // 2, len(days) - 1})
        for i in picks:
            labels.append(
                Label(round(LEFT + (i + 0.5) * slot, 2), HEIGHT - 6, days[i].strftime("%m-%d"))
            )
    return Chart(WIDTH, HEIGHT, bars, labels, LEFT, baseline, TOP)
