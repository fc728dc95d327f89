"""The deploy/ configuration: Prometheus rules pass promtool (syntax and unit tests),
Alertmanager routes by owner and inhibits key-result alerts, dashboards are well formed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.services import unavailable

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(
            f"{name} is not installed (Debian packages prometheus, prometheus-alertmanager)"
        )
    return path


def test_prometheus_config_and_rules_check() -> None:
    result = subprocess.run([_tool("promtool"), "check", "config", "prometheus.yml"], cwd=DEPLOY / "prometheus",
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_unit_tests() -> None:
    tests = sorted(str(p) for p in (DEPLOY / "prometheus" / "tests").glob("*.test.yml"))
    result = subprocess.run([_tool("promtool"), "test", "rules", *tests], cwd=DEPLOY / "prometheus" / "tests",
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    alerts = {r["alert"] for g in yaml.safe_load((DEPLOY / "prometheus" / "rules" / "okr-alerts.yml").read_text())["groups"]
              for r in g["rules"]}  # fmt: skip
    firing, quiet = set(), set()
    for path in (DEPLOY / "prometheus" / "tests").glob("*.test.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert alerts <= firing, f"never tested firing: {alerts - firing}"
    assert alerts <= quiet, f"never tested quiet: {alerts - quiet}"


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["owner=marketing", "alertname=OkrKeyResultOffTrack"], "team-marketing"),
        (["owner=social", "alertname=OkrObjectiveOffTrack"], "team-social"),
        (["owner=okrflow-ops", "alertname=OkrflowNoCommits"], "okrflow-ops"),
        (["owner=nobody-we-know"], "okr-default"),
    ],
)
def test_alertmanager_routes_by_owner(labels: list[str], receiver: str) -> None:
    amtool = _tool("amtool")
    config = str(DEPLOY / "alertmanager" / "alertmanager.yml")
    check = subprocess.run(
        [amtool, "check-config", config], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    routed = subprocess.run([amtool, "config", "routes", "test", f"--config.file={config}", *labels],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert routed.stdout.strip() == receiver


def test_objective_alert_inhibits_its_key_results() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    rule = config["inhibit_rules"][0]
    assert rule["source_matchers"] == ['alertname="OkrObjectiveOffTrack"']
    assert rule["target_matchers"] == ['alertname=~"OkrKeyResult.*"']
    assert set(rule["equal"]) == {"shop", "objective"}


def test_dashboards_are_well_formed() -> None:
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "okrflow.yml").read_text()
    )
    uid = datasource["datasources"][0]["uid"]
    uids = set()
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel[
                "title"
            ]
    # Alert annotations link to these.
    assert {"okrflow-overview", "okrflow-key-result", "okrflow-pipeline"} <= uids


def test_the_image_files_build_a_complete_package(tmp_path: Path) -> None:
    """The Dockerfile's COPY lines bring everything `pip install .` needs (no Docker engine
    here: the same files are copied and built into a wheel the same way)."""
    repo = DEPLOY.parent
    context = tmp_path / "context"
    context.mkdir()
    copies = [
        line.split()[1:-1]
        for line in (repo / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    ]
    ignored = {".venv", ".cache", "__pycache__", ".mypy_cache", ".pytest_cache"}
    for sources in copies:
        for source in sources:
            path = repo / source
            if path.is_dir():
                shutil.copytree(path, context / source, symlinks=True,
                                ignore=shutil.ignore_patterns(*ignored, "*.egg-info"))  # fmt: skip
            else:
                shutil.copy2(path, context / source)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), "."],
        cwd=context, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("okrflow-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        schema = json.loads(zf.read("okrflow/plans/okr-definitions.schema.json"))
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "okrflow = okrflow.cli:main" in zf.read(entry_points).decode()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "okrflow/store/migrations/env.py" in names
    assert any(n.startswith("okrflow/store/migrations/versions/") for n in names)
