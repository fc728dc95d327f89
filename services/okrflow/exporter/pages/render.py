"""The pages as HTML, from their JSON twins (the `progress` and `history` shapes).

Built with f-strings and `html.escape` rather than a template engine: the pages are a few
fixed fragments, and a shop of 1,000 objectives x 5 key results must render in well under
100 ms (no template engine is a dependency of okrflow either). Every value a plan or an event
supplies is escaped. Numbers are shown as `number()` and `percent()` print them; the script
(static/pages.js) prints them the same way when it updates the page in place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from html import escape as _escape
from urllib.parse import quote

from okrflow.domain.model import Objective, Plan
from okrflow.exporter.pages.forecast_text import day_chance, key_result_text, objective_text
from okrflow.exporter.pages.numbers import NONE, number, percent
from okrflow.reports.figures import KeyResultFigures, ObjectiveFigures
from okrflow.reports.history import HistoryReport
from okrflow.reports.kpis import KpiEntry
from okrflow.reports.progress import KeyResultEntry, ObjectiveEntry, ProgressReport, ShopProgress

# Titles, keys and statuses repeat on every render of a page: escaped once.
escape = lru_cache(maxsize=65536)(_escape)

LEVELS = ("company", "team", "individual")
STATUS_TEXT = {
    "on_track": "On track",
    "at_risk": "At risk",
    "off_track": "Off track",
    "achieved": "Achieved",
    "missed": "Missed",
    "not_started": "Not started",
}
WAITING = "Waiting for its baseline"


def status_text(status: str | None) -> str:
    return WAITING if status is None else STATUS_TEXT.get(status, status)


def shop_url(shop: str) -> str:
    return f"/shops/{quote(shop)}"


def key_result_url(shop: str, objective: str, key_result: str) -> str:
    return f"{shop_url(shop)}/key-results/{quote(objective)}/{quote(key_result)}"


def page(title: str, body: str, *, poll: str | None = None, crumbs: str = "") -> str:
    """A whole page. `poll`: the JSON twin the script polls to update the page in place."""
    data = f' data-poll="{escape(poll)}"' if poll else ""
    script = '<script src="/static/pages.js" defer></script>' if poll else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · okrflow</title>"
        '<link rel="stylesheet" href="/static/pages.css"></head>'
        f"<body{data}>"
        '<a class="skip" href="#main">Skip to the content</a>'
        f'<header><nav aria-label="Breadcrumbs"><a href="/">okrflow</a>{crumbs}</nav>'
        '<p class="live" aria-live="polite"><span data-field="updated"></span></p></header>'
        f'<main id="main">{body}</main>{script}</body></html>'
    )


def _bar(label: str, progress: float | None, expected: float | None, status: str | None) -> str:
    width = _share(progress)
    pace = _share(expected)
    valuetext = f"{percent(progress)} done, {percent(expected)} expected by now, " + status_text(
        status
    )
    return (
        f'<div class="bar" role="progressbar" aria-label="{escape(label)}" aria-valuemin="0" '
        f'aria-valuemax="100" aria-valuenow="{round(width)}" '
        f'aria-valuetext="{valuetext}">'
        f'<div class="fill" style="width:{width:.1f}%"></div>'
        f'<div class="pace" style="left:{pace:.1f}%" title="expected pace"></div></div>'
    )


def _share(x: float | None) -> float:
    if not isinstance(x, int | float) or not math.isfinite(x):
        return 0.0
    return min(100.0, max(0.0, x * 100))


def _status(status: str | None) -> str:
    return (
        f'<span class="status status-{escape(status or "waiting")}" data-field="status">'
        f"{escape(status_text(status))}</span>"
    )


def _figures(entry: KeyResultFigures | ObjectiveFigures) -> str:
    return (
        f"{_status(entry.status)} "
        f'<span data-field="progress">{percent(entry.progress)}</span> done, '
        f'<span data-field="expected">{percent(entry.expected)}</span> expected by now'
    )


def _forecast(text: str) -> str:
    """A forecast's sentence (not through the cached `escape`: it changes every snapshot)."""
    return f'<p class="forecast">Forecast: <span data-field="forecast">{_escape(text)}</span></p>'


