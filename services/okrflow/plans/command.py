"""`okrflow apply` and `okrflow validate`: what they print, ask and exit with.

Exit codes (docs/cli.md, docs/plan-files.md): 0 done (or nothing to change); 2 a file is refused,
or a retirement is not confirmed; with `--dry-run --detailed-exitcode`, 4 when any file would
change something. Warnings never change the exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.plans.apply import ApplyResult, ShopPreview, apply_parsed, parse_files, preview_parsed
from okrflow.plans.parse import ParsedPlan, PlanError, Problem
from okrflow.plans.retention_warnings import retention_warnings
from okrflow.plans.vocabulary import plan_warnings

Parsed = list[tuple[Path, str, ParsedPlan]]
Ask = Callable[[str], bool]


def checked_files(files: list[str], verb: str = "") -> Parsed:
    """Every file parsed and checked, before any database is touched; OperatorError (USAGE)
    after printing every problem, one a line."""
    try:
        return parse_files([Path(f) for f in files])
    except PlanError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        nothing = f"; nothing was {verb}" if verb else ""
        raise OperatorError(ExitCode.USAGE, f"{len(exc.problems)} problem(s){nothing}") from None


def run_validate(files: list[str], retention: timedelta | None = None) -> int:
    """Check files offline: problems exit 2; warnings (built-in types only; periods older
    than the events topic's `retention`, None: unlimited) exit 0."""
    parsed = checked_files(files)
    now = datetime.now(UTC)
    for path, _text, plan in parsed:
        warnings = sorted(plan_warnings(plan) + retention_warnings(plan, retention, now))
        for warning in warnings:
            print(warning, file=sys.stderr)
        objectives = plan.plan.objectives
        key_results = sum(len(o.key_results) for o in objectives)
        noted = f", {len(warnings)} warning(s)" if warnings else ""
        kpis = f", {len(plan.plan.kpis)} KPI(s)" if plan.plan.kpis else ""
        print(f"{path}: shop {plan.plan.shop}: valid, {len(objectives)} objective(s), "
              f"{key_results} key result(s){kpis}{noted}")  # fmt: skip
    return ExitCode.OK


def print_preview(previews: list[ShopPreview], verb: str, out: TextIO) -> None:
    for preview in previews:
        if not preview.changes:
            print(f"{preview.file}: shop {preview.shop}: no changes", file=out)
            continue
        print(f"{preview.file}: shop {preview.shop}: {len(preview.changes)} change(s), {verb}",
              file=out)  # fmt: skip
        for change in preview.changes:
            print(f"  {change}", file=out)


def _print_warnings(
    previews: list[ShopPreview], parsed: Parsed, retention: timedelta | None
) -> None:
    now = datetime.now(UTC)
    for preview, (_path, _text, plan) in zip(previews, parsed, strict=True):
        warnings: list[Problem] = preview.warnings + retention_warnings(plan, retention, now)
        for warning in sorted(warnings):
            print(warning, file=sys.stderr)


def run_dry_run(
    database_url: str,
    files: list[str],
    detailed_exitcode: bool,
    retention: timedelta | None = None,
) -> int:
    # lazy: Alembic (through readonly) only when a dry run reads a database; `okrflow validate` opens none
    from okrflow.readonly import open_if_there

    parsed = checked_files(files, "compared")
    engine, missing = open_if_there(database_url)
    if engine is None:
        print(f"okrflow apply --dry-run: {missing}: comparing with an empty plan "
              "(everything is added); nothing was created", file=sys.stderr)  # fmt: skip
    previews = preview_parsed(engine, parsed)
    _print_warnings(previews, parsed, retention)
    print_preview(previews, "would change", sys.stdout)
    pending = any(p.changes for p in previews)
    return ExitCode.CHANGES_PENDING if pending and detailed_exitcode else ExitCode.OK


def retired_names(previews: list[ShopPreview]) -> str:
    return ", ".join(
        f"{c.what} (shop {p.shop})" if len(previews) > 1 else c.what
        for p in previews for c in p.retirements
    )  # fmt: skip


def ask_on_terminal(question: str) -> bool:
    """y/yes on the terminal; anything else (or end of input) is no."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def run_apply(
    database_url: str,
    files: list[str],
    yes: bool,
    ask: Ask | None,
    retention: timedelta | None = None,
    events_topic: str | None = None,
) -> int:
    """Apply: preview, confirm retirements (`ask` is None without a terminal: refused unless
    `yes`), then write what was previewed. Warnings include periods older than `retention`;
    backfill cuts are taken on `events_topic`."""
    # lazy: Alembic (through the schema check) only for apply; `okrflow validate` opens no database
    from okrflow.store.engine import make_engine
    from okrflow.store.schema import ensure_schema

    parsed = checked_files(files, "applied")
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    previews = preview_parsed(engine, parsed)
    _print_warnings(previews, parsed, retention)
    retiring = sum(len(p.retirements) for p in previews)
    shown = False
    if retiring and not yes:
        if ask is None:
            raise OperatorError(
                ExitCode.USAGE,
                f"would retire {retired_names(previews)}; pass --yes to retire "
                f"(no terminal to ask on); nothing was applied",
            )
        print_preview(previews, "to apply", sys.stdout)
        shown = True
        sys.stdout.flush()
        if not ask(f"Retire {retiring} objective(s)/key result(s) listed above?"):
            raise OperatorError(ExitCode.USAGE, "not confirmed; nothing was applied")
    results = apply_parsed(
        engine, parsed, datetime.now(UTC), expected={p.shop: p.changes for p in previews},
        events_topic=events_topic,
    )  # fmt: skip
    _print_results(results, shown)
    stale = [r.shop for r in results if r.stale]
    if stale:
        raise OperatorError(
            ExitCode.FAILED,
            f"the plan in force of shop(s) {', '.join(stale)} changed while this apply ran "
            "(another apply?): not applied there; run it again",
        )
    return ExitCode.OK


def _print_results(results: list[ApplyResult], changes_shown: bool) -> None:
    for result in results:
        if result.stale:
            continue
        if not result.changes:
            print(f"{result.file}: shop {result.shop}: no changes")
            continue
        print(f"{result.file}: shop {result.shop}: {len(result.changes)} change(s), "
              f"applied as revision {result.revision_id}")  # fmt: skip
        if not changes_shown:
            for change in result.changes:
                print(f"  {change}")
        if result.to_backfill:
            print(f"  {result.to_backfill} key result(s) start mid-period: they count events "
                  "from now on; run `okrflow backfill` to count the events before this apply "
                  "(`okrflow progress` marks them until then)")  # fmt: skip
        if result.kpis_to_backfill:
            print(f"  {result.kpis_to_backfill} KPI(s) new or re-metered: run `okrflow "
                  "backfill` to count their windows' events from before this apply")  # fmt: skip
