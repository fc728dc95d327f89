"""Running okrflow commands as real processes, the way users run them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def okrflow_env(**settings: str | float | Path) -> dict[str, str]:
    """The current environment plus OKRFLOW_* settings (keys are setting names)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKRFLOW_")}
    # One worker process unless a test asks for more (`okrflow worker`'s default: one per core).
    env["OKRFLOW_WORKER_PROCESSES"] = "1"
    env.update({f"OKRFLOW_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def okrflow(
    env: Mapping[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "okrflow", *args],
        env=dict(env), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@contextmanager
def running(env: Mapping[str, str], *args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `okrflow ARGS` in the background; SIGTERM (then SIGKILL) it on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "okrflow", *args],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", re.M)


def scrape(url: str) -> dict[str, float]:
    """Samples of a /metrics page as {'name{labels}': value}; empty if unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    return {name + (labels or ""): float(value) for name, labels, value in _SAMPLE.findall(text)}


def metric_sum(samples: Mapping[str, float], name: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        v for k, v in samples.items()
        if (k == name or k.startswith(name + "{")) and all(w in k for w in wanted)
    )  # fmt: skip


def pipeline_env(
    kafka_bootstrap: str, database_url: str, tmp_path: Path, **more: str | float | Path
) -> dict[str, str]:
    """Settings for one isolated pipeline: its own topics, consumer group and data folder."""
    run = os.urandom(4).hex()
    return okrflow_env(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        events_topic=f"events-{run}",
        dlq_topic=f"events-{run}.dlq",
        consumer_group=f"okrflow-{run}",
        worker_data_dir=tmp_path / "worker",
        batch_seconds=0.2,
        **more,
    )