def _key_result(shop: str, o: ObjectiveEntry, kr: KeyResultEntry, weight: float) -> str:
    objective, key = o.key, kr.key
    f = kr.figures
    backfill = kr.backfill
    note = (
        f' <span class="note" data-field="backfill">backfill {escape(backfill)}: partial '
        "values</span>"
        if backfill in ("pending", "running")
        else ""
    )
    return (
        f'<li class="kr status-{escape(f.status or "waiting")}" '
        f'data-kr="{escape(objective)}/{escape(key)}">'
        f'<h3><a href="{escape(key_result_url(shop, objective, key))}">{escape(kr.title)}'
        "</a></h3>"
        + _bar(f"Progress of key result {kr.title}", f.progress, f.expected, f.status)
        + f'<p class="figures">{_figures(f)}</p>'
        + _forecast(key_result_text(kr.forecast, f.target, f.baseline, o.end))
        + f'<p class="values">value <strong data-field="value">{number(f.value)}</strong>'
        f' · baseline <span data-field="baseline">{number(f.baseline)}</span>'
        f' · target <span data-field="target">{number(f.target)}</span>'
        f" · weight {number(weight)}{note}</p></li>"
    )


def _objective(shop: str, o: ObjectiveEntry, definition: Objective) -> str:
    weights = {kr.key: kr.weight for kr in definition.key_results}
    parent = f' · parent <a href="#o-{escape(o.parent)}">{escape(o.parent)}</a>' if o.parent else ""
    f = o.figures
    krs = "".join(_key_result(shop, o, kr, weights[kr.key]) for kr in o.key_results)
    return (
        f'<article class="objective status-{escape(f.status)}" id="o-{escape(o.key)}" '
        f'data-objective="{escape(o.key)}">'
        f"<h2>{escape(o.title)}</h2>"
        f'<p class="meta"><span class="level">{escape(o.level)}</span> · owner '
        f"<strong>{escape(o.owner)}</strong> · {o.start.isoformat()} to {o.end.isoformat()}"
        f" · weight {number(definition.weight)}{parent}</p>"
        + _bar(f"Progress of objective {o.title}", f.progress, f.expected, f.status)
        + f'<p class="figures">{_figures(f)}</p>'
        + _forecast(objective_text(o.forecast, o.end))
        + f'<ul class="key-results" aria-label="Key results of {escape(o.title)}">{krs}</ul>'
        "</article>"
    )


def _level_order(objectives: Iterable[ObjectiveEntry]) -> list[ObjectiveEntry]:
    rank = {level: i for i, level in enumerate(LEVELS)}
    return sorted(objectives, key=lambda o: rank.get(o.level, len(LEVELS)))


def _kpis(kpis: Sequence[KpiEntry]) -> str:
    if not kpis:
        return ""
    rows = []
    for k in kpis:
        healthy = k.figures.healthy
        health = "Healthy" if healthy is True else "Unhealthy" if healthy is False else NONE
        state = "healthy" if healthy is True else "unhealthy" if healthy is False else "none"
        rows.append(
            f'<tr data-kpi="{escape(k.key)}"><th scope="row">{escape(k.title)}</th>'
            f"<td>{escape(k.window)}</td>"
            f'<td data-field="value">{number(k.figures.value)}</td>'
            f"<td>{escape(k.band or NONE)}</td>"
            f'<td><span class="health health-{state}" data-field="healthy">{health}</span></td>'
            "</tr>"
        )
    return (
        '<section class="kpis" aria-labelledby="kpis"><h2 id="kpis">KPIs</h2>'
        '<div class="scroll"><table><thead><tr><th scope="col">KPI</th>'
        '<th scope="col">Window</th><th scope="col">Value</th><th scope="col">Band</th>'
        f'<th scope="col">Health</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
        "</section>"
    )


def shop_page(plan: Plan, report: ProgressReport) -> str:
    """The shop's objective tree, levels in order (company, team, individual), and its KPIs."""
    (entry,) = report.shops
    shop = entry.shop
    at = report.at.isoformat() if report.at else ""
    definitions = {o.key: o for o in plan.objectives}
    objectives = "".join(
        _objective(shop, o, definitions[o.key]) for o in _level_order(entry.objectives)
    )
    body = (
        f"<h1>{escape(shop)}</h1>"
        f'<p class="meta">Time zone {escape(entry.timezone)} · as of '
        f'<time data-field="at" datetime="{escape(at)}">{escape(at)}</time>'
        f' · <a href="{escape(shop_url(shop))}?format=json">JSON</a></p>'
        f"{objectives}{_kpis(entry.kpis)}"
    )
    crumb = f' &rsaquo; <a href="{escape(shop_url(shop))}" aria-current="page">{escape(shop)}</a>'
    return page(shop, body, poll=f"{shop_url(shop)}?format=json", crumbs=crumb)


