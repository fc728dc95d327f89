"""A key result's burn-up chart as server-side SVG: the value at the end of each local day
(from `okrflow history`), the pace line, the target, for cadence key results the slots, and
the forecast's p10-p90 band from today to the period's end (with its p50). The value axis
ticks at round steps (1, 2, 2.5 or 5 x 10^k).

Hand-written rather than a chart library: the chart is a few lines, paths and circles in a
fixed frame, drawn without JavaScript (works offline, readable by tests and screen readers
through its title, description and the table beside it). The pace line is the formula's own
(`domain.pace.key_result_pace`: linear over the period, stepping through the slots for a
cadence), sampled at every local midnight of the period. The band is drawn straight from
today's value to the end's p10 and p90: the forecast gives the end, not the way there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

from okrflow.domain.model import KeyResult, Objective
from okrflow.domain.pace import key_result_pace
from okrflow.domain.periods import cadence_slots, local_midnight
from okrflow.exporter.pages.numbers import number
from okrflow.reports.figures import Number
from okrflow.reports.forecasts import KeyResultForecastFigures
from okrflow.reports.history import KeyResultDay

WIDTH, HEIGHT = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


@dataclass(frozen=True)
class _Frame:
    """Maps (days since the period's first midnight, value) to SVG coordinates."""

    days: float
    low: float
    high: float

    def x(self, day: float) -> float:
        return round(LEFT + (WIDTH - LEFT - RIGHT) * day / self.days, 2)

    def y(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return round(TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value - self.low) / span), 2)


def _finite(values: Sequence[Number]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]


def _pace(kr: KeyResult, objective: Objective, tz: str) -> list[tuple[float, float]]:
    """(day offset, expected share of the way from baseline to target) at every midnight."""
    rule = key_result_pace(kr, objective.period, tz, objective.thresholds)
    first = objective.period.start
    n = (objective.period.end - first).days + 1
    return [
        (float(i), rule.expected(local_midnight(first + timedelta(days=i), tz).timestamp()))
        for i in range(n + 1)
    ]


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round steps (1, 2, 2.5 or 5 x 10^k) covering [low, high], from a
    multiple of the step at or below `low` to one at or above `high`."""
    span = high - low if high > low else abs(high) or 1.0
    raw = span / count
    base = 10.0 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= raw * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    if last <= first:
        last = first + 1
    return [round(i * step, 12) for i in range(first, last + 1)]


@dataclass(frozen=True)
class Band:
    """The forecast drawn on the chart, and its sentence (the chart's `data-forecast`)."""

    forecast: KeyResultForecastFigures
    text: str


def burn_up(
    kr: KeyResult, objective: Objective, tz: str, days: Sequence[KeyResultDay],
    band: Band | None = None,
) -> str:  # fmt: skip
    """The chart for one key result; `days` are its `history` days, `band` its forecast
    now (drawn from the last day to the period's end while the period runs)."""
    period = objective.period
    total_days = (period.end - period.start).days + 1
    last = days[-1].figures if days else None
    baseline = last.baseline if last else None
    target = last.target if last else None
    has_goal = isinstance(baseline, int | float) and isinstance(target, int | float)
    if band is not None and (not days or days[-1].day >= period.end):
        band = None  # nothing ahead to draw
    values = _finite([d.figures.value for d in days])
    spread = _finite([band.forecast.p10, band.forecast.p90]) if band else []
    bounds = values + spread + _finite([baseline, target]) + [0.0]
    marks = ticks(min(bounds), max(bounds) + (max(bounds) - min(bounds)) * 0.04)
    frame = _Frame(float(total_days), marks[0], marks[-1])
    said = f' data-forecast="{escape(band.text)}"' if band else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="burnup" role="img" aria-labelledby="chart-title chart-desc" '
        f'data-key-result="{escape(kr.key)}"{said}>',
        f'<title id="chart-title">{escape(kr.title)}: burn-up</title>',
        f'<desc id="chart-desc">Value at the end of each day from {period.start} to '
        f"{period.end}"
        + (f", pace line from {number(baseline)} to target {number(target)}" if has_goal else "")
        + (f"; forecast: {escape(band.text)}" if band else "")
        + ".</desc>",
    ]
    if kr.cadence is not None:
        parts.append(_slots(kr, objective, tz, frame))
    parts.append(_axes(frame, marks, period.start, total_days))
    if band is not None:
        parts.append(_band(frame, (days[-1].day - period.start).days + 1, days[-1], band))
    if has_goal and kr.maintain is None:
        assert isinstance(baseline, int | float) and isinstance(target, int | float)
        pace = " ".join(
            f"{frame.x(d)},{frame.y(baseline + share * (target - baseline))}"
            for d, share in _pace(kr, objective, tz)
        )
        parts.append(f'<polyline class="pace" points="{pace}"><title>expected pace</title>'
                     "</polyline>")  # fmt: skip
    if isinstance(target, int | float):
        y = frame.y(float(target))
        label = "limit" if kr.maintain is not None else "target"
        parts.append(
            f'<line class="target" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" '
            f'data-target="{target}"><title>{label} {number(float(target))}</title></line>'
            f'<text class="label" x="{WIDTH - RIGHT}" y="{y - 4}" text-anchor="end">'
            f"{label} {number(float(target))}</text>"
        )
    parts.append(_values(frame, period.start, days))
    parts.append("</svg>")
    return "".join(parts)


