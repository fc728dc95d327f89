"""The worker's CPU stages, each timed on its own in this process: µs per event.

The bench's events (tests/perf/bench.py: its mix, shops and plan) in batches of 20,000, with
the worker's garbage-collector settings; each stage is timed on 5 batches and the fastest is
kept (the machine is shared: the fastest run is the least disturbed). `json.loads` of the same
values is the yardstick. What each stage is: decode_batch (okrflow.counting.decode: msgspec and
the event checks), first_occurrences and totals (okrflow.counting.totals), series_deltas
(okrflow.counting.series), precount (all three), and the helper's share of a batch: packing it
(in the worker) and counting it from the packed bytes (in the helper; okrflow.ingest.helper_process).

Usage: python -m tests.perf.stages
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from typing import Any

from okrflow.counting.decode import Message, decode_batch
from okrflow.counting.matching import MatchIndex
from okrflow.counting.series import series_deltas
from okrflow.counting.totals import first_occurrences, totals_by_shop_type
from okrflow.domain.plans import ActivePlan
from okrflow.gctuning import collect_less_often
from okrflow.ingest.helper_process import count_packed
from okrflow.ingest.helper_protocol import Packed
from okrflow.ingest.plan_cache import LoadedPlans
from okrflow.ingest.transaction import precount
from okrflow.plans.parse import parse_plan
from tests.perf.bench import PLAN, SHOPS, make_events

BATCH = 20_000
RUNS = 5


def plans() -> list[ActivePlan]:
    active, next_id = [], 1
    for shop in SHOPS:
        plan = parse_plan(PLAN.format(shop=shop), f"{shop}.yaml").plan
        ids = {}
        for objective in plan.objectives:
            for kr in objective.key_results:
                ids[objective.key, kr.key] = next_id
                next_id += 1
        active.append(ActivePlan(plan, ids))
    return active


def main() -> int:
    events = make_events(BATCH * RUNS)
    batches = [
        [Message(i % 6, i, v, None, k) for i, (k, v) in enumerate(events[b * BATCH : (b + 1) * BATCH])]
        for b in range(RUNS)
    ]  # fmt: skip
    active = plans()
    loaded = LoadedPlans(1, MatchIndex(active), active)
    collect_less_often()
    decoded = [decode_batch("t", b, 1 << 20) for b in batches]
    unique = [first_occurrences(d.events) for d in decoded]
    packed = [Packed.of(b) for b in batches]
    count_packed("t", packed[0], 1 << 20, 1, active)  # the helper's plans, once

    def fastest(stage: Callable[[int], Any]) -> float:
        times = []
        for b in range(RUNS):
            started = time.perf_counter()
            stage(b)
            times.append(time.perf_counter() - started)
            gc.collect(0)
        return min(times) / BATCH * 1e6

    stages: list[tuple[str, Callable[[int], Any]]] = [
        ("json.loads (yardstick)", lambda b: [json.loads(r.value) for r in batches[b]]),
        ("decode_batch", lambda b: decode_batch("t", batches[b], 1 << 20)),
        ("first_occurrences", lambda b: first_occurrences(decoded[b].events)),
        ("series_deltas", lambda b: series_deltas(unique[b], loaded.index)),
        ("totals_by_shop_type", lambda b: totals_by_shop_type(unique[b], loaded.index.planned_types)),
        ("precount (the three above)", lambda b: precount(decoded[b], loaded)),
        ("decode + precount", lambda b: precount(decode_batch("t", batches[b], 1 << 20), loaded)),
        ("Packed.of (worker)", lambda b: Packed.of(batches[b])),
        ("count_packed (helper)", lambda b: count_packed("t", packed[b], 1 << 20, 1, None)),
    ]  # fmt: skip
    print(f"{'stage':32s} µs/event  (fastest of {RUNS} batches of {BATCH:,})")
    for name, stage in stages:
        print(f"{name:32s} {fastest(stage):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
