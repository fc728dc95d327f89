"""The wheel stands alone: built from the repo, installed into a fresh venv outside it, run from
a folder outside it, it fetches the Kafka jars, starts, inspects and stops a real broker from its
own package data, with its cache outside the install prefix.

The venv gets okrflow from the wheel only (`--no-deps`). Its dependencies come from the repo's
.venv through a .pth line: installing them from the index takes 45 s on a fresh machine, too
long for CI, and tests reach no network but 127.0.0.1 (the wheel is built offline too, with the
dev extras' setuptools). A folder listed in a .pth file is put on sys.path without its own .pth
files being run, so the repo's editable install of okrflow (a .pth line pointing at services/)
never takes effect there: the test checks that `okrflow` is imported from the venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.services import free_port, unavailable

# What the image and the wheel are built from (as in the Dockerfile).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "schemas", "services")
# Package data that replaced the repo's deploy/local/: every file of these folders.
DATA_FOLDERS = ("devkafka/resources", "demo_plan")
PACKAGE_DATA = sorted(
    f"okrflow/{folder}/{path.name}"
    for folder in DATA_FOLDERS
    for path in (REPO / "services" / "okrflow" / folder).iterdir()
    if path.is_file()
)

PROBE = """
import json, okrflow
from importlib.resources import files
from okrflow.settings import load_settings
s = load_settings()
print(json.dumps({
    "okrflow": okrflow.__file__,
    "deploy_dir": str(s.kafka_deploy_dir),
    "cache_dir": str(s.kafka_cache_dir),
    "demo_plans": {
        t.name: t.read_text() for t in (files("okrflow") / "demo_plan").iterdir()
    },
}))
"""


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of the sources (a build in the repo would reuse its stale build/)."""
    context = tmp_path / "src"
    ignored = shutil.ignore_patterns("__pycache__", "*.egg-info", ".mypy_cache")
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, context / name, symlinks=True, ignore=ignored)
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(source, context / name)
    dist = tmp_path / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(dist), str(context)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = dist.glob("okrflow-*.whl")
    return wheel


def make_venv(tmp_path: Path, wheel: Path) -> Path:
    """A venv with the wheel installed alone, and the repo's dependencies on its path."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "okrflow-test-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    return venv


@pytest.mark.integration
def test_installed_wheel_runs_local_kafka_outside_the_repo(tmp_path: Path) -> None:
    for tool, why in (("java", "the Kafka broker"), ("mvn", "fetching the Kafka jars")):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (needed for {why})")
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read("okrflow-0.1.0.dist-info/METADATA").decode()
    assert "okrflow/devkafka/resources/pom.xml" in PACKAGE_DATA
    assert any(name.startswith("okrflow/demo_plan/") for name in PACKAGE_DATA)
    assert set(PACKAGE_DATA) <= names
    assert "okrflow-0.1.0.dist-info/licenses/LICENSE" in names
    assert "License-Expression: Apache-2.0" in metadata

    venv = make_venv(tmp_path, wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache = tmp_path / "xdg-cache"
    port, controller_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKRFLOW_")}
    env.pop("PYTHONPATH", None)
    env.update({
        "XDG_CACHE_HOME": str(cache),
        "OKRFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "OKRFLOW_KAFKA_CONTROLLER_PORT": str(controller_port),
    })  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / args[0]), *args[1:]],
            cwd=elsewhere, env=env, capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip

    probe = run("python", "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert Path(found["okrflow"]).is_relative_to(venv), found["okrflow"]
    assert Path(found["deploy_dir"]).is_relative_to(venv), found["deploy_dir"]
    assert Path(found["cache_dir"]) == cache / "okrflow" / "kafka"
    demo_plan = REPO / "services" / "okrflow" / "demo_plan"
    assert found["demo_plans"] == {p.name: p.read_text() for p in demo_plan.iterdir()}

    help_ = run("okrflow", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "kafka" in help_.stdout

    try:
        start = run("okrflow", "kafka", "start")
        assert start.returncode == 0, start.stdout + start.stderr
        assert f"Kafka started on 127.0.0.1:{port}" in start.stdout
        status = run("okrflow", "kafka", "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "running, answering" in status.stdout
    finally:
        stop = run("okrflow", "kafka", "stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert f"Kafka on 127.0.0.1:{port} stopped" in stop.stdout

    # The jars and the broker's state are in the user's cache, nothing under the prefix.
    assert any((cache / "okrflow" / "kafka" / "libs").glob("kafka_2.13-*.jar"))
    assert (cache / "okrflow" / "kafka" / f"broker-{port}" / "kafka.log").exists()
    assert not any(venv.rglob("*.jar"))
    down = run("okrflow", "kafka", "status")
    assert down.returncode == 12, down.stdout + down.stderr