def _values(frame: _Frame, first: date, days: Sequence[KeyResultDay]) -> str:
    points: list[str] = []
    dots: list[str] = []
    for d in days:
        value = d.figures.value
        if not isinstance(value, int | float):
            continue
        offset = (d.day - first).days + 1  # the end of that day
        day = d.day.isoformat()
        x, y = frame.x(offset), frame.y(float(value))
        points.append(f"{x},{y}")
        dots.append(
            f'<circle class="point" cx="{x}" cy="{y}" r="3" data-day="{day}" '
            f'data-value="{value}"><title>{day}: {number(float(value))}</title></circle>'
        )
    line = f'<polyline class="value" points="{" ".join(points)}"/>' if points else ""
    return f'<g class="values">{line}{"".join(dots)}</g>'


def _band(frame: _Frame, offset: int, last: KeyResultDay, band: Band) -> str:
    """The p10-p90 band from the last day's value to the period's end, and the p50 line."""
    f = band.forecast
    start = last.figures.value
    if not isinstance(start, int | float) or not _finite([f.p10, f.p50, f.p90]):
        return ""
    p10, p50, p90 = (float(v) for v in _finite([f.p10, f.p50, f.p90]))
    x0, x1, y0 = frame.x(offset), frame.x(frame.days), frame.y(float(start))
    return (
        f'<g class="forecast" data-p10="{f.p10}" data-p50="{f.p50}" data-p90="{f.p90}">'
        f'<polygon class="forecast-band" points="{x0},{y0} {x1},{frame.y(p90)} '
        f'{x1},{frame.y(p10)}"><title>forecast: 8 in 10 chances of ending between '
        f"{number(p10)} and {number(p90)}</title></polygon>"
        f'<line class="forecast-median" x1="{x0}" y1="{y0}" x2="{x1}" y2="{frame.y(p50)}">'
        f"<title>forecast median {number(p50)}</title></line></g>"
    )


def _axes(frame: _Frame, marks: Sequence[float], first: date, total_days: int) -> str:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    out = [
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>',
    ]
    for value in marks:
        y = frame.y(value)
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4}" text-anchor="end" '
                   f'data-tick="{int(value) if value.is_integer() else value}">'
                   f"{number(value)}</text>")  # fmt: skip
    step = max(1, total_days // 6)
    for offset in range(0, total_days + 1, step):
        x = frame.x(offset)
        day = first + timedelta(days=offset)
        out.append(f'<text class="tick" x="{x}" y="{bottom + 16}" text-anchor="middle">'
                   f"{day:%d %b}</text>")  # fmt: skip
    return "".join(out)


def _slots(kr: KeyResult, objective: Objective, tz: str, frame: _Frame) -> str:
    """Alternate shading of the cadence slots (each a local day, ISO week or month)."""
    assert kr.cadence is not None
    start = local_midnight(objective.period.start, tz).timestamp()
    out = ['<g class="slots">']
    for i, slot in enumerate(cadence_slots(objective.period, kr.cadence, tz)):
        x1 = frame.x((slot.start.timestamp() - start) / 86400)
        x2 = frame.x((slot.end.timestamp() - start) / 86400)
        out.append(
            f'<rect class="slot slot-{i % 2}" x="{x1}" y="{TOP}" width="{max(x2 - x1, 0.5)}" '
            f'height="{HEIGHT - TOP - BOTTOM}" data-slot="{i}"><title>slot {i + 1}: '
            f"{slot.days[0]} to {slot.days[-1]}</title></rect>"
        )
    out.append("</g>")
    return "".join(out)
