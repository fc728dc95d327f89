"""The Prometheus text exposition of the OKR families: each family's name, type and help in
the order a scrape sends them (docs/metrics.md), and how label sets and sample values are
spelled."""

from __future__ import annotations

from okrflow.domain.model import STATUSES

# (name, type, help) in exposition order.
FAMILIES: list[tuple[str, str, str]] = [
    ("okr_objective_info", "gauge", "Objective definition (always 1)"),
    (
        "okr_objective_progress_ratio",
        "gauge",
        "Objective progress: weighted mean of clamped key results and children",
    ),
    (
        "okr_objective_expected_ratio",
        "gauge",
        "Share of the objective's period elapsed (linear pace)",
    ),
    ("okr_objective_status", "gauge", "1 for the objective's current status, 0 for the others"),
    (
        "okr_period_start_timestamp_seconds",
        "gauge",
        "Start of the objective's period (first local midnight)",
    ),
    (
        "okr_period_end_timestamp_seconds",
        "gauge",
        "End of the objective's period (local midnight after its last day)",
    ),
    ("okr_key_result_value", "gauge", "Key result's current value"),
    ("okr_key_result_baseline", "gauge", "Key result's baseline"),
    (
        "okr_key_result_target",
        "gauge",
        "Key result's target (the bound for maintain, N x slots for cadence)",
    ),
    ("okr_key_result_progress_ratio", "gauge", "Key result progress, not clamped"),
    (
        "okr_key_result_expected_ratio",
        "gauge",
        "Expected progress by now (linear pace, or elapsed slots)",
    ),
    ("okr_key_result_status", "gauge", "1 for the key result's current status, 0 for the others"),
    (
        "okr_key_result_last_event_timestamp_seconds",
        "gauge",
        "Time of the last event counted in the key result",
    ),
    (
        "okr_key_result_backfill",
        "gauge",
        "1 while the key result's backfill is pending or running (its value is partial)",
    ),
    (
        "okr_key_result_forecast_probability",
        "gauge",
        "Chance of reaching the target by the period's end (as of the exporter's refresh)",
    ),
    (
        "okr_key_result_forecast_value",
        "gauge",
        "Forecast value at the period's end, by quantile (0.1, 0.5, 0.9)",
    ),
    (
        "okr_key_result_required_per_day",
        "gauge",
        "Pace a local day it takes from now to reach the target (a drop for a falling one)",
    ),
    (
        "okr_key_result_forecast_basis_days",
        "gauge",
        "Complete local days of data the key result's forecast stands on",
    ),
    (
        "okr_objective_forecast_probability",
        "gauge",
        "Chance that the objective's weighted progress reaches 1 by the period's end",
    ),
    ("okr_kpi_info", "gauge", "KPI definition (always 1): title, rolling window, healthy band"),
    ("okr_kpi_value", "gauge", "KPI's value over its rolling window of local days"),
    (
        "okr_kpi_healthy",
        "gauge",
        "1 while the KPI is inside its healthy band, 0 outside (with a band and a value only)",
    ),
    ("okr_kpi_healthy_bound", "gauge", "Bound of the KPI's healthy band, by side (above, below)"),
    (
        "okr_kpi_backfill",
        "gauge",
        "1 while the KPI's backfill is pending or running (its value is partial)",
    ),
    (
        "okr_backfill_remaining_messages",
        "gauge",
        "Messages below the cuts of the shop's unfinished backfill jobs not read yet",
    ),
    (
        "okr_shop_events_total",
        "counter",
        "Valid events counted per shop with a plan, by built-in or planned type (the rest: other)",
    ),
]


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(**pairs: str) -> str:
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in pairs.items()) + "}"


def number(x: float) -> str:
    """A sample value as the text format spells it: +Inf, -Inf and NaN, not Python's repr."""
    if x != x:
        return "NaN"
    if x in (_INF, -_INF):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x))


_INF = float("inf")


def status_blocks(name: str, status_labels: list[str]) -> dict[str, bytes]:
    """For each status, the six sample lines with that status at 1 and the others at 0:
    a scrape picks one instead of formatting six lines."""
    return {
        current: "".join(
            f"{name}{sl} {'1.0' if st == current else '0.0'}\n"
            for st, sl in zip(STATUSES, status_labels, strict=True)
        ).encode()
        for current in STATUSES
    }


def family_headers() -> dict[str, bytes]:
    """Each family's `# HELP` and `# TYPE` lines, encoded once."""
    return {
        name: f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n".encode()
        for name, kind, help_text in FAMILIES
    }
