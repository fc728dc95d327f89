"""`okrflow worker --processes N`: N worker processes in one consumer group, one supervisor.

Each process is a whole worker (its own faust app, consumer, database engines and, with a
metrics port, its own /metrics, /healthz and /readyz on the port + its index); the group
spreads the partitions over them, so one machine's cores share the stream. Process i keeps
faust's data in <worker_data_dir>/process-<i>: two faust apps never share a data folder.

The supervisor:
- checks the database and Kafka once before starting anything, so a wrong URL or an old
  schema is one line, not N;
- restarts a process that dies, after 1 s, doubling to 30 s for one that keeps dying, the
  count reset once it has been up a minute (the same backoff as systemd's or Kubernetes');
- stops when a process exits with an operator error (exit codes 2, 5, 6, 7, 8, 9: a retry
  cannot fix a bad setting, a busy port or an old schema) or stopped on purpose to protect the
  data (3: the others would only meet the same invalid messages or offsets): it drains the
  others and exits with that code and that process's one line;
- on SIGTERM or SIGINT sends SIGTERM to every process, waits for each to commit its batch
  and exit, and exits 0.

Written here rather than with a process manager (supervisord, circus): those are daemons of
their own with their own configuration, and the signals, exit codes and one-line errors are
okrflow's. The restart delay is one line; tenacity retries calls, not processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from types import FrameType

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.failures import known_failure
from okrflow.ops.lifeline import die_with_parent
from okrflow.settings import Settings

logger = logging.getLogger(__name__)

# Exit codes of a process that a restart cannot fix: the supervisor stops with them.
OPERATOR_CODES = frozenset(
    {
        ExitCode.USAGE,
        ExitCode.STOPPED_TO_PROTECT_DATA,
        ExitCode.DATABASE_UNREACHABLE,
        ExitCode.KAFKA_UNREACHABLE,
        ExitCode.PORT_IN_USE,
        ExitCode.SCHEMA_MISMATCH,
        ExitCode.KAFKA_LAYOUT,
    }
)
FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
STEADY_AFTER_SECONDS = 60.0  # up this long: its next death starts the backoff again at 1 s
# After SIGTERM, a process still running this long past its own stop bound is killed.
DRAIN_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2


def restart_delay(failures: int) -> float:
    """Seconds before restarting a process that died `failures` times in a row (>= 1)."""
    doublings: int = min(failures - 1, 16)
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2.0**doublings)


def process_count(settings: Settings) -> int:
    """OKRFLOW_WORKER_PROCESSES, its 0 meaning one per core."""
    return settings.worker_processes or os.cpu_count() or 1


def process_settings(settings: Settings, index: int) -> Settings:
    """Process `index`'s settings: its own faust data folder and metrics port."""
    port = settings.worker_metrics_port
    return settings.model_copy(
        update={
            "worker_data_dir": settings.worker_data_dir / f"process-{index}",
            "worker_metrics_port": port + index if port else 0,
            "worker_processes": 1,
        }
    )


def run_workers(settings: Settings) -> int:
    """`okrflow worker`: one worker in this process, or N under a supervisor."""
    # lazy: faust loads only where a worker runs (the worker module takes ~3 s to import on a busy machine, the supervisor 0.7 s)
    from okrflow.ingest.worker import run_worker, wait_for_services

    count = process_count(settings)
    if count == 1:
        return run_worker(settings)
    port = settings.worker_metrics_port
    if port and port + count - 1 > 65535:
        raise OperatorError(
            ExitCode.USAGE,
            f"--metrics-port {port} with {count} processes needs ports up to "
            f"{port + count - 1}: above 65535",
        )
    wait_for_services(settings).dispose()
    return Supervisor(settings, count).run()


