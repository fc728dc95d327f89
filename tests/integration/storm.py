"""A rebalance storm: workers join, are stopped with SIGTERM, and are killed with SIGKILL (the
single-process worker, or one child of a two-process supervisor) at random moments of a
stream, on a seeded schedule; then one worker finishes the stream. Shared by the short CI test
(tests/integration/test_rebalance_storm.py) and `make stress-rebalance` (tests/perf).

What it checks, and returns for the caller to assert:
- no hang: every SIGTERM ends its worker within the stop bound (OKRFLOW_WORKER_STOP_SECONDS
  plus a grace), and the last worker applies the whole stream;
- batch sizes: the largest batch any worker logged (DEBUG "batch of N") is reported, for the
  caller to compare with OKRFLOW_BATCH_SIZE.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.streams import applied_messages

BATCH_LINE = re.compile(rb"batch of (\d+):")
CHILD_STARTED = re.compile(rb"worker process \d+ started \(pid (\d+)\)")
GRACE_SECONDS = 15.0


@dataclass
class StormReport:
    actions: list[str] = field(default_factory=list)
    stop_seconds: list[float] = field(default_factory=list)  # SIGTERM -> exit, each
    largest_batch: int = 0
    batches: int = 0
    exit_codes: list[int] = field(default_factory=list)


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    log: Path
    processes: int


def _start(env: dict[str, str], log: Path, processes: int) -> _Worker:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "okrflow", "worker", "--processes", str(processes)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return _Worker(proc, log, processes)


def _children(worker: _Worker) -> list[int]:
    pids = [int(p) for p in CHILD_STARTED.findall(worker.log.read_bytes())]
    return [p for p in pids if Path(f"/proc/{p}").exists()]


def run_storm(
    env: dict[str, str], database_url: str, total: int, *, rebalances: int, seed: int,
    work: Path, finish_seconds: float = 600,
) -> StormReport:  # fmt: skip
    """Run `rebalances` membership changes while the stream (already produced, `total`
    messages on env's topic) is consumed, then one worker to the end."""
    rng = random.Random(seed)
    env = {**env, "OKRFLOW_LOG_LEVEL": "DEBUG"}
    bound = float(env.get("OKRFLOW_WORKER_STOP_SECONDS", "8")) + GRACE_SECONDS
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    report = StormReport()
    running: list[_Worker] = []
    logs: list[Path] = []
    started = 0

    def join() -> None:
        nonlocal started
        log = work / f"worker-{started}.log"
        started += 1
        logs.append(log)
        running.append(_start(env, log, rng.choice((1, 1, 2))))

    def stop(worker: _Worker) -> None:
        running.remove(worker)
        began = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        try:
            report.exit_codes.append(worker.proc.wait(bound))
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()
            raise AssertionError(f"a worker did not stop within {bound:.0f} s of SIGTERM") from None
        report.stop_seconds.append(time.monotonic() - began)

    try:
        join()
        for _ in range(rebalances):  # bounded
            time.sleep(rng.uniform(0.5, 3.0))
            for worker in list(running):  # a supervisor that stopped by itself is a failure
                code = worker.proc.poll()
                if code is not None:
                    raise AssertionError(f"worker exited by itself with {code}: {worker.log}")
            choice = rng.random()
            if not running or (choice < 0.4 and len(running) < 3):
                join()
                report.actions.append("join")
            elif choice < 0.7:
                stop(rng.choice(running))
                report.actions.append("sigterm")
            else:
                victim = rng.choice(running)
                children = _children(victim) if victim.processes > 1 else []
                if children:  # the supervisor restarts it
                    os.kill(rng.choice(children), signal.SIGKILL)
                    report.actions.append("kill -9 a child")
                else:
                    running.remove(victim)
                    victim.proc.kill()
                    victim.proc.wait()
                    report.actions.append("kill -9")
        for worker in list(running):
            stop(worker)
        join()
        deadline = time.monotonic() + finish_seconds
        while applied_messages(database_url, topic) < total:  # bounded by the deadline
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{applied_messages(database_url, topic)} of {total} applied after the storm"
                )
            if running[0].proc.poll() is not None:
                raise AssertionError(f"the last worker exited: {running[0].log}")
            time.sleep(0.5)
        stop(running[0])
    finally:
        for worker in running:
            worker.proc.kill()
            worker.proc.wait()
    for log in logs:
        sizes = [int(n) for n in BATCH_LINE.findall(log.read_bytes())]
        report.batches += len(sizes)
        report.largest_batch = max([report.largest_batch, *sizes])
    return report
