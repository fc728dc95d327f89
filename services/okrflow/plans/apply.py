"""`okrflow apply FILE...`: make the database match each shop's file.

Like Terraform's plan and apply: `preview_parsed` reads what each file would change (nothing
written, no lock held, so a person may take their time to confirm it), then `apply_parsed`
writes it, each shop in its own transaction, refusing a shop whose changes are no longer the
ones previewed (another apply ran in between)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from okrflow.domain.periods import local_midnight
from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.plans.diff import Change, diff_plan
from okrflow.plans.freeze import freeze_due_baselines
from okrflow.plans.parse import ParsedPlan, PlanError, Problem, parse_plan, read_plan_file
from okrflow.plans.stored import plan_write
from okrflow.plans.vocabulary import plan_warnings
from okrflow.settings import load_settings
from okrflow.store.backfill_jobs import create_backfill_job
from okrflow.store.baselines import mark_waiting
from okrflow.store.lookups import seen_event_types
from okrflow.store.plan_clock import PlanClockBusy, advance_plan_clock, take_plan_clock
from okrflow.store.plans import StoredPlan, load_stored_plan, lock_shop, write_plan

if TYPE_CHECKING:  # the database stack loads only once the files are good (fast refusals)
    from sqlalchemy import Engine

    from okrflow.store.plans import StoredPlan


@dataclass(frozen=True)
class ApplyResult:
    file: str
    shop: str
    changes: list[Change]
    revision_id: int | None  # None: nothing written (no change, a dry run, or stale)
    stale: bool = False  # the changes differ from those previewed: nothing written
    # New or re-metered key results whose period had begun: `okrflow backfill` counts their
    # events from before this apply (one job, its cut recorded with the activation).
    to_backfill: int = 0
    kpis_to_backfill: int = 0  # new or re-metered KPIs: their windows reach into the past


@dataclass(frozen=True)
class ShopPreview:
    """What applying one file would change, and the warnings about its names."""

    file: str
    shop: str
    changes: list[Change]
    warnings: list[Problem]

    @property
    def retirements(self) -> list[Change]:
        return [c for c in self.changes if c.action == "retired"]


def preview_parsed(
    engine: Engine | None, parsed_files: list[tuple[Path, str, ParsedPlan]]
) -> list[ShopPreview]:
    """Each file's changes against the plan in force, read only; with no database (None),
    against an empty plan (everything is added) and warning with built-in types only."""

    previews = []
    for path, _text, parsed in parsed_files:
        shop = parsed.plan.shop
        stored, seen = StoredPlan(), None
        if engine is not None:
            with engine.connect() as conn:
                stored, seen = load_stored_plan(conn, shop), seen_event_types(conn, shop)
        changes = diff_plan(parsed.source, stored)
        previews.append(ShopPreview(str(path), shop, changes, plan_warnings(parsed, seen)))
    return previews


def parse_files(paths: list[Path]) -> list[tuple[Path, str, ParsedPlan]]:
    """Parse every file; raises PlanError with the problems of all files together."""
    problems: list[Problem] = []
    parsed: list[tuple[Path, str, ParsedPlan]] = []
    shop_file: dict[str, Path] = {}
    for path in paths:
        try:
            text = read_plan_file(path)
            plan = parse_plan(text, str(path))
        except PlanError as exc:
            problems.extend(exc.problems)
            continue
        shop = plan.plan.shop
        if shop in shop_file:
            problems.append(
                Problem(
                    str(path),
                    1,
                    "shop",
                    f"{shop!r} is also planned in {shop_file[shop]}: one file holds a shop's whole plan",
                )
            )
        shop_file[shop] = path
        parsed.append((path, text, plan))
    if problems:
        raise PlanError(problems)
    return parsed


def apply_files(
    engine: Engine, paths: list[Path], now: datetime, dry_run: bool = False
) -> list[ApplyResult]:
    """Validate all files first (raises PlanError, writing nothing), then apply each shop's
    plan in its own transaction. Applying the same files again changes nothing."""
    return apply_parsed(engine, parse_files(paths), now, dry_run)


def apply_parsed(
    engine: Engine,
    parsed_files: list[tuple[Path, str, ParsedPlan]],
    now: datetime,
    dry_run: bool = False,
    expected: Mapping[str, list[Change]] | None = None,
    clock_timeout_seconds: float = 30,
    events_topic: str | None = None,
) -> list[ApplyResult]:
    """Apply files already checked by `parse_files`, each shop in its own transaction.

    With `expected` (shop -> the changes previewed), a shop whose changes differ is not
    written and its result is `stale`. Each write holds the plan clock (waiting up to
    `clock_timeout_seconds` for batch transactions in flight, then OperatorError): no batch
    counts across the apply with the older plan. New or re-metered key results whose period
    has begun get a backfill job whose cut is the database's applied offsets of
    `events_topic` (default: the settings'), in the same transaction (none while nothing of
    the topic was applied: the live worker counts all of it)."""

    results = []
    for path, text, parsed in parsed_files:
        shop = parsed.plan.shop
        try:
            with engine.begin() as conn:
                lock_shop(conn, shop)
                if not dry_run:  # waits for the batch transactions in flight (plan clock)
                    take_plan_clock(conn, clock_timeout_seconds)
                stored = load_stored_plan(conn, shop)
                changes = diff_plan(parsed.source, stored)
                revision, to_backfill, kpis_to_backfill = None, 0, 0
                stale = expected is not None and expected.get(shop) != changes
                if changes and not dry_run and not stale:
                    write = plan_write(parsed.source, stored, changes, text)
                    revision = write_plan(conn, write, now)
                    after = load_stored_plan(conn, shop)
                    begun = _begun_key_results(parsed, stored, after, now)
                    measured = _measured_from_data(parsed, stored, after)
                    mark_waiting(conn, measured)  # their baseline is frozen later
                    begun = sorted({*begun, *measured})  # a job even before the period
                    new_kpis = _new_kpis(stored, after)
                    if begun or new_kpis:
                        topic = events_topic or load_settings().events_topic
                        measures = begun + new_kpis
                        if create_backfill_job(conn, shop, revision, measures, topic, now):
                            to_backfill, kpis_to_backfill = len(begun), len(new_kpis)
                        elif measured:  # nothing applied yet: B waits for the log's end
                            create_backfill_job(
                                conn, shop, revision, measured, topic, now, without_cut=True
                            )
                            to_backfill = len(measured)
                    advance_plan_clock(conn, revision)
                else:
                    conn.rollback()
        except PlanClockBusy:
            raise OperatorError(
                ExitCode.FAILED,
                f"{shop}: workers are mid-batch (the plan clock stayed busy for "
                f"{clock_timeout_seconds:g} s); nothing applied for this shop: run apply again",
            ) from None
        results.append(
            ApplyResult(str(path), shop, changes, revision, stale, to_backfill, kpis_to_backfill)
        )
    if not dry_run and any(r.revision_id is not None for r in results):
        # Baselines whose window is over and whose events are all counted (their job's
        # scan recorded where the log ended, and the live worker has passed it).
        freeze_due_baselines(engine, events_topic or load_settings().events_topic, now)
    return results


def _measured_from_data(parsed: ParsedPlan, before: StoredPlan, after: StoredPlan) -> list[int]:
    """The key result rows the apply just inserted whose baseline is measured from data
    (`baseline: {from: ...}`): they wait for it, and their backfill measures it whenever
    their period starts."""
    old_ids = {kr.id for kr in before.key_results.values()}
    wanted = {
        (o.key, kr.key)
        for o in parsed.plan.objectives
        for kr in o.key_results
        if kr.baseline_from is not None
    }
    return sorted(
        kr.id for pair, kr in after.key_results.items() if kr.id not in old_ids and pair in wanted
    )


def _new_kpis(before: StoredPlan, after: StoredPlan) -> list[int]:
    """The KPI rows the apply just inserted (new, or re-metered): every one needs a backfill,
    its rolling window reaching into the days before the apply."""
    old_ids = {kpi.id for kpi in before.kpis.values()}
    return sorted(kpi.id for kpi in after.kpis.values() if kpi.id not in old_ids)


def _begun_key_results(
    parsed: ParsedPlan, before: StoredPlan, after: StoredPlan, now: datetime
) -> list[int]:
    """The key result rows the apply just inserted (new, or re-metered) whose objective's
    period began before `now` (its first local midnight): events before the apply count for
    them only through a backfill. A period starting later needs none: every event from its
    start on arrives after the apply."""

    old_ids = {kr.id for kr in before.key_results.values()}
    started = {
        o.key
        for o in parsed.plan.objectives
        if local_midnight(o.period.start, parsed.plan.timezone) < now
    }
    return sorted(
        kr.id
        for (objective, _key), kr in after.key_results.items()
        if kr.id not in old_ids and objective in started
    )