def index_page(shops: Sequence[ShopProgress], token_required: bool) -> str:
    if token_required:
        items = (
            "<p>Each shop's page needs a link with one of its tokens "
            "(<code>/shops/SHOP?token=…</code>).</p>"
        )
    elif not shops:
        items = "<p>No shop has a plan yet: <code>okrflow apply okrs.yaml</code>.</p>"
    else:
        rows = []
        for s in shops:
            counts: dict[str, int] = {}
            for o in s.objectives:
                counts[o.figures.status] = counts.get(o.figures.status, 0) + 1
            summary = ", ".join(f"{n} {status_text(k).lower()}" for k, n in sorted(counts.items()))
            rows.append(
                f'<li><a href="{escape(shop_url(s.shop))}">{escape(s.shop)}</a> '
                f'<span class="meta">{len(s.objectives)} objective(s): '
                f"{escape(summary)}</span></li>"
            )
        items = f'<ul class="shops">{"".join(rows)}</ul>'
    return page("Shops", f"<h1>Shops</h1>{items}")


def key_result_page(
    shop: str, objective: Objective, key: str, history: HistoryReport, chart: str,
    forecast: str = "",
) -> str:  # fmt: skip
    """A key result's burn-up: the chart, its latest figures, its forecast now in words
    (`forecast`) and every day as a table."""
    (o,) = history.objectives
    (kr,) = o.key_results
    days = kr.days
    last = days[-1] if days else None
    latest = (
        f'<p class="figures">{_figures(last.figures)} · value <strong data-field="value">'
        f'{number(last.figures.value)}</strong> on <span data-field="day">'
        f"{last.day.isoformat()}</span>"
        f' · target <span data-field="target">{number(last.figures.target)}</span></p>'
        if last
        else '<p class="figures">The period has not started yet.</p>'
    )
    rows = "".join(
        f'<tr><th scope="row">{d.day.isoformat()}</th><td>{number(d.figures.value)}</td>'
        f"<td>{percent(d.figures.progress)}</td><td>{percent(d.figures.expected)}</td>"
        f"<td>{escape(status_text(d.figures.status))}</td><td>{day_chance(d.forecast)}</td></tr>"
        for d in reversed(days)
    )
    url = key_result_url(shop, objective.key, key)
    body = (
        f"<h1>{escape(kr.title)}</h1>"
        f'<p class="meta">Key result of <a href="{escape(shop_url(shop))}#o-'
        f'{escape(objective.key)}">{escape(objective.title)}</a> · {o.start.isoformat()} to '
        f'{o.end.isoformat()} · <a href="{escape(url)}?format=json">JSON</a></p>'
        f'<div data-kr="{escape(objective.key)}/{escape(key)}">{latest}'
        f"{_forecast(forecast) if forecast else ''}</div>"
        f'<h2>Burn-up</h2><figure><div class="chart" data-chart="{escape(url)}?format=svg">'
        f"{chart}</div><figcaption>The value at the end of each day (dots), the expected pace "
        "(dashed), the target, and from today the forecast: 8 in 10 chances of ending in the "
        "shaded band, its median the line through it.</figcaption></figure>"
        '<h2>Every day</h2><div class="scroll"><table class="days"><thead><tr>'
        '<th scope="col">Day</th><th scope="col">Value</th><th scope="col">Progress</th>'
        '<th scope="col">Expected</th><th scope="col">Status</th>'
        '<th scope="col">Forecast</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )
    crumbs = (
        f' &rsaquo; <a href="{escape(shop_url(shop))}">{escape(shop)}</a>'
        f' &rsaquo; <a href="{escape(url)}" aria-current="page">{escape(kr.title)}</a>'
    )
    return page(kr.title, body, poll=f"{url}?format=json", crumbs=crumbs)


def message_page(status: int, title: str, line: str, links: Sequence[tuple[str, str]]) -> str:
    """A 404 (or 403) page: what was asked for, and links to what exists."""
    items = "".join(f'<li><a href="{escape(u)}">{escape(t)}</a></li>' for t, u in links)
    more = f"<ul>{items}</ul>" if items else ""
    return page(title, f"<h1>{escape(title)}</h1><p>{escape(line)}</p>{more}")
