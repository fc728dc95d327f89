"""Fetching the broker's jars once, with Maven, into a cache folder outside the install prefix.

The pom is package data (`okrflow/devkafka/resources/pom.xml`); the jars go to
`<kafka_cache_dir>/libs` (default `~/.cache/okrflow/kafka/libs`, see `okrflow.settings`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies"
_COMPLETE_MARKER = ".complete"


class JarFetchError(RuntimeError):
    """Maven could not provide the Kafka jars."""


def ensure_jars(pom: Path, libs: Path) -> Path:
    """Return `libs`, filled with the runtime jars of `pom`; runs Maven only the first time.

    Blocks while Maven downloads (tens of seconds on a fresh machine).
    Raises JarFetchError when Maven is missing or fails.
    """
    marker = libs / _COMPLETE_MARKER
    if marker.exists() and marker.read_text() == pom.read_text():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarFetchError("Maven (mvn) is not installed: it is needed to fetch the Kafka jars")
    staging = libs.with_name(libs.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn, "-B", "-q", "-f", str(pom), DEPENDENCY_PLUGIN,
        "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        tail = (result.stdout + result.stderr)[-3000:]
        raise JarFetchError(
            f"mvn failed to copy the Kafka jars (exit {result.returncode}):\n{tail}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    # The marker records which pom the jars came from, so a version bump re-fetches.
    marker.write_text(pom.read_text())
    return libs
