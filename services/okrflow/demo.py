"""`okrflow demo`: the whole pipeline on this machine, with two simulated shops, until Ctrl-C.

Kafka (started if none is running), SQLite, the worker and the exporter as child processes, the
two demo plans (okrflow.demo_shops) applied with periods around today, a backdated history, then
live events. The status line reads one source, the database (the same report as
`okrflow progress`); a child that dies stops the demo with the path of its log.

The demo never joins anyone else's consumer group or topic: its worker is in group
`okrflow-demo` and reads `okr.demo.events` (whatever the settings say), so another okrflow, or
an old worker left on the same broker, cannot hold its partitions. Every process it starts,
Kafka included, dies with it (okrflow.ops.lifeline). A wait that counts nothing for
`STALL_SECONDS` says why: who holds the partitions, or whose broker answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from importlib.resources import files
from pathlib import Path
from string import Template

from sqlalchemy import Engine

from okrflow import demo_shops
from okrflow.devkafka import LocalKafka, LocalKafkaError
from okrflow.devkafka.broker import KafkaPortHeld
from okrflow.events.emit import emit_lines
from okrflow.exitcodes import ExitCode
from okrflow.ops.groupview import describe_group
from okrflow.ops.lifeline import preexec_die_with
from okrflow.plans.apply import apply_files
from okrflow.reports.progress import progress_report
from okrflow.settings import Settings
from okrflow.store.batches import count_shop_events
from okrflow.store.engine import make_engine
from okrflow.store.schema import upgrade

TICK_SECONDS = 2.0
STALL_SECONDS = 30.0
_ROLES = ("worker", "exporter")
# The demo's own names: never a group or topic that a real okrflow, or a worker left running
# on the same broker, uses.
DEMO_GROUP = "okrflow-demo"
DEMO_TOPIC = "okr.demo.events"


def demo_settings(settings: Settings) -> Settings:
    """`settings` with the demo's own consumer group and topics."""
    return settings.model_copy(
        update={
            "consumer_group": DEMO_GROUP,
            "events_topic": DEMO_TOPIC,
            "dlq_topic": f"{DEMO_TOPIC}.dlq",
        }
    )


