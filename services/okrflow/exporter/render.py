"""The OKR metrics of DESIGN §6 as Prometheus text, from a snapshot, at scrape time.

Label strings are rendered once per snapshot; a scrape computes progress, pace and status
with the domain formulas and formats only the values. Building prometheus_client metric
families for 1,000 objectives x 5 key results (~70,000 samples) took well over the 50 ms a
scrape may take; this path does it in a fraction (see tests/perf/scrape_bench.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from okrflow.domain.model import STATUSES
from okrflow.domain.periods import period_bounds
from okrflow.domain.progress import plan_progress
from okrflow.exporter.snapshot import ProgressSnapshot

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
    ("okr_shop_events_total", "counter", "Valid events counted per shop and type"),
]


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(**pairs: str) -> str:
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in pairs.items()) + "}"


def number(x: float) -> str:
    return repr(float(x)) if x == x else "NaN"


class OkrRenderer:
    """Renders one snapshot; `render(now)` may be called from any thread."""

    def __init__(self, snapshot: ProgressSnapshot) -> None:
        self.snapshot = snapshot
        self._objective_labels: dict[tuple[str, str], str] = {}
        self._kr_labels: dict[tuple[str, str, str], str] = {}
        self._status_labels: dict[tuple[str, ...], list[str]] = {}
        self._static: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}
        for active in snapshot.plans:
            plan = active.plan
            for o in plan.objectives:
                ol = labels(shop=plan.shop, objective=o.key)
                self._objective_labels[plan.shop, o.key] = ol
                self._status_labels[plan.shop, o.key] = [
                    labels(shop=plan.shop, objective=o.key, status=s) for s in STATUSES
                ]
                info = labels(shop=plan.shop, objective=o.key, title=o.title, owner=o.owner,
                              level=o.level, parent=o.parent or "")  # fmt: skip
                self._static["okr_objective_info"].append(f"okr_objective_info{info} 1.0\n")
                start, end = period_bounds(o.period, plan.timezone)
                self._static["okr_period_start_timestamp_seconds"].append(
                    f"okr_period_start_timestamp_seconds{ol} {number(start.timestamp())}\n"
                )
                self._static["okr_period_end_timestamp_seconds"].append(
                    f"okr_period_end_timestamp_seconds{ol} {number(end.timestamp())}\n"
                )
                for kr in o.key_results:
                    kl = labels(shop=plan.shop, objective=o.key, key_result=kr.key)
                    self._kr_labels[plan.shop, o.key, kr.key] = kl
                    self._status_labels[plan.shop, o.key, kr.key] = [
                        labels(shop=plan.shop, objective=o.key, key_result=kr.key, status=s)
                        for s in STATUSES
                    ]
        for shop, event_type, n in snapshot.shop_events:
            self._static["okr_shop_events_total"].append(
                f"okr_shop_events_total{labels(shop=shop, type=event_type)} {number(n)}\n"
            )

    def render(self, now: datetime | None = None) -> str:
        """Prometheus text exposition of every OKR metric, judged at `now` (default: now)."""
        now = now or datetime.now(UTC)
        out: dict[str, list[str]] = {name: list(lines) for name, lines in self._static.items()}
        for active in self.snapshot.plans:
            plan = active.plan
            states = {
                pair: self.snapshot.states.get(kr_id, {})
                for pair, kr_id in active.key_result_ids.items()
            }
            results = plan_progress(plan, states, now)
            for o in plan.objectives:
                r = results[o.key]
                ol = self._objective_labels[plan.shop, o.key]
                out["okr_objective_progress_ratio"].append(
                    f"okr_objective_progress_ratio{ol} {number(r.progress)}\n"
                )
                out["okr_objective_expected_ratio"].append(
                    f"okr_objective_expected_ratio{ol} {number(r.expected)}\n"
                )
                for status, sl in zip(STATUSES, self._status_labels[plan.shop, o.key], strict=True):
                    out["okr_objective_status"].append(
                        f"okr_objective_status{sl} {'1.0' if status == r.status else '0.0'}\n"
                    )
                for kr in r.key_results:
                    kl = self._kr_labels[plan.shop, o.key, kr.key]
                    out["okr_key_result_value"].append(
                        f"okr_key_result_value{kl} {number(kr.value)}\n"
                    )
                    out["okr_key_result_baseline"].append(
                        f"okr_key_result_baseline{kl} {number(kr.baseline)}\n"
                    )
                    out["okr_key_result_target"].append(
                        f"okr_key_result_target{kl} {number(kr.target)}\n"
                    )
                    out["okr_key_result_progress_ratio"].append(
                        f"okr_key_result_progress_ratio{kl} {number(kr.progress)}\n"
                    )
                    out["okr_key_result_expected_ratio"].append(
                        f"okr_key_result_expected_ratio{kl} {number(kr.expected)}\n"
                    )
                    for status, sl in zip(
                        STATUSES, self._status_labels[plan.shop, o.key, kr.key], strict=True
                    ):
                        out["okr_key_result_status"].append(
                            f"okr_key_result_status{sl} {'1.0' if status == kr.status else '0.0'}\n"
                        )
                    if kr.last_event_at is not None:
                        out["okr_key_result_last_event_timestamp_seconds"].append(
                            f"okr_key_result_last_event_timestamp_seconds{kl} {number(kr.last_event_at.timestamp())}\n"
                        )
        parts = []
        for name, kind, help_text in FAMILIES:
            parts.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
            parts.extend(out[name])
        return "".join(parts)
