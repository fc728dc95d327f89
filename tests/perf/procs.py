"""The bench's multi-process run: `okrflow worker --processes N` into PostgreSQL, with the CPU
seconds each component (worker processes, the broker's JVM, PostgreSQL) spent, from /proc.

On a small machine the broker and the database share the cores with the workers, so a second
worker process only helps as far as they leave a core free: the CPU split says where it went.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from rich.table import Table

from okrflow.store.engine import make_engine, normalise_url
from tests.integration.processes import okrflow, okrflow_env

COMPONENTS = ("workers", "broker", "postgres")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 once it is gone)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    """`root` and every process below it (by parent pid, from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:  # bounded by the processes in /proc
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


@dataclass(frozen=True)
class Roots:
    """The processes whose trees make up each component."""

    workers: int
    broker: int
    postgres: int

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each component's whole tree (PostgreSQL's backends are children
        of its postmaster; the workers, of the supervisor)."""
        return {name: sum(cpu_of(pid) for pid in tree(getattr(self, name))) for name in COMPONENTS}


def postmaster_pid(pgdata: Path) -> int:
    for path in [pgdata, *pgdata.rglob("postmaster.pid")]:
        pid_file = path if path.name == "postmaster.pid" else path / "postmaster.pid"
        if pid_file.is_file():
            return int(pid_file.read_text().split()[0])
    raise RuntimeError(f"no postmaster.pid under {pgdata}")


def fresh_database(server_url: str, name: str) -> str:
    """A new empty database on the PostgreSQL server at `server_url`: its URL."""
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = sa.make_url(normalise_url(server_url)).set(database=name)
    return url.render_as_string(hide_password=False)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run_processes(
    processes: int,
    database_url: str,
    bootstrap: str,
    topic: str,
    n: int,
    work: Path,
    plans: list[Path],
    broker_pid: int,
    postgres_pid: int,
    metrics_port: int,
) -> dict[str, float]:
    """`okrflow worker --processes N` over the `n` events of `topic` (plans applied first):
    events/s and each component's CPU seconds, timed from the moment every process has its
    partitions and the first batch is committed, to the last commit."""
    label = f"{processes}proc"
    env = okrflow_env(
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        events_topic=topic,
        dlq_topic=topic + ".dlq",
        consumer_group=f"bench-{label}-{time.time_ns()}",
        worker_data_dir=work / f"worker-{label}",
        worker_metrics_port=metrics_port,
        batch_size=20_000,
        batch_seconds=0.2,  # the default
        log_level="WARNING",
    )
    for plan in plans:
        result = okrflow(env, "apply", str(plan))
        assert result.returncode == 0, result.stderr
    log = (work / f"worker-{label}.log").open("wb")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "okrflow", "worker", "--processes", str(processes)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    roots = Roots(supervisor.pid, broker_pid, postgres_pid)
    ports = [metrics_port + i for i in range(processes)]
    # One connection for the polling (a new one every poll would fork a PostgreSQL backend each
    # time, on the cores being measured).
    engine = make_engine(database_url)
    conn = engine.connect()
    applied_sql = sa.text(
        "SELECT coalesce(sum(next_offset), 0) FROM applied_offsets WHERE topic = :t"
    )

    def applied_messages() -> int:
        value = int(conn.execute(applied_sql, {"t": topic}).scalar_one())
        conn.rollback()
        return value

    try:
        first_at = first_n = None
        first_cpu: dict[str, float] = {}
        deadline = time.monotonic() + 1800
        applied = 0
        now = time.perf_counter()
        while time.monotonic() < deadline:  # bounded
            applied = applied_messages()
            now = time.perf_counter()
            if first_at is None and applied > 0 and all(_ready(p) for p in ports):
                first_at, first_n, first_cpu = now, applied, roots.cpu()
            if applied >= n:
                break
            if supervisor.poll() is not None:
                raise RuntimeError(f"worker exited with {supervisor.returncode}; see {log.name}")
            time.sleep(0.1)
        assert first_at is not None and first_n is not None and applied >= n, (
            f"only {applied} of {n} applied"
        )
        if applied == first_n:
            raise RuntimeError(f"all {n:,} events were applied before every process was ready")
        cpu = roots.cpu()
        wall = now - first_at
        out = {"rate": (applied - first_n) / wall, "wall_s": wall}
        out.update({f"cpu_{name}_s": cpu[name] - first_cpu[name] for name in COMPONENTS})
        return out
    finally:
        conn.close()
        engine.dispose()
        supervisor.terminate()
        supervisor.wait(120)


def free_ports(count: int) -> int:
    """A port P with P .. P + count - 1 all free on the loopback."""
    for _ in range(100):  # bounded
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
        if port + count - 1 > 65535:
            continue
        sockets = []
        try:
            for p in range(port, port + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return port
    raise RuntimeError(f"no {count} consecutive free ports")


def every_core(
    server_url: str, bootstrap: str, topic: str, n: int, work: Path, plans: list[Path],
    broker_pid: int, postgres_pid: int,
) -> dict[str, float]:  # fmt: skip
    """One and then two worker processes over the same topic, each into a fresh database on the
    same PostgreSQL server, timed alike: the bench's every-core figures (flat, for --json)."""
    figures: dict[str, float] = {}
    for count, name in ((1, "one_process"), (2, "two_process")):
        run = run_processes(
            count, fresh_database(server_url, f"bench_{count}proc_{time.time_ns()}"), bootstrap,
            topic, n, work, plans, broker_pid, postgres_pid, free_ports(count),
        )  # fmt: skip
        figures[f"{name}_events_per_s"] = run["rate"]
        figures[f"{name}_wall_s"] = run["wall_s"]
        for component in COMPONENTS:
            figures[f"{name}_cpu_{component}_s"] = run[f"cpu_{component}_s"]
    figures["two_process_speedup"] = (
        figures["two_process_events_per_s"] / figures["one_process_events_per_s"]
    )
    return figures


def every_core_table(figures: dict[str, float], n: int) -> Table:
    """Events/s and each component's CPU seconds (and cores busy: CPU s / wall s) per run."""
    table = Table(
        title=f"every core: okrflow worker --processes N -> PostgreSQL, {n:,} events, "
        f"{os.cpu_count()} cores shared with the broker and PostgreSQL"
    )
    for col in ("processes", "events/s", "speedup", "wall s", *(f"{c} CPU s" for c in COMPONENTS),
                "cores busy"):  # fmt: skip
        table.add_column(col, justify="right")
    for count, name in ((1, "one_process"), (2, "two_process")):
        wall = figures[f"{name}_wall_s"]
        cpu = [figures[f"{name}_cpu_{c}_s"] for c in COMPONENTS]
        speedup = figures[f"{name}_events_per_s"] / figures["one_process_events_per_s"]
        table.add_row(
            str(count), f"{figures[f'{name}_events_per_s']:,.0f}", f"{speedup:.2f}x",
            f"{wall:.1f}", *(f"{c:.1f}" for c in cpu), f"{sum(cpu) / wall:.2f}",
        )  # fmt: skip
    return table