class _Children:
    """The worker and the exporter, started as `okrflow ROLE` with their logs in `logs`."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        env = {**os.environ, "OKRFLOW_DATABASE_URL": settings.database_url,
               "OKRFLOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
               "OKRFLOW_EXPORTER_PORT": str(settings.exporter_port),
               "OKRFLOW_CONSUMER_GROUP": settings.consumer_group,
               "OKRFLOW_EVENTS_TOPIC": settings.events_topic,
               "OKRFLOW_DLQ_TOPIC": settings.dlq_topic}  # fmt: skip
        self.logs = {role: logs / f"{role}.log" for role in _ROLES}
        self.procs = {
            role: subprocess.Popen(
                [sys.executable, "-m", "okrflow", role], env=env,
                stdout=self.logs[role].open("ab"), stderr=subprocess.STDOUT,
                preexec_fn=preexec_die_with(os.getpid()),  # the demo is single-threaded here
            )
            for role in _ROLES
        }  # fmt: skip

    def dead(self) -> str | None:
        """A line naming a child that exited, with its code and log; None while all run."""
        for role, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                return f"the {role} exited with code {code}; its log: {self.logs[role]}"
        return None

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_demo(settings: Settings, kafka: LocalKafka, max_seconds: float | None = None) -> int:
    """Start Kafka (if needed), the worker and the exporter, emit events until interrupted.

    Everything started here is stopped on Ctrl-C/SIGTERM, after `max_seconds`, or when a child
    dies (then the exit code is 1)."""
    started_at = time.monotonic()
    settings = demo_settings(settings)
    print(
        f"okrflow demo: database {settings.database_url}, Kafka {settings.kafka_bootstrap} "
        f"(topic {settings.events_topic}, group {settings.consumer_group})"
    )
    try:
        started_kafka = kafka.start(settings.kafka_start_timeout, die_with=os.getpid())
    except KafkaPortHeld as exc:
        print(f"okrflow demo: {exc}", file=sys.stderr)
        return int(ExitCode.PORT_IN_USE)
    except LocalKafkaError as exc:
        print(f"okrflow demo: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    print("  Kafka: " + ("started" if started_kafka else "already running, reused"))
    engine = make_engine(settings.database_url, writer=True)
    upgrade(engine)
    work = settings.kafka_cache_dir.parent / "demo"
    work.mkdir(parents=True, exist_ok=True)
    periods = demo_shops.DemoPeriods(date.today())
    for result in apply_files(engine, _demo_plans(periods, work), datetime.now(UTC)):
        print(f"  plan {result.file}: shop {result.shop}, {len(result.changes)} change(s)")
    children = _Children(settings, work)
    _print_where(settings, children)
    stop = _StopSignal()
    code: int = ExitCode.OK
    try:
        _emit_history(settings, engine, periods)
        code = _emit_live(settings, kafka, engine, children, stop, started_at, max_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping worker and exporter...")
        children.stop()
        if started_kafka:
            print("stopping Kafka...")
            kafka.stop()
        engine.dispose()
        print("demo stopped")
    return code


def _print_where(settings: Settings, children: _Children) -> None:
    print(f"  logs: {children.logs['worker']}, {children.logs['exporter']}")
    metrics_url = f"http://{settings.exporter_host}:{settings.exporter_port}/metrics"
    print(f"  worker and exporter started; metrics at {metrics_url}")
    pages_url = f"http://{settings.exporter_host}:{settings.exporter_port}/"
    print(f"  pages (live OKR progress): {pages_url}")


class _StopSignal:
    """Set by SIGTERM or SIGINT. Ctrl-C reaches the whole process group: the children stop by
    themselves, and the demo must not take their exit for a death. A flag, not
    KeyboardInterrupt, which asyncio.run can turn into a cancelled emit."""

    def __init__(self) -> None:
        self.stop = False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, _signum: int, _frame: object) -> None:
        self.stop = True


def _emit_history(settings: Settings, engine: Engine, periods: demo_shops.DemoPeriods) -> None:
    """The backdated events, unless this database has counted them already."""
    if _counted(engine) == 0:
        backdated = [json.dumps(e) for e in demo_shops.history(periods)]
        asyncio.run(emit_lines(settings, backdated))
        print(f"  {len(backdated)} backdated events emitted (the periods began weeks ago)")
    else:
        print("  history already counted in this database: not emitted again")


def _emit_live(
    settings: Settings, kafka: LocalKafka, engine: Engine, children: _Children,
    stop: _StopSignal, started_at: float, max_seconds: float | None,
) -> int:  # fmt: skip
    """Live events every tick, with a status line, until stopped (OK) or a child dies (FAILED)."""
    print("  live events every 2 s; Ctrl-C stops everything")
    print("  another terminal: .venv/bin/okrflow progress\n")
    rng = random.Random(42)
    tick = 0
    stall_at = time.monotonic() - started_at + STALL_SECONDS
    while not stop.stop and (max_seconds is None or time.monotonic() - started_at < max_seconds):
        died = children.dead()
        if died is not None:
            print(f"\nokrflow demo: {died}; stopping", file=sys.stderr)
            return ExitCode.FAILED
        tick += 1
        live = [json.dumps(e) for e in demo_shops.live(rng, datetime.now(UTC), tick)]
        if live:
            asyncio.run(emit_lines(settings, live))
        counted = _counted(engine)
        if counted == 0:
            print("  waiting for the worker to count the first events...", flush=True)
            waited = time.monotonic() - started_at
            if waited >= stall_at:
                print(f"  {stalled(settings, kafka, children, waited)}", flush=True)
                stall_at = waited + STALL_SECONDS
        else:
            print(status_line(engine, counted), flush=True)
        time.sleep(TICK_SECONDS)
    return ExitCode.OK


def stalled(settings: Settings, kafka: LocalKafka, children: _Children, waited: float) -> str:
    """Why nothing is counted yet, in one line: the broker is not the demo's, or the worker
    holds no partitions (and who does), or it holds some and its log says more."""
    head = f"nothing counted after {waited:.0f} s:"
    status = kafka.status()
    if status.holder is not None:
        return f"{head} the broker on {kafka.bootstrap} is {status.holder.describe()}"
    view = describe_group(settings, settings.consumer_group, settings.events_topic)
    if isinstance(view, str):
        return f"{head} {view}; the worker's log: {children.logs['worker']}"
    held = [m for m in view.members if m.partitions]
    if not view.members:
        why = f"the worker has not joined group {view.group} yet ({view.state})"
    elif not held:
        why = f"no member of group {view.group} holds a partition yet ({view.state})"
    else:
        why = f"group {view.group} ({view.state}) has {view.holders()}"
    return f"{head} {why}; the worker's log: {children.logs['worker']}"


def _demo_plans(periods: demo_shops.DemoPeriods, work: Path) -> list[Path]:
    """The demo plans with their periods filled in, written to `work`."""
    paths = []
    for name in ("salon", "studio"):
        template = files("okrflow") / "demo_plan" / f"{name}.yaml.template"  # package data
        path = work / f"{name}.yaml"
        path.write_text(Template(template.read_text()).substitute(periods.template_values()))
        paths.append(path)
    return paths


def _counted(engine: Engine) -> int:
    """Events the database has counted for the demo shops."""
    with engine.connect() as conn:
        return count_shop_events(conn, demo_shops.SHOPS)


def status_line(engine: Engine, counted: int) -> str:
    """One line from the database: `counted` events, and each objective's progress against its
    expected pace, with its status."""
    with engine.connect() as conn:
        report = progress_report(conn, datetime.now(UTC))
    parts = [f"{datetime.now().strftime('%H:%M:%S')} counted {counted:,}"]
    for shop in report.shops:
        if shop.shop not in demo_shops.SHOPS:
            continue
        for o in shop.objectives:
            f = o.figures
            progress = "-" if f.progress is None else f"{f.progress:.0%}"
            expected = "-" if f.expected is None else f"{f.expected:.0%}"
            parts.append(f"{o.key} {progress}/{expected} {f.status}")
    return "  |  ".join(parts)
