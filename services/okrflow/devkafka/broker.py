"""Start, stop and inspect one local Kafka broker process (KRaft, broker+controller)."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from okrflow.devkafka.jars import JarFetchError, ensure_jars
from okrflow.devkafka.ports import PortHolder, port_holder
from okrflow.ops.lifeline import preexec_die_with


class LocalKafkaError(RuntimeError):
    """The local broker could not be started or stopped; the message says why."""


class KafkaPortHeld(LocalKafkaError):
    """Another process (another broker, or anything else) listens on the broker's port."""


@dataclass(frozen=True)
class KafkaStatus:
    pid: int | None  # okrflow's broker (of this state folder), if it runs
    reachable: bool
    holder: PortHolder | None = None  # who listens on the port when it is not this broker

    @property
    def running(self) -> bool:
        return self.pid is not None


@dataclass(frozen=True)
class LocalKafka:
    """One broker: config templates in `deploy_dir`, jars in `cache_dir/libs`, state in `run_dir`."""

    deploy_dir: Path
    cache_dir: Path
    run_dir: Path
    port: int
    controller_port: int
    heap: str = "1g"
    # For a broker other than the plain development one (e.g. tests' TLS/SASL broker): lines
    # appended to server.properties (a later key wins), extra `storage format` arguments (e.g.
    # `--add-scram`), and the aiokafka client options the readiness probe connects with.
    extra_properties: tuple[tuple[str, str], ...] = ()
    format_args: tuple[str, ...] = ()
    probe_options: tuple[tuple[str, object], ...] = ()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "kafka.log"

    @property
    def _pid_file(self) -> Path:
        return self.run_dir / "kafka.pid"

    def fetch_jars(self) -> Path:
        """Download the broker's jars once (Maven); returns the folder holding them."""
        try:
            return ensure_jars(self.deploy_dir / "pom.xml", self.cache_dir / "libs")
        except JarFetchError as exc:
            raise LocalKafkaError(str(exc)) from exc

    def status(self) -> KafkaStatus:
        """This broker's process, whether it answers, and who else holds its port."""
        pid = self._live_pid()
        holder = port_holder(self.port)
        if holder is not None and holder.pid == pid:
            holder = None
        ours = pid is not None and holder is None
        return KafkaStatus(pid=pid, reachable=ours and self._answers(), holder=holder)

    def start(self, timeout: float = 90.0, die_with: int | None = None) -> bool:
        """Start the broker and wait until it answers a metadata request on its port.

        Returns False when it was already running (nothing done), True when started.
        Raises KafkaPortHeld when another process listens on its port or controller port
        (another broker, of another state folder or project, or anything else): what answers
        there is not this broker, so it is never reported as started. Raises LocalKafkaError,
        with the tail of the broker log, if it dies or misses the deadline. With `die_with`
        (a pid: the caller's), the broker is stopped when that process dies (`okrflow demo`);
        without, it runs on until `stop` (`okrflow kafka start`).
        """
        if self._live_pid() is not None:
            self._check_port_is_ours()
            return False
        for port in (self.port, self.controller_port):
            holder = port_holder(port)
            if holder is not None:
                raise KafkaPortHeld(self._held_line(port, holder))
        java = shutil.which("java")
        if java is None:
            raise LocalKafkaError("Java (17+) is not installed: it is needed to run Kafka")
        libs = self.fetch_jars()
        classpath = f"{libs}/*"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self._render_config()
        self._format_storage(java, classpath, config)
        log = self.log_file.open("ab")
        cmd = [
            java, "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.run_dir / 'logs'}",
            f"-Dlog4j2.configurationFile={self.deploy_dir / 'log4j2.properties'}",
            "-cp", classpath, "kafka.Kafka", str(config),
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=None if die_with is None else preexec_die_with(die_with),
        )  # fmt: skip
        log.close()
        self._pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._pid_file.unlink(missing_ok=True)
                raise LocalKafkaError(
                    f"Kafka exited with code {proc.returncode} while starting; "
                    f"last lines of {self.log_file}:\n{self.log_tail()}"
                )
            holder = port_holder(self.port)
            if holder is not None and holder.pid != proc.pid:  # someone bound it first
                self.stop()
                raise KafkaPortHeld(self._held_line(self.port, holder))
            if holder is not None and self._answers():
                return True
            time.sleep(0.25)
        self.stop()
        raise LocalKafkaError(
            f"Kafka did not answer on {self.bootstrap} within {timeout:.0f}s; "
            f"last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after `timeout`). False if it was not running."""
        pid = self._live_pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _is_kafka(pid):
            time.sleep(0.1)
        if _is_kafka(pid):
            os.kill(pid, signal.SIGKILL)
            while _is_kafka(pid):
                time.sleep(0.05)
        self._pid_file.unlink(missing_ok=True)
        return True

    def _check_port_is_ours(self) -> None:
        """Raise KafkaPortHeld if this broker's process runs but another one holds its port
        (this broker then failed to bind it)."""
        holder = port_holder(self.port)
        if holder is not None and holder.pid != self._live_pid():
            raise KafkaPortHeld(
                self._held_line(self.port, holder) + f"; this broker (pid {self._live_pid()}) "
                "does not listen there: `okrflow kafka stop` stops it"
            )

    def _held_line(self, port: int, holder: PortHolder) -> str:
        return (
            f"127.0.0.1:{port} is already in use by {holder.describe()}, not by okrflow's "
            f"broker of {self.run_dir}: stop that one, or give okrflow other ports "
            "(OKRFLOW_KAFKA_BOOTSTRAP, OKRFLOW_KAFKA_CONTROLLER_PORT)"
        )

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _live_pid(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_kafka(pid) else None

    def _answers(self) -> bool:
        return metadata_ok(self.bootstrap, 2.0, **dict(self.probe_options))

    def _render_config(self) -> Path:
        template = (self.deploy_dir / "server.properties").read_text()
        text = template.format(
            port=self.port, controller_port=self.controller_port, data_dir=self.run_dir / "data"
        )
        path = self.run_dir / "server.properties"
        path.write_text(text + "".join(f"\n{key}={value}" for key, value in self.extra_properties))
        return path

    def _format_storage(self, java: str, classpath: str, config: Path) -> None:
        if (self.run_dir / "data" / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        cmd = [
            java, "-cp", classpath, f"-Dlog4j2.configurationFile={self.deploy_dir / 'log4j2.properties'}",
            "kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
            "-t", cluster_id, "-c", str(config), *self.format_args,
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting Kafka storage failed:\n{(result.stdout + result.stderr)[-3000:]}"
            )


def new_cluster_id() -> str:
    """A random Kafka cluster id: 16 bytes, URL-safe base64 without padding. Like Kafka's own
    `Uuid.randomUuid()`, never starting with `-` (the storage tool would read it as an option:
    one start in 64 failed with "argument --cluster-id/-t: expected one argument")."""
    for _ in range(1000):  # bounded; each try fails with probability 1/64
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
    raise RuntimeError("no Kafka cluster id found")


def _is_kafka(pid: int) -> bool:
    """True if `pid` is alive and is a Kafka broker (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state != "Z" and b"kafka.Kafka" in cmdline


def metadata_ok(bootstrap: str, timeout: float, **client_options: object) -> bool:
    """True if the broker at `bootstrap` answers a metadata request within `timeout` seconds."""
    # lazy: aiokafka (0.37 s) only when a running broker is asked for its metadata; `kafka stop` never needs it
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    # Refused connections while the broker boots are expected: keep aiokafka quiet about them.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    async def probe() -> bool:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **client_options
        )
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            return True
        except (TimeoutError, KafkaError, OSError):
            return False
        finally:
            await client.close()

    return asyncio.run(probe())
