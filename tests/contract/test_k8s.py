"""deploy/k8s/, the kustomize base, checked offline (no cluster, no kustomize here): built-in
kinds against the Kubernetes schemas (kubernetes-validate), the Prometheus Operator's
ServiceMonitor and PrometheusRule by shape, the rule groups by promtool; and every reference:
kustomization resources, Service and PDB selectors, ConfigMap and Secret names, probe ports,
okrflow commands and settings, and the PrometheusRule against a fresh render of the rules."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from tests.contract.okrflow_refs import SERVED, invoke, secret_settings, setting_name
from tests.services import unavailable

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
RULES = REPO / "deploy" / "prometheus" / "rules"
MONITORING = "monitoring.coreos.com/v1"
OLDEST = Version("1.28")

Doc = dict[str, Any]


def _kustomization() -> Doc:
    data: Doc = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return data


def _docs() -> list[Doc]:
    return [
        doc
        for resource in _kustomization()["resources"]
        for doc in yaml.safe_load_all((K8S / resource).read_text())
        if doc
    ]


def _kind(kind: str) -> list[Doc]:
    return [d for d in _docs() if d["kind"] == kind]


def _named(kind: str, name: str) -> Doc:
    (doc,) = [d for d in _kind(kind) if d["metadata"]["name"] == name]
    return doc


def _pod_labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _containers(deployment: Doc) -> Iterator[Doc]:
    spec = deployment["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def _container_env(container: Doc) -> dict[str, str]:
    """The environment a container gets: envFrom ConfigMaps and Secrets, then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= _named("ConfigMap", source["configMapRef"]["name"])["data"]
        if "secretRef" in source:
            env |= _named("Secret", source["secretRef"]["name"])["stringData"]
    env |= {e["name"]: e["value"] for e in container.get("env", [])}
    return env


def _versions() -> list[str]:
    supported = [v for v in all_versions() if Version(v) >= OLDEST]
    assert supported, f"kubernetes-validate has no schemas from {OLDEST} on"
    return sorted({supported[0], supported[-1]}, key=Version)


def _renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_prometheusrule", K8S / "render_prometheusrule.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kustomization_lists_every_manifest_and_each_exists() -> None:
    kustomization = _kustomization()
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    assert all((K8S / r).is_file() for r in resources), resources
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(resources) == manifests


def test_names_are_unique_per_kind() -> None:
    keys = [(d["kind"], d["metadata"]["name"]) for d in _docs()]
    assert len(keys) == len(set(keys)), keys


@pytest.mark.parametrize("version", _versions())
def test_builtin_kinds_match_the_kubernetes_schemas(version: str) -> None:
    builtin = [d for d in _docs() if d["apiVersion"] != MONITORING]
    assert {d["kind"] for d in builtin} >= {
        "Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget",
    }  # fmt: skip
    for doc in builtin:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} ({version}): {exc.message}")


