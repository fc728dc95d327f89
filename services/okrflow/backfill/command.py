"""`okrflow backfill [--shop S] [--wait]`: run the pending backfills, with a progress bar.

Without `--wait` it runs every job it can take and reports the ones another runner holds.
With `--wait` it also waits for those, takes them over when their lease runs out, and returns
once every job of the selection is done (or has only a baseline window left to close).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import UTC, datetime

from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from sqlalchemy import Engine

from okrflow.backfill.progress import JobProgress, ProgressView
from okrflow.backfill.runner import Runner
from okrflow.exitcodes import ExitCode
from okrflow.failures import cannot_read_from_kafka
from okrflow.ingest.offsets import log_bounds
from okrflow.ops.startup import wait_for_kafka
from okrflow.plans.freeze import freeze_due_baselines
from okrflow.plans.lookups import no_such_shop
from okrflow.readonly import open_for_reading
from okrflow.settings import Settings
from okrflow.store.backfill import UNFINISHED, JobRow, job_measures, list_jobs, read_partitions
from okrflow.store.baselines import scanned_and_applied
from okrflow.store.engine import make_engine
from okrflow.store.lookups import planned_shops

logger = logging.getLogger(__name__)

_POLL_SECONDS = 1.0
_LOG_EVERY_SECONDS = 10.0
_SAY_WAITING_SECONDS = 30.0


class BarView(ProgressView):
    """A rich progress bar per job on a terminal."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[counted]} counted"), console=console, transient=False,
        )  # fmt: skip
        self._tasks: dict[int, TaskID] = {}

    def started(self, job: JobProgress) -> None:
        if not self._tasks:
            self._progress.start()
        self._tasks[job.job_id] = self._progress.add_task(
            f"job {job.job_id} ({job.shop})", total=max(job.total, 1), counted=0
        )

    def advanced(self, job: JobProgress) -> None:
        self._progress.update(
            self._tasks[job.job_id], completed=job.scanned, counted=f"{job.counted:,}"
        )

    def finished(self, job: JobProgress) -> None:
        task = self._tasks.get(job.job_id)
        if task is not None:
            self._progress.update(task, completed=max(job.total, 1))

    def stop(self) -> None:
        if self._tasks:
            self._progress.stop()


class LogView(ProgressView):
    """One log line per job every 10 seconds, without a terminal."""

    def __init__(self) -> None:
        self._last = 0.0

    def started(self, job: JobProgress) -> None:
        logger.info("backfill job %d (%s): %d message(s) to read", job.job_id, job.shop, job.total)
        self._last = time.monotonic()

    def advanced(self, job: JobProgress) -> None:
        if time.monotonic() - self._last >= _LOG_EVERY_SECONDS:
            self._last = time.monotonic()
            logger.info(
                "backfill job %d (%s): %d of %d read, %d counted",
                job.job_id, job.shop, job.scanned, job.total, job.counted,
            )  # fmt: skip


def run_backfill(settings: Settings, shop: str | None, wait: bool) -> int:
    """The command; returns the exit code (raises OperatorError for operator errors)."""
    # Exists, schema current (else 5 / 8): a backfill only follows an apply, never creates one.
    open_for_reading(settings.database_url, "nothing to backfill: apply a plan first").dispose()
    engine = make_engine(settings.database_url, writer=True)
    try:
        if shop is not None:
            with engine.connect() as conn:
                if shop not in planned_shops(conn):
                    raise no_such_shop(conn, shop)
        console = Console(stderr=True)
        view: ProgressView = BarView(console) if console.is_terminal else LogView()
        try:
            outcomes = asyncio.run(_run(Runner(settings, engine, view), shop, wait))
        except (KafkaError, OSError) as exc:
            raise cannot_read_from_kafka(settings, exc) from None
        finally:
            if isinstance(view, BarView):
                view.stop()
        return _report(engine, shop, outcomes, wait)
    finally:
        engine.dispose()


