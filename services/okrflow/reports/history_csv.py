"""`okrflow history --format csv`: one row per objective, key result or KPI and day, the
fields of the JSON days flattened (a forecast by its probability)."""

from __future__ import annotations

import csv
import io

from okrflow.domain.forecast import NoForecast
from okrflow.jsontypes import JsonObject, JsonValue
from okrflow.reports.forecasts import KeyResultOutlook, ObjectiveOutlook
from okrflow.reports.history import HistoryReport

CSV_COLUMNS = (
    "shop", "objective", "key_result", "kpi", "day", "value", "baseline", "target", "progress",
    "expected", "status", "has_value", "healthy", "probability",
)  # fmt: skip


def history_rows(report: HistoryReport) -> list[JsonObject]:
    """One row per objective and day, then per key result and day (objective rows have no
    key result, value, baseline or target), then per KPI and day (no objective, key
    result, baseline, target, progress, expected or status)."""
    out: list[JsonObject] = []
    for o in report.objectives:
        for day in o.days:
            out.append({"shop": report.shop, "objective": o.key, "key_result": "",
                        **day.to_json(), "probability": _probability(day.forecast)})  # fmt: skip
        for kr in o.key_results:
            for kr_day in kr.days:
                out.append({"shop": report.shop, "objective": o.key, "key_result": kr.key,
                            **kr_day.to_json(), "probability": _probability(kr_day.forecast)})  # fmt: skip
    for kpi in report.kpis:
        for kpi_day in kpi.days:
            out.append({"shop": report.shop, "objective": "", "key_result": "",
                        "kpi": kpi.key, **kpi_day.to_json()})  # fmt: skip
    return out


def _probability(outlook: KeyResultOutlook | ObjectiveOutlook) -> float | None:
    return None if isinstance(outlook, NoForecast) else outlook.probability


def history_csv(report: HistoryReport) -> str:
    """CSV with a header (CSV_COLUMNS); empty cells for what a row does not have."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history_rows(report):
        writer.writerow({k: _cell(row.get(k)) for k in CSV_COLUMNS})
    return buffer.getvalue()


def _cell(value: JsonValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