def test_deployments_select_their_own_pods() -> None:
    for deployment in _kind("Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert _selects(selector, _pod_labels(deployment)), deployment["metadata"]["name"]
        name = deployment["metadata"]["name"]
        others = [d for d in _kind("Deployment") if d["metadata"]["name"] != name]
        assert len(others) == len(_kind("Deployment")) - 1
        assert not any(_selects(selector, _pod_labels(d)) for d in others)


def test_services_and_disruption_budgets_select_one_deployment() -> None:
    for doc in _kind("Service") + _kind("PodDisruptionBudget"):
        selector = doc["spec"]["selector"]
        selector = selector.get("matchLabels", selector) if doc["kind"] != "Service" else selector
        matched = [d for d in _kind("Deployment") if _selects(selector, _pod_labels(d))]
        assert len(matched) == 1, f"{doc['kind']}/{doc['metadata']['name']}: {matched}"
        if doc["kind"] == "Service":
            (container,) = matched[0]["spec"]["template"]["spec"]["containers"]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for port in doc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                assert target in ports or target in ports.values(), (doc, target)
    # The exporter and the intake each have a Service; the workers a headless one to scrape.
    for component in ("okrflow-exporter", "okrflow-intake", "okrflow-worker"):
        _named("Service", component)
    assert _named("Service", "okrflow-worker")["spec"]["clusterIP"] == "None"


def test_config_and_secret_hold_real_settings_and_secrets_only_in_the_secret() -> None:
    (config,) = _kind("ConfigMap")
    (secret,) = _kind("Secret")
    secrets = secret_settings()
    for name in [*config["data"], *secret["stringData"]]:
        assert setting_name(name), f"{name} is not an okrflow setting"
    assert not secrets & set(config["data"]), "secret settings in the ConfigMap"
    assert set(secret["stringData"]) <= secrets
    assert "OKRFLOW_DATABASE_URL" in secret["stringData"]
    assert config["data"]["OKRFLOW_LOG_FORMAT"] == "json"
    for deployment in _kind("Deployment"):
        for container in _containers(deployment):
            refs = container["envFrom"]
            assert {r["configMapRef"]["name"] for r in refs if "configMapRef" in r} == {
                config["metadata"]["name"]
            }
            assert {r["secretRef"]["name"] for r in refs if "secretRef" in r} == {
                secret["metadata"]["name"]
            }


@pytest.mark.parametrize("component", ["worker", "exporter", "intake"])
def test_each_process_serves_its_probes_on_a_declared_port(component: str) -> None:
    deployment = _named("Deployment", f"okrflow-{component}")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    invocation = invoke(container["command"], _container_env(container))
    assert invocation.subcommand == component
    host, port = invocation.listens_on()
    assert host == "0.0.0.0", f"{component} listens on {host}: the kubelet cannot probe it"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port in ports.values(), f"{component} serves on {port}, declares {ports}"
    probes = {
        k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    for kind, probe in probes.items():
        assert ports.get(probe["port"], probe["port"]) == port, (kind, probe)
        assert probe["path"] in SERVED[component], (kind, probe)
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"


def test_every_container_runs_a_real_okrflow_command_with_valid_settings() -> None:
    images = {i["name"] for i in _kustomization()["images"]}
    for deployment in _kind("Deployment"):
        for container in _containers(deployment):
            assert container["image"] in images, container["name"]
            invoke(container["command"], _container_env(container))


def test_the_worker_migrates_first_and_has_no_more_replicas_than_partitions() -> None:
    worker = _named("Deployment", "okrflow-worker")
    (init,) = worker["spec"]["template"]["spec"]["initContainers"]
    assert init["command"] == ["okrflow", "db", "upgrade"]
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    partitions = invoke(container["command"], _container_env(container)).settings
    assert 1 <= worker["spec"]["replicas"] <= partitions.events_partitions
    # One process per pod: replicas are the scale, the kubelet the supervisor.
    assert partitions.worker_processes == 1
    assert "replicas <= OKRFLOW_EVENTS_PARTITIONS" in (K8S / "worker.yaml").read_text()
    # No surge: at replicas == partitions a surge worker would only add a rebalance a step.
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0


def test_pods_run_as_the_image_user_without_root() -> None:
    dockerfile = (REPO / "Dockerfile").read_text().splitlines()
    (user,) = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    uid, gid = (int(x) for x in user.split(":"))
    for deployment in _kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert (pod["runAsUser"], pod["runAsGroup"]) == (uid, gid)
        for container in _containers(deployment):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_servicemonitor_scrapes_every_service_under_the_prometheus_job_names() -> None:
    (monitor,) = _kind("ServiceMonitor")
    assert monitor["apiVersion"] == MONITORING and monitor["metadata"]["name"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    endpoints = monitor["spec"]["endpoints"]
    assert endpoints and all(e["port"] and e.get("path", "/metrics") for e in endpoints)
    selected = [s for s in _kind("Service") if _selects(selector, s["metadata"]["labels"])]
    scraped = set()
    for service in selected:
        names = {p["name"] for p in service["spec"]["ports"]}
        matching = [e for e in endpoints if e["port"] in names]
        assert len(matching) == 1, f"{service['metadata']['name']}: {matching}"
        scraped.add(service["metadata"]["name"])
    assert {e["port"] for e in endpoints} <= {
        p["name"] for s in selected for p in s["spec"]["ports"]
    }
    # The operator names the job after the Service: the rules and dashboards use these.
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert scraped == {job["job_name"] for job in prometheus["scrape_configs"]}


def _prometheusrule() -> Doc:
    (rule,) = _kind("PrometheusRule")
    return rule


def test_prometheusrule_shape() -> None:
    rule = _prometheusrule()
    assert rule["apiVersion"] == MONITORING and rule["metadata"]["name"]
    groups = rule["spec"]["groups"]
    assert groups and len({g["name"] for g in groups}) == len(groups)
    for group in groups:
        assert group["rules"], group["name"]
        for r in group["rules"]:
            assert ("alert" in r) != ("record" in r), r
            assert isinstance(r["expr"], str) and r["expr"].strip(), r


def test_prometheusrule_is_a_fresh_render_of_the_rules() -> None:
    renderer = _renderer()
    assert (K8S / "prometheusrule.yaml").read_text() == renderer.render(), (
        "stale: run deploy/k8s/render_prometheusrule.py"
    )
    sources = [
        g for p in sorted(RULES.glob("*.yml")) for g in yaml.safe_load(p.read_text())["groups"]
    ]
    assert _prometheusrule()["spec"]["groups"] == sources


def test_the_render_follows_the_rule_files(tmp_path: Path) -> None:
    for path in RULES.glob("*.yml"):
        shutil.copy(path, tmp_path / path.name)
    extra = {"groups": [{"name": "extra", "rules": [{"record": "x:y", "expr": "vector(1)"}]}]}
    (tmp_path / "zz-extra.yml").write_text(yaml.safe_dump(extra))
    rendered = yaml.safe_load(_renderer().render(tmp_path))
    assert rendered["spec"]["groups"][-1] == extra["groups"][0]
    assert rendered["spec"]["groups"][:-1] == _prometheusrule()["spec"]["groups"]


def test_prometheusrule_groups_pass_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool is not installed (Debian package prometheus)")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": _prometheusrule()["spec"]["groups"]}))
    result = subprocess.run([promtool, "check", "rules", str(path)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in _prometheusrule()["spec"]["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout
