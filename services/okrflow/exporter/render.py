"""The OKR metrics of docs/metrics.md as Prometheus text, from a snapshot, at scrape time.

Values and progress depend only on what was counted, so they are computed (domain formulas)
and rendered once per snapshot, off the scrape path. A scrape computes what moves with the
clock, expected pace and status (each definition's `PaceRule`, the rule the domain's
`judge_key_result` / `judge_objective` apply), and formats those.
Building prometheus_client metric families for 1,000 objectives x 5 key results (~70,000
samples) at every scrape took well over the 50 ms a scrape may take (measured by
tests/perf/scrape_bench.py).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from okrflow.domain.kpis import KpiProgress
from okrflow.domain.model import STATUSES, Kpi, Plan, metric_parts
from okrflow.domain.periods import period_bounds
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import PaceRule, key_result_pace, measure_plan, objective_pace
from okrflow.events.types import BUILT_IN
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
    (
        "okr_key_result_backfill",
        "gauge",
        "1 while the key result's backfill is pending or running (its value is partial)",
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

# `okr_shop_events_total` of a planned shop sums every type that is neither built in nor
# named by its plan under this one.
OTHER_TYPE = "other"


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


@dataclass(frozen=True)
class _ObjectiveLabels:
    labels: str
    static: str  # okr_objective_info and the period bounds: depend on the plan only
    status: dict[str, bytes]
    rule: PaceRule


@dataclass(frozen=True)
class _KeyResultLabels:
    labels: str
    status: dict[str, bytes]
    rule: PaceRule


# Label strings and pace rules depend on the plan only: built once per loaded plan, not once
# per snapshot.
_plan_labels: weakref.WeakKeyDictionary[ActivePlan, dict[tuple[str, ...], Any]] = (
    weakref.WeakKeyDictionary()
)
_plan_labels_lock = threading.Lock()


def _labels_of(active: ActivePlan) -> dict[tuple[str, ...], Any]:
    with _plan_labels_lock:
        cached = _plan_labels.get(active)
    if cached is not None:
        return cached
    plan, shop = active.plan, active.plan.shop
    out: dict[tuple[str, ...], Any] = {}
    for o in plan.objectives:
        ol = labels(shop=shop, objective=o.key)
        info = labels(
            shop=shop,
            objective=o.key,
            title=o.title,
            owner=o.owner,
            level=o.level,
            parent=o.parent or "",
        )
        start, end = period_bounds(o.period, plan.timezone)
        out[(o.key,)] = _ObjectiveLabels(
            ol,
            f"okr_objective_info{info} 1.0\n",
            status_blocks(
                "okr_objective_status",
                [labels(shop=shop, objective=o.key, status=st) for st in STATUSES],
            ),
            objective_pace(o, plan.timezone),
        )
        out[("start", o.key)] = (
            f"okr_period_start_timestamp_seconds{ol} {number(start.timestamp())}\n"
        )
        out[("end", o.key)] = f"okr_period_end_timestamp_seconds{ol} {number(end.timestamp())}\n"
        for kr in o.key_results:
            out[(o.key, kr.key)] = _KeyResultLabels(
                labels(shop=shop, objective=o.key, key_result=kr.key),
                status_blocks(
                    "okr_key_result_status",
                    [
                        labels(shop=shop, objective=o.key, key_result=kr.key, status=st)
                        for st in STATUSES
                    ],
                ),
                key_result_pace(kr, o.period, plan.timezone, o.thresholds),
            )
    with _plan_labels_lock:
        _plan_labels[active] = out
    return out


def shown_event_types(plan: Plan) -> frozenset[str]:
    """The types `okr_shop_events_total` shows for a shop: the built-in ones and those its
    plan's metrics count."""
    named = {m.event for o in plan.objectives for kr in o.key_results
             for _, m in metric_parts(kr.metric)}  # fmt: skip
    return frozenset(BUILT_IN).union(named)


def bounded_shop_events(
    plans: Iterable[ActivePlan], rows: Iterable[tuple[str, str, int]]
) -> list[tuple[str, str, int]]:
    """`(shop, type, events)` rows cut down to what `okr_shop_events_total` shows: shops with
    a plan in force only, and per shop its `shown_event_types`, every other type summed
    under `OTHER_TYPE`. The number of series is then bounded by the plans, never by what
    producers send (event payloads choose shop and type names)."""
    shown = {active.plan.shop: shown_event_types(active.plan) for active in plans}
    totals: dict[tuple[str, str], int] = {}
    for shop, event_type, n in rows:
        types = shown.get(shop)
        if types is None:
            continue
        key = (shop, event_type if event_type in types else OTHER_TYPE)
        totals[key] = totals.get(key, 0) + n
    return [(shop, event_type, n) for (shop, event_type), n in sorted(totals.items())]