async def _run(runner: Runner, shop: str | None, wait: bool) -> list[JobProgress]:
    """Take and run jobs until none is left that this runner can take (`wait`: until every
    job of the selection is finished or only waits for its baseline window)."""
    outcomes: list[JobProgress] = []
    settings = runner.settings
    said = time.monotonic() - _SAY_WAITING_SECONDS
    if _unfinished(runner, shop):  # Kafka is needed: wait for it like the worker (else exit 6)
        await wait_for_kafka(settings, lambda: log_bounds(settings, settings.events_topic))
    while True:
        jobs = _unfinished(runner, shop)
        ran = False
        for job in jobs:
            if _scanned(runner, job):
                continue  # scanned: only its baselines are left to freeze
            if runner.take(job.id):
                outcomes.append(await runner.run(job))
                ran = True
        _freeze(runner)
        if not wait:
            return outcomes
        # Left to wait for: jobs to scan, and scanned ones whose freeze offsets the live
        # worker has not reached yet. A scanned job the worker has passed whose baseline is
        # still not frozen waits for its window to end: no point waiting here for that.
        left = _unfinished(runner, shop)
        scanned = [j.id for j in left if _scanned(runner, j)]
        with runner.engine.connect() as conn:
            passed = scanned_and_applied(conn, scanned, settings.events_topic)
        waiting = [j for j in left if j.id not in passed]
        if not waiting:
            return outcomes
        if not ran:
            said = _say_what_waits(waiting, set(scanned), said)
            await asyncio.sleep(_POLL_SECONDS)


def _say_what_waits(waiting: list[JobRow], scanned: set[int], said: float) -> float:
    """One log line every 30 s while `--wait` waits: which job, and for what."""
    if time.monotonic() - said < _SAY_WAITING_SECONDS:
        return said
    for job in waiting:
        if job.id in scanned:
            why = "the workers to count past its scan (are they running?)"
        else:
            why = f"its runner {job.owner} (taken over when its lease runs out)"
        logger.info("backfill --wait: job %d (%s) waits for %s", job.id, job.shop, why)
    return time.monotonic()


def _freeze(runner: Runner) -> None:
    """Freeze the baselines that are due now (also the worker's and apply's job)."""
    now = datetime.now(UTC)
    for line in freeze_due_baselines(runner.engine, runner.settings.events_topic, now):
        print(line, file=sys.stdout)


def _unfinished(runner: Runner, shop: str | None) -> list[JobRow]:
    with runner.engine.connect() as conn:
        return list_jobs(conn, shop, UNFINISHED)


def _scanned(runner: Runner, job: JobRow) -> bool:
    """Scanned to its cut and finished, but a key result waits for its baseline window."""
    with runner.engine.connect() as conn:
        scans = read_partitions(conn, job.id)
    return (
        job.owner is None
        and job.state == "running"
        and bool(scans)
        and all(s.freeze_offset is not None for s in scans.values())
    )


def _report(engine: Engine, shop: str | None, outcomes: list[JobProgress], wait: bool) -> int:
    """One line per job run, then what is left: jobs held elsewhere, waiting for a baseline
    window, or failed (exit 1)."""
    out = sys.stdout
    for job in outcomes:
        line = (
            f"job {job.job_id} ({job.shop}): {job.outcome}, {job.counted:,} event(s) counted, "
            f"{job.skipped:,} skipped"
        )
        if job.lost:
            line += f", {job.lost:,} message(s) lost to retention before they were read"
        print(line, file=out)
    with engine.connect() as conn:
        left = list_jobs(conn, shop, UNFINISHED)
        # A failed job whose key results were retired since matters no more.
        failed = [j for j in list_jobs(conn, shop, ("failed",)) if job_measures(conn, j.id)]
    for row in left:
        if row.owner is not None:
            print(f"job {row.id} ({row.shop}): held by {row.owner}", file=out)
        else:
            print(
                f"job {row.id} ({row.shop}): scanned; its baselines are frozen once their "
                "window has ended and the workers have counted past the scan",
                file=out,
            )
    if not outcomes and not left:
        print("no backfill to run", file=out)
    for row in failed:
        print(
            f"okrflow backfill: job {row.id} ({row.shop}) failed: {row.error}; its key "
            "results stay partial",
            file=sys.stderr,
        )
    return ExitCode.FAILED if failed else ExitCode.OK
