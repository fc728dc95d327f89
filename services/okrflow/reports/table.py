"""The progress report as a terminal table with progress bars (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from okrflow.domain.forecast import NoForecast
from okrflow.reports.figures import KeyResultFigures, KpiFigures, Number
from okrflow.reports.forecasts import KeyResultOutlook, ObjectiveOutlook
from okrflow.reports.history import HistoryReport, KpiHistory
from okrflow.reports.kpis import KpiEntry
from okrflow.reports.progress import KeyResultEntry, ProgressReport

STATUS_STYLE = {
    "on_track": "green", "achieved": "bold green", "at_risk": "yellow",
    "off_track": "bold red", "missed": "red", "not_started": "dim",
}  # fmt: skip


def _bar(progress: float | None) -> ProgressBar:
    done = 0.0 if progress is None else min(1.0, max(0.0, progress))
    return ProgressBar(total=1.0, completed=done, width=12)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def _chance(outlook: KeyResultOutlook | ObjectiveOutlook) -> str:
    """The forecast's probability of reaching the target (a dash: no forecast)."""
    return "-" if isinstance(outlook, NoForecast) else _pct(outlook.probability)


def _num(x: Number) -> str:
    if x is None:
        return "-"
    return f"{x:g}" if isinstance(x, float) else str(x)


def render_progress(report: ProgressReport, console: Console) -> None:
    if not report.shops:
        console.print("No objectives yet: write an okrs.yaml and run `okrflow apply okrs.yaml`.")
        return
    for shop in report.shops:
        when = (
            f"as of the end of {report.as_of.isoformat()}"
            if report.as_of
            else f"at {report.at.isoformat() if report.at else None}"
        )
        table = Table(
            title=f"{shop.shop}  ({shop.timezone}, {when})", title_justify="left",
            show_lines=False, expand=False,
        )  # fmt: skip
        for col in (
            "objective / key result",
            "value",
            "target",
            "progress",
            "",
            "expected",
            "status",
            "chance",
        ):
            table.add_column(
                col,
                justify="right"
                if col in ("value", "target", "progress", "expected", "chance")
                else "left",
            )
        for o in shop.objectives:
            f = o.figures
            style = STATUS_STYLE.get(f.status, "")
            table.add_row(
                Text(f"{o.title} [{o.key}]", style="bold", no_wrap=True, overflow="ellipsis"), "", "",
                _pct(f.progress), _bar(f.progress), _pct(f.expected),
                Text(f.status, style=style), _chance(o.forecast),
            )  # fmt: skip
            for kr in o.key_results:
                k = kr.figures
                table.add_row(
                    Text(f"  {kr.title}", no_wrap=True, overflow="ellipsis"), _num(k.value), _num(k.target), _pct(k.progress),
                    _bar(k.progress), _pct(k.expected),
                    _kr_status(kr), _chance(kr.forecast),
                )  # fmt: skip
        console.print(table)
        if shop.kpis:
            console.print(_kpi_table(shop.kpis))


def _kpi_table(kpis: Sequence[KpiEntry]) -> Table:
    """A shop's KPIs: value over the rolling window, band and health."""
    table = Table(title="  KPIs (rolling windows of local days, today included)",
                  title_justify="left")  # fmt: skip
    for col in ("kpi", "window", "value", "healthy band", "health"):
        table.add_column(col, justify="right" if col in ("window", "value") else "left")
    for kpi in kpis:
        table.add_row(
            Text(f"{kpi.title} [{kpi.key}]", no_wrap=True, overflow="ellipsis"),
            kpi.window, _num(kpi.figures.value), kpi.band or "-",
            _kpi_health(kpi.figures, kpi.band, kpi.backfill),
        )  # fmt: skip
    return table


def _kpi_health(kpi: KpiFigures, band: str | None, backfill: str | None = None) -> Text:
    if kpi.healthy is None:
        health = Text("-" if band else "", style="dim")
    elif kpi.healthy:
        health = Text("healthy", style="green")
    else:
        health = Text("unhealthy", style="bold red")
    if backfill in ("pending", "running"):
        health.append(" backfilling", style="italic yellow")
    return health


def _kr_status(kr: KeyResultEntry) -> Text:
    """The status, marked while a backfill has not counted the events from before the apply
    (the value is partial)."""
    # No status while a baseline from data is not measured yet.
    status = _status(kr.figures)
    if kr.backfill in ("pending", "running"):
        status.append(" backfilling", style="italic yellow")
    return status


def _status(kr: KeyResultFigures) -> Text:
    return Text(kr.status or "-", style=STATUS_STYLE.get(kr.status or "", ""))


def render_history(report: HistoryReport, console: Console) -> None:
    """One table per objective: per day, the objective's line, then each key result's."""
    objectives = report.objectives
    kpis = [k for k in report.kpis if k.days]
    if not any(o.days for o in objectives) and not kpis:
        console.print(
            f"{report.shop}: no day to show yet (today is {report.today.isoformat()} in "
            f"{report.timezone}; a period shows from its first day)"
        )
        return
    for o in objectives:
        if not o.days:
            continue
        table = Table(
            title=f"{report.shop} / {o.title} [{o.key}]  ({report.timezone}, "
            "at the end of each day)", title_justify="left",
        )  # fmt: skip
        table.add_column("day", no_wrap=True, min_width=10)  # a date, never cut
        for col in ("objective / key result", "value", "target", "progress", "expected"):
            table.add_column(col, justify="left" if col == "objective / key result" else "right")
        table.add_column("status")
        table.add_column("chance", justify="right")
        for i, day in enumerate(o.days):
            d = day.figures
            table.add_row(
                day.day.isoformat(), Text(o.key, style="bold"), "", "", _pct(d.progress),
                _pct(d.expected), Text(d.status, style=STATUS_STYLE.get(d.status, "")),
                _chance(day.forecast),
            )  # fmt: skip
            for kr in o.key_results:
                kr_day = kr.days[i]
                k = kr_day.figures
                table.add_row(
                    "", f"  {kr.key}", _num(k.value), _num(k.target), _pct(k.progress),
                    _pct(k.expected), _status(k), _chance(kr_day.forecast),
                )  # fmt: skip
        console.print(table)
    if kpis:
        console.print(_kpi_history_table(report, kpis))


def _kpi_history_table(report: HistoryReport, kpis: Sequence[KpiHistory]) -> Table:
    """Per day, each KPI over the window ending that day."""
    table = Table(
        title=f"{report.shop} / KPIs  ({report.timezone}, the window ending each day)",
        title_justify="left",
    )
    for col in ("day", "kpi", "window", "value", "health"):
        table.add_column(col, justify="right" if col in ("window", "value") else "left")
    for i, day in enumerate(kpis[0].days):
        for n, kpi in enumerate(kpis):
            k = kpi.days[i].figures
            table.add_row(
                day.day.isoformat() if n == 0 else "", kpi.key, kpi.window, _num(k.value),
                _kpi_health(k, kpi.band),
            )  # fmt: skip
    return table