# A KPI's value is partial while its backfill is in one of these states.
BACKFILLING = ("pending", "running")


def kpi_lines(shop: str, kpi: Kpi, p: KpiProgress) -> list[tuple[str, str]]:
    """A KPI's samples as (family, line): its info, its value while it has one, its health
    with a band and a value and not while a backfill makes the value partial (a partial
    window must page no one), the bounds of its band, and its backfill flag."""
    kl = labels(shop=shop, kpi=kpi.key)
    info = labels(shop=shop, kpi=kpi.key, title=p.title, window=p.window, band=p.band)
    backfilling = p.backfill in BACKFILLING
    out = [("okr_kpi_info", f"okr_kpi_info{info} 1.0\n")]
    if p.value is not None:
        out.append(("okr_kpi_value", f"okr_kpi_value{kl} {number(p.value)}\n"))
    if p.healthy is not None and not backfilling:
        out.append(("okr_kpi_healthy", f"okr_kpi_healthy{kl} {'1.0' if p.healthy else '0.0'}\n"))
    if kpi.healthy is not None:
        for side, bound in (("above", kpi.healthy.above), ("below", kpi.healthy.below)):
            if bound is not None:
                bl = labels(shop=shop, kpi=kpi.key, side=side)
                line = f"okr_kpi_healthy_bound{bl} {number(bound)}\n"
                out.append(("okr_kpi_healthy_bound", line))
    out.append(("okr_kpi_backfill", f"okr_kpi_backfill{kl} {'1' if backfilling else '0'}\n"))
    return out


class OkrRenderer:
    """Renders one snapshot; `render(now)` may be called from any thread."""

    def __init__(
        self, snapshot: ProgressSnapshot, checkpoint: Callable[[], None] = lambda: None
    ) -> None:
        """Measures progress (`measure_plan`) and renders what does not move with the clock;
        calls `checkpoint` between objectives so a concurrent scrape can go first."""
        self.snapshot = snapshot
        static: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}
        # What a scrape judges, grouped by pace rule (definitions with the same period, pace
        # and thresholds share one rule object): expected is computed once per rule.
        objectives = _Judged("okr_objective_expected_ratio")
        key_results = _Judged("okr_key_result_expected_ratio")
        for active in snapshot.plans:
            plan = active.plan
            cached = _labels_of(active)
            states = {
                pair: snapshot.states.get(kr_id, {})
                for pair, kr_id in active.key_result_ids.items()
            }
            checkpoint()
            results = measure_plan(plan, states)
            kpis = {p.key: p for p in snapshot.kpis.get(plan.shop, ())}
            for kpi in plan.kpis:
                if kpi.key in kpis:
                    for name, line in kpi_lines(plan.shop, kpi, kpis[kpi.key]):
                        static[name].append(line)
            for o in plan.objectives:
                checkpoint()
                r = results[o.key]
                o_labels: _ObjectiveLabels = cached[(o.key,)]
                ol = o_labels.labels
                static["okr_objective_info"].append(o_labels.static)
                static["okr_objective_progress_ratio"].append(
                    f"okr_objective_progress_ratio{ol} {number(r.progress)}\n"
                )
                static["okr_period_start_timestamp_seconds"].append(cached[("start", o.key)])
                static["okr_period_end_timestamp_seconds"].append(cached[("end", o.key)])
                objectives.add(o_labels.rule, r.progress, ol, o_labels.status)
                for kr, p in zip(o.key_results, r.key_results, strict=True):
                    k_labels: _KeyResultLabels = cached[(o.key, kr.key)]
                    kl = k_labels.labels
                    static["okr_key_result_value"].append(
                        f"okr_key_result_value{kl} {number(p.value)}\n"
                    )
                    backfilling = active.key_result_ids[o.key, kr.key] in snapshot.backfilling
                    if p.waiting:  # a baseline from data not measured yet: value and backfill
                        static["okr_key_result_backfill"].append(
                            f"okr_key_result_backfill{kl} {1 if backfilling else 0}\n"
                        )
                        continue
                    static["okr_key_result_baseline"].append(
                        f"okr_key_result_baseline{kl} {number(p.baseline)}\n"
                    )
                    static["okr_key_result_target"].append(
                        f"okr_key_result_target{kl} {number(p.target)}\n"
                    )
                    static["okr_key_result_progress_ratio"].append(
                        f"okr_key_result_progress_ratio{kl} {number(p.progress)}\n"
                    )
                    if p.last_event_at is not None:
                        static["okr_key_result_last_event_timestamp_seconds"].append(
                            f"okr_key_result_last_event_timestamp_seconds{kl} {number(p.last_event_at.timestamp())}\n"
                        )
                    key_results.add(k_labels.rule, p.progress, kl, k_labels.status)
                    static["okr_key_result_backfill"].append(
                        f"okr_key_result_backfill{kl} {1 if backfilling else 0}\n"
                    )
        planned = {active.plan.shop for active in snapshot.plans}
        for shop, n in sorted(snapshot.backfill_remaining.items()):
            if shop in planned:  # labels come from plans, never from the data
                static["okr_backfill_remaining_messages"].append(
                    f"okr_backfill_remaining_messages{labels(shop=shop)} {number(n)}\n"
                )
        for shop, event_type, n in bounded_shop_events(snapshot.plans, snapshot.shop_events):
            static["okr_shop_events_total"].append(
                f"okr_shop_events_total{labels(shop=shop, type=event_type)} {number(n)}\n"
            )
        objectives.seal()
        key_results.seal()
        self._objectives, self._key_results = objectives, key_results
        # Encoded once: a scrape sends these bytes as they are.
        self._static = {name: "".join(lines).encode() for name, lines in static.items()}
        self._headers = {
            name: f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n".encode()
            for name, kind, help_text in FAMILIES
        }

    def render(self, now: datetime | None = None) -> str:
        """Prometheus text exposition of every OKR metric, judged at `now` (default: now)."""
        return b"".join(self.render_chunks(now)).decode()

    def render_chunks(self, now: datetime | None = None) -> list[bytes]:
        """`render` as byte chunks to send one after the other (no 6 MB join per scrape)."""
        now_ts = (now or datetime.now(UTC)).timestamp()
        o_expected, o_status = self._objectives.judge(now_ts)
        k_expected, k_status = self._key_results.judge(now_ts)
        moving = {
            "okr_objective_expected_ratio": o_expected, "okr_objective_status": o_status,
            "okr_key_result_expected_ratio": k_expected, "okr_key_result_status": k_status,
        }  # fmt: skip
        chunks = []
        for name, _, _ in FAMILIES:
            chunks.append(self._headers[name])
            if name in moving:
                chunks += moving[name]
            else:
                chunks.append(self._static[name])
        return chunks


