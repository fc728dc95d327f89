"""`okrflow apply FILE... [--dry-run]`: make the database match each shop's file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from okrflow.plans.diff import Change, diff_plan
from okrflow.plans.parse import ParsedPlan, PlanError, Problem, parse_plan, read_plan_file

if TYPE_CHECKING:  # the database stack loads only once the files are good (fast refusals)
    from sqlalchemy import Engine


@dataclass(frozen=True)
class ApplyResult:
    file: str
    shop: str
    changes: list[Change]
    revision_id: int | None  # None: nothing written (no change, or a dry run)


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
) -> list[ApplyResult]:
    """Apply files already checked by `parse_files`, each shop in its own transaction."""
    from okrflow.plans.stored import plan_write
    from okrflow.store.plans import load_stored_plan, lock_shop, write_plan

    results = []
    for path, text, parsed in parsed_files:
        shop = parsed.plan.shop
        with engine.begin() as conn:
            lock_shop(conn, shop)
            stored = load_stored_plan(conn, shop)
            changes = diff_plan(parsed.source, stored)
            revision = None
            if changes and not dry_run:
                revision = write_plan(conn, plan_write(parsed.source, stored, changes, text), now)
            elif dry_run:
                conn.rollback()
        results.append(ApplyResult(str(path), shop, changes, revision))
    return results
