"""End to end with a real Prometheus: broker, database, worker, exporter, Prometheus with the
repo's scrape config and rules; an objective driven off track, a KPI out of its healthy band
(its value, health and definition scraped, its alert pending); a key result's forecast
scraped and its OkrKeyResultLikelyToMiss pending; every dashboard query answered."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.services import free_port, unavailable, wait_for

DEPLOY = REPO / "deploy"


def _plan() -> str:
    today = date.today()
    return f"""\
shop: e2e-shop
timezone: UTC
objectives:
  - key: more-clients
    title: More clients
    owner: marketing
    level: company
    period: {{start: {today - timedelta(days=10)}, end: {today + timedelta(days=10)}}}
    key_results:
      - key: new-clients
        title: 100 new clients
        metric: {{event: customer.created, aggregate: count}}
        target: 100
kpis:
  - key: clients-today
    title: New clients today
    metric: {{event: customer.created, aggregate: count}}
    window: 1d
    healthy: {{above: 20}}
"""


def _events(prefix: str, n: int) -> str:
    now = date.today().isoformat()
    lines = [
        json.dumps(cloud_event(f"{prefix}-{i}", shop="e2e-shop", time=f"{now}T00:30:00Z"))
        for i in range(n)
    ]
    lines.append(
        json.dumps({**cloud_event(f"{prefix}-bad", shop="e2e-shop"), "shop": "Not A Shop"})
    )
    return "\n".join(lines) + "\n"


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _query(base: str, expr: str) -> list[Any]:
    answer = _get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    return answer["data"]["result"] if answer and answer.get("status") == "success" else []


def _prometheus_config(tmp_path: Path, exporter_port: int, worker_port: int) -> Path:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(DEPLOY / "prometheus" / r) for r in config["rule_files"]]
    config.pop("alerting")
    # The shipped file names compose services (exporter:9464, DNS for the workers and the
    # intake): keep its jobs, each pointed at the process started here, and only those.
    targets = {"okrflow-exporter": exporter_port, "okrflow-worker": worker_port}
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in targets]
    assert {job["job_name"] for job in jobs} == set(targets)
    for job in jobs:
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]
    config["scrape_configs"] = jobs
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _dashboard_queries() -> list[tuple[str, str, str]]:
    queries = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for variable in dashboard["templating"]["list"]:
                    expr = expr.replace(f"${variable['name']}", ".*")
                queries.append((path.name, panel["title"], expr))
    return queries


def test_off_track_alert_and_every_dashboard_query(kafka_bootstrap: str, tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        unavailable("prometheus is not installed (Debian package `prometheus`)")
    exporter_port, worker_port, prom_port = free_port(), free_port(), free_port()
    env = pipeline_env(
        kafka_bootstrap, f"sqlite:///{tmp_path / 'okrflow.db'}", tmp_path,
        exporter_port=exporter_port, worker_metrics_port=worker_port, exporter_refresh_seconds=0.5,
    )  # fmt: skip
    plan = tmp_path / "okrs.yaml"
    plan.write_text(_plan())
    assert okrflow(env, "apply", str(plan)).returncode == 0
    base = f"http://127.0.0.1:{prom_port}"
    config = _prometheus_config(tmp_path, exporter_port, worker_port)
    with (
        running(env, "worker", log=tmp_path / "worker.log"),
        running(env, "exporter", log=tmp_path / "exporter.log"),
        (tmp_path / "prometheus.log").open("wb") as prom_log,
    ):
        prom = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=prom_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for(lambda: _ready(base) or prom.poll() is not None, bool, 60, "Prometheus ready")
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            (tmp_path / "first.jsonl").write_text(_events("a", 3))
            okrflow(env, "emit", str(tmp_path / "first.jsonl"))
            wait_for(lambda: _query(base, "okr_key_result_value"), lambda r: r and float(r[0]["value"][1]) == 3, 60,
                     "the first events in Prometheus")  # fmt: skip
            (tmp_path / "second.jsonl").write_text(_events("b", 2))
            okrflow(env, "emit", str(tmp_path / "second.jsonl"))
            wait_for(lambda: _query(base, "okr_key_result_value"), lambda r: r and float(r[0]["value"][1]) == 5, 60,
                     "the second events in Prometheus")  # fmt: skip

            # Two a day on the 8 days before today: the forecast's basis is the period's 10
            # complete days (7 needed); 21 of 100 by day 11 of 21 is unlikely to make it.
            past = [
                json.dumps(cloud_event(f"past-{ago}-{i}", shop="e2e-shop",
                                       time=f"{date.today() - timedelta(days=ago)}T12:00:00Z"))
                for ago in range(1, 9) for i in range(2)
            ]  # fmt: skip
            (tmp_path / "past.jsonl").write_text("\n".join(past) + "\n")
            okrflow(env, "emit", str(tmp_path / "past.jsonl"))
            wait_for(lambda: _query(base, "okr_key_result_value"), lambda r: r and float(r[0]["value"][1]) == 21, 60,
                     "the earlier days' events in Prometheus")  # fmt: skip
            forecast = {
                "shop": "e2e-shop",
                "objective": "more-clients",
                "key_result": "new-clients",
            }
            (probability,) = wait_for(lambda: _query(base, "okr_key_result_forecast_probability"),
                                      bool, 60, "the forecast in Prometheus")  # fmt: skip
            assert {k: probability["metric"][k] for k in forecast} == forecast
            assert 0 <= float(probability["value"][1]) < 0.2
            (basis,) = _query(base, "okr_key_result_forecast_basis_days")
            assert float(basis["value"][1]) == 10

            # The KPI counts today's events: 5, under its band (above 20).
            kpi = {"shop": "e2e-shop", "kpi": "clients-today"}
            value = wait_for(lambda: _query(base, "okr_kpi_value"), lambda r: r and float(r[0]["value"][1]) == 5,
                             60, "the KPI's value in Prometheus")  # fmt: skip
            assert {k: value[0]["metric"][k] for k in kpi} == kpi
            (healthy,) = wait_for(lambda: _query(base, "okr_kpi_healthy"), bool, 60, "KPI health")
            assert {k: healthy["metric"][k] for k in kpi} == kpi
            assert float(healthy["value"][1]) == 0
            (info,) = _query(base, "okr_kpi_info")
            assert {k: info["metric"][k] for k in ("shop", "kpi", "title", "window", "band")} == {
                **kpi, "title": "New clients today", "window": "1d", "band": "above 20",
            }  # fmt: skip
            assert float(info["value"][1]) == 1

            def kpi_alerts() -> list[dict[str, Any]]:
                answer = _get(f"{base}/api/v1/alerts") or {"data": {"alerts": []}}
                return [
                    a
                    for a in answer["data"]["alerts"]
                    if a["labels"]["alertname"] == "OkrKpiUnhealthy"
                ]

            (kpi_alert,) = wait_for(kpi_alerts, bool, 60, "OkrKpiUnhealthy pending")
            assert kpi_alert["state"] == "pending"  # for 15 minutes first
            assert {k: kpi_alert["labels"][k] for k in kpi} == kpi

            def objective_alerts() -> list[dict[str, Any]]:
                answer = _get(f"{base}/api/v1/alerts") or {"data": {"alerts": []}}
                return [
                    a
                    for a in answer["data"]["alerts"]
                    if a["labels"]["alertname"] == "OkrObjectiveOffTrack"
                ]

            alerts = wait_for(objective_alerts, bool, 60, "OkrObjectiveOffTrack pending or firing")
            alert = alerts[0]
            assert alert["state"] in ("pending", "firing")
            assert {k: alert["labels"][k] for k in ("shop", "objective", "owner", "severity", "level")} == {
                "shop": "e2e-shop", "objective": "more-clients", "owner": "marketing",
                "severity": "critical", "level": "company",
            }  # fmt: skip
            assert "behind its expected pace" in alert["annotations"]["description"]

            def likely_to_miss() -> list[dict[str, Any]]:
                answer = _get(f"{base}/api/v1/alerts") or {"data": {"alerts": []}}
                return [a for a in answer["data"]["alerts"]
                        if a["labels"]["alertname"] == "OkrKeyResultLikelyToMiss"]  # fmt: skip

            (miss,) = wait_for(likely_to_miss, bool, 60, "OkrKeyResultLikelyToMiss pending")
            assert miss["state"] == "pending"  # for an hour first
            assert {k: miss["labels"][k] for k in forecast} == forecast

            missing = []
            for dashboard, title, expr in _dashboard_queries():
                try:
                    wait_for(
                        lambda expr=expr: _query(base, expr), bool, 30, f"{dashboard} / {title}"
                    )
                except pytest.fail.Exception:
                    missing.append(f"{dashboard} / {title}: {expr}")
            assert not missing, "panels without data:\n" + "\n".join(missing)
        finally:
            prom.terminate()
            prom.wait(30)