class _Judged:
    """Definitions judged at scrape time, grouped by their `PaceRule` (by identity: the
    domain caches one rule per definition, so equal definitions share it).

    Within a group, definitions are kept in ascending progress: at any instant their statuses
    then form at most one run per status (`PaceRule.judge_ascending`), and a scrape sends each
    run's pre-encoded status lines with one join, and every expected-ratio line of the group
    with one join (they share one value).
    """

    def __init__(self, expected_name: str) -> None:
        self._expected_name = expected_name
        self._adding: dict[int, tuple[PaceRule, list[tuple[float, str, dict[str, bytes]]]]] = {}
        self._groups: list[_Group] = []

    def add(self, rule: PaceRule, progress: float, labels: str, status: dict[str, bytes]) -> None:
        entry = self._adding.get(id(rule))
        if entry is None:
            entry = self._adding[id(rule)] = (rule, [])
        entry[1].append((progress, f"{self._expected_name}{labels}", status))

    def seal(self) -> None:
        """Sort each group by progress once all definitions were added."""
        for rule, members in self._adding.values():
            # NaN progress has no place in an order: such definitions are judged one by one.
            for nan in (m for m in members if m[0] != m[0]):
                self._groups.append(_Group(rule, [nan[0]], [nan[1].encode()], {
                    status: [block] for status, block in nan[2].items()
                }))  # fmt: skip
            ordered = sorted((m for m in members if m[0] == m[0]), key=lambda m: m[0])
            if ordered:
                self._groups.append(_Group(
                    rule, [m[0] for m in ordered], [m[1].encode() for m in ordered],
                    {status: [m[2][status] for m in ordered] for status in STATUSES},
                ))  # fmt: skip
        self._adding = {}

    def judge(self, now: float) -> tuple[list[bytes], list[bytes]]:
        """The expected-ratio lines and the status lines of every definition at `now`."""
        expected_chunks: list[bytes] = []
        status_chunks: list[bytes] = []
        for group in self._groups:
            expected, runs = group.rule.judge_ascending(group.progresses, now)
            value = f" {number(expected)}\n".encode()
            expected_chunks += (value.join(group.expected_prefixes), value)
            for status, first, after in runs:
                status_chunks.append(b"".join(group.status_lines[status][first:after]))
        return [b"".join(expected_chunks)], [b"".join(status_chunks)]


@dataclass(frozen=True)
class _Group:
    rule: PaceRule
    progresses: list[float]  # ascending
    expected_prefixes: list[bytes]  # `<name>{labels}`, in the same order
    status_lines: dict[str, list[bytes]]  # status -> each definition's lines for that status