def _child(settings: Settings, index: int, errors: Connection, supervisor: int) -> None:
    """A worker process: runs the worker; an operator error's code and line go back to the
    supervisor through `errors` (it prints the line once). It stops (SIGTERM, a drain bounded
    by OKRFLOW_WORKER_STOP_SECONDS) when process `supervisor` dies, at any moment: even
    before this function runs (okrflow.ops.lifeline)."""
    # lazy: faust loads in the worker process only, not in the supervisor
    from okrflow.ingest.worker import run_worker
    from okrflow.ops.logs import setup_logging

    die_with_parent(supervisor, signal.SIGTERM)
    # Its own process group: a terminal's Ctrl-C reaches the supervisor only, which drains
    # every process with one SIGTERM each.
    os.setpgid(0, 0)
    setup_logging(settings.log_level, settings.log_format)
    try:
        code = run_worker(settings)
    except OperatorError as exc:
        errors.send((int(exc.code), str(exc)))
        code = exc.code
    except Exception as exc:
        logger.debug("worker process %d failed", index, exc_info=True)
        code, line = known_failure(exc)
        errors.send((code, line))
    sys.exit(int(code))


@dataclass
class _Slot:
    """One of the N places a worker process runs in, through its restarts."""

    index: int
    settings: Settings
    process: SpawnProcess | None = None
    errors: Connection | None = None
    started_at: float = 0.0
    failures: int = 0  # deaths in a row, each within a minute of its start
    restart_at: float = 0.0

    def start(self, context: SpawnContext) -> None:
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(
            target=_child,
            args=(self.settings, self.index, writer, os.getpid()),
            name=f"okrflow-worker-{self.index}",
        )
        process.start()
        writer.close()
        self.process, self.errors, self.started_at = process, reader, time.monotonic()
        logger.info("worker process %d started (pid %s)", self.index, process.pid)

    def error_line(self) -> tuple[int, str] | None:
        """The (code, line) the exited process sent, if any."""
        if self.errors is None:
            return None
        try:
            if self.errors.poll():
                code, line = self.errors.recv()
                return int(code), str(line)
        except (EOFError, OSError):
            pass
        finally:
            self.errors.close()
            self.errors = None
        return None


class Supervisor:
    def __init__(self, settings: Settings, count: int) -> None:
        self.count = count
        self.stop_seconds = settings.worker_stop_seconds
        self.slots = [_Slot(i, process_settings(settings, i)) for i in range(count)]
        self.context = multiprocessing.get_context("spawn")
        self.stop = threading.Event()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stop.is_set():
            logger.info("%s: draining %d worker processes", signal.Signals(signum).name, self.count)
        self.stop.set()

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in self.slots:
                slot.start(self.context)
            while not self.stop.is_set():
                self._tend(time.monotonic())
                self.stop.wait(POLL_SECONDS)
        finally:
            codes = self._drain()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        failed = [c for c in codes if c not in (ExitCode.OK, None)]
        if failed:
            logger.warning("worker processes exited with %s while draining", failed)
        return ExitCode.OK

    def _tend(self, now: float) -> None:
        """Start what is due, notice what exited: restart it later or stop everything."""
        for slot in self.slots:
            if slot.process is None:
                if now >= slot.restart_at:
                    slot.start(self.context)
                continue
            code = slot.process.exitcode
            if code is None:
                if slot.failures and now - slot.started_at >= STEADY_AFTER_SECONDS:
                    slot.failures = 0
                continue
            sent = slot.error_line()
            slot.process.close()
            slot.process = None
            if code in OPERATOR_CODES:
                line = sent[1] if sent is not None else f"exited with {code}"
                raise OperatorError(
                    ExitCode(code), f"worker process {slot.index} of {self.count}: {line}"
                )
            if now - slot.started_at >= STEADY_AFTER_SECONDS:
                slot.failures = 0
            slot.failures += 1
            delay = restart_delay(slot.failures)
            slot.restart_at = now + delay
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            logger.warning(
                "worker process %d exited with %s%s; restarting it in %.0f s",
                slot.index, how, f" ({sent[1]})" if sent else "", delay,
            )  # fmt: skip

    def _drain(self) -> list[int | None]:
        """SIGTERM every running process and wait for each (killing one still running after
        OKRFLOW_WORKER_STOP_SECONDS and a grace); their exit codes."""
        running = [s.process for s in self.slots if s.process is not None]
        for process in running:
            if process.exitcode is None and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_seconds + DRAIN_GRACE_SECONDS
        codes = []
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                logger.error("worker process %s did not stop in time: killed", process.name)
                process.kill()
                process.join(10)
            codes.append(process.exitcode)
        for slot in self.slots:
            if slot.errors is not None:
                slot.errors.close()
        return codes
