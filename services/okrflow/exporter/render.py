"""The OKR metrics of docs/metrics.md as Prometheus text, from a snapshot, at scrape time.

Values and progress depend only on what was counted, so they are computed (domain formulas)
and rendered once per snapshot, off the scrape path. A scrape computes what moves with the
clock, expected pace and status (each definition's `PaceRule`, the rule the domain's
`judge_key_result` / `judge_objective` apply), and formats those. Forecasts are made in the
refresh too, as of its instant (`forecasts.py`), never at a scrape.
Building prometheus_client metric families for 1,000 objectives x 5 key results (~70,000
samples) at every scrape took well over the 50 ms a scrape may take (measured by
tests/perf/scrape_bench.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from okrflow.domain.kpis import KpiProgress
from okrflow.domain.model import KeyResult, Kpi, Objective, Plan, metric_parts
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import KeyResultMeasure, ObjectiveMeasure, measure_plan
from okrflow.events.types import BUILT_IN
from okrflow.exporter.exposition import FAMILIES, family_headers, labels, number
from okrflow.exporter.forecasts import ForecastBook, PlanInputs
from okrflow.exporter.judging import Judged
from okrflow.exporter.plan_labels import PlanLabels, labels_of
from okrflow.exporter.snapshot import ProgressSnapshot

# `okr_shop_events_total` of a planned shop sums every type that is neither built in nor
# named by its plan under this one.
OTHER_TYPE = "other"


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
        self,
        snapshot: ProgressSnapshot,
        checkpoint: Callable[[], None] = lambda: None,
        forecasts: ForecastBook | None = None,
        started: float | None = None,
    ) -> None:
        """Measures progress (`measure_plan`) and renders what does not move with the clock,
        and with a book of `forecasts` the forecasts due as of the snapshot's `taken_at`,
        within the book's budget from `started` (the forecast families stay empty without);
        calls `checkpoint` between objectives and objective trees so a concurrent scrape can
        go first."""
        self.snapshot = snapshot
        lines = _StaticLines()
        for active in snapshot.plans:
            lines.add_plan(snapshot, active, checkpoint)
        lines.add_shops(snapshot)
        lines.objectives.seal()
        lines.key_results.seal()
        self._objectives, self._key_results = lines.objectives, lines.key_results
        # Encoded once: a scrape sends these bytes as they are.
        self._static = {name: "".join(text).encode() for name, text in lines.static.items()}
        self._headers = family_headers()
        self._forecasts = forecasts
        self._forecast_inputs = tuple(lines.forecast_inputs)
        if forecasts is not None:
            forecasts.update(
                self._forecast_inputs, snapshot.taken_at, snapshot.taken_at, checkpoint, started
            )
            self._static.update(forecasts.lines())

    def reforecast(
        self, now: float, checkpoint: Callable[[], None] = lambda: None,
        started: float | None = None,
    ) -> OkrRenderer:  # fmt: skip
        """A renderer of the same snapshot with the forecasts due at `now` computed again
        (`ForecastBook`, its budget from `started`), or this one when none was due. This one
        is left as it is: a scrape that holds it sends it whole."""
        if self._forecasts is None or not self._forecasts.update(
            self._forecast_inputs, self.snapshot.taken_at, now, checkpoint, started
        ):
            return self
        fresh = copy.copy(self)
        fresh._static = {**self._static, **self._forecasts.lines()}
        return fresh

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


@dataclass
class _StaticLines:
    """What rendering one snapshot gathers: per family, the sample lines that do not move
    with the clock, and what a scrape judges, grouped by pace rule (definitions with the same
    period, pace and thresholds share one rule object: expected is computed once per rule)."""

    static: dict[str, list[str]] = field(
        default_factory=lambda: {name: [] for name, _, _ in FAMILIES}
    )
    objectives: Judged = field(default_factory=lambda: Judged("okr_objective_expected_ratio"))
    key_results: Judged = field(default_factory=lambda: Judged("okr_key_result_expected_ratio"))
    forecast_inputs: list[PlanInputs] = field(default_factory=list)

    def add_plan(
        self, snapshot: ProgressSnapshot, active: ActivePlan, checkpoint: Callable[[], None]
    ) -> None:
        plan = active.plan
        cached = labels_of(active)
        states = {
            pair: snapshot.states.get(kr_id, {}) for pair, kr_id in active.key_result_ids.items()
        }
        checkpoint()
        results = measure_plan(plan, states)
        self.forecast_inputs.append(PlanInputs(plan, cached, results, states))
        kpis = {p.key: p for p in snapshot.kpis.get(plan.shop, ())}
        for kpi in plan.kpis:
            if kpi.key in kpis:
                for name, line in kpi_lines(plan.shop, kpi, kpis[kpi.key]):
                    self.static[name].append(line)
        for o in plan.objectives:
            checkpoint()
            self.add_objective(snapshot, active, cached, o, results[o.key])

    def add_objective(
        self,
        snapshot: ProgressSnapshot,
        active: ActivePlan,
        cached: PlanLabels,
        o: Objective,
        r: ObjectiveMeasure,
    ) -> None:
        static = self.static
        o_labels = cached.objectives[o.key]
        ol = o_labels.labels
        static["okr_objective_info"].append(o_labels.static)
        static["okr_objective_progress_ratio"].append(
            f"okr_objective_progress_ratio{ol} {number(r.progress)}\n"
        )
        static["okr_period_start_timestamp_seconds"].append(o_labels.period_start)
        static["okr_period_end_timestamp_seconds"].append(o_labels.period_end)
        self.objectives.add(o_labels.rule, r.progress, ol, o_labels.status)
        for kr, p in zip(o.key_results, r.key_results, strict=True):
            backfilling = active.key_result_ids[o.key, kr.key] in snapshot.backfilling
            self.add_key_result(cached, o, kr, p, backfilling)

    def add_key_result(
        self,
        cached: PlanLabels,
        o: Objective,
        kr: KeyResult,
        p: KeyResultMeasure,
        backfilling: bool,
    ) -> None:
        static = self.static
        k_labels = cached.key_results[o.key, kr.key]
        kl = k_labels.labels
        static["okr_key_result_value"].append(f"okr_key_result_value{kl} {number(p.value)}\n")
        if p.waiting:  # a baseline from data not measured yet: value and backfill only
            static["okr_key_result_backfill"].append(
                f"okr_key_result_backfill{kl} {1 if backfilling else 0}\n"
            )
            return
        static["okr_key_result_baseline"].append(
            f"okr_key_result_baseline{kl} {number(p.baseline)}\n"
        )
        static["okr_key_result_target"].append(f"okr_key_result_target{kl} {number(p.target)}\n")
        static["okr_key_result_progress_ratio"].append(
            f"okr_key_result_progress_ratio{kl} {number(p.progress)}\n"
        )
        if p.last_event_at is not None:
            static["okr_key_result_last_event_timestamp_seconds"].append(
                f"okr_key_result_last_event_timestamp_seconds{kl} {number(p.last_event_at.timestamp())}\n"
            )
        self.key_results.add(k_labels.rule, p.progress, kl, k_labels.status)
        static["okr_key_result_backfill"].append(
            f"okr_key_result_backfill{kl} {1 if backfilling else 0}\n"
        )

    def add_shops(self, snapshot: ProgressSnapshot) -> None:
        """The per-shop families: backfill remaining and the event totals."""
        planned = {active.plan.shop for active in snapshot.plans}
        for shop, n in sorted(snapshot.backfill_remaining.items()):
            if shop in planned:  # labels come from plans, never from the data
                self.static["okr_backfill_remaining_messages"].append(
                    f"okr_backfill_remaining_messages{labels(shop=shop)} {number(n)}\n"
                )
        for shop, event_type, n in bounded_shop_events(snapshot.plans, snapshot.shop_events):
            self.static["okr_shop_events_total"].append(
                f"okr_shop_events_total{labels(shop=shop, type=event_type)} {number(n)}\n"
            )
