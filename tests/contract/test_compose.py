"""deploy/docker-compose.yml works as shipped (no Docker engine here): every reference in it
resolves. Services reach each other by name, not 127.0.0.1; long-running services restart and
have healthchecks on paths their process serves, at the port its settings give it; commands
and OKRFLOW_* variables are ones okrflow accepts; mounted files exist; Prometheus scrapes each
process where it listens; Grafana finds Prometheus and the dashboards."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.contract.okrflow_refs import ROUTE_SOURCES, SERVED, Invocation, intake_paths, invoke

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
ONE_SHOT = "no"
RESTARTING = {"always", "unless-stopped", "on-failure"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
LOOPBACK = re.compile(r"\b(127\.0\.0\.1|localhost)\b")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _okrflow_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _services().items() if _command(s)[:1] == ["okrflow"]}


def _invocation(name: str) -> Invocation:
    service = _services()[name]
    return invoke(_command(service), _env(service))


def _container_ports(service: dict[str, Any]) -> set[int]:
    """Ports published ("[ip:]host:container") or exposed, on the container side."""
    ports = {int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])}
    return ports | {int(p) for p in service.get("expose", [])}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {target: spec["condition"] for target, spec in depends.items()}


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, container path) of each volume; bind mounts have a relative source."""
    return [tuple(str(v).split(":")[:2]) for v in service.get("volumes", [])]  # type: ignore[misc]


def _host_path(service: dict[str, Any], container_path: str) -> Path:
    """The file on this machine a bind mount shows at `container_path`."""
    for source, target in _mounts(service):
        if source.startswith(".") and (
            container_path == target or container_path.startswith(target.rstrip("/") + "/")
        ):
            return (DEPLOY / source / container_path[len(target) :].lstrip("/")).resolve()
    raise AssertionError(f"nothing mounted at {container_path}")


def _flag(service: dict[str, Any], name: str) -> str | None:
    for arg in _command(service):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def _hostport(address: str, default_port: int | None = None) -> tuple[str, int]:
    parts = urlsplit(address if "//" in address else f"//{address}")
    port = parts.port or default_port
    assert parts.hostname and port, address
    return parts.hostname, port


def test_depends_on_targets_exist_with_conditions_they_can_meet() -> None:
    services = _services()
    for name, service in services.items():
        for target, condition in _depends_on(service).items():
            assert target in services, f"{name} depends on unknown {target}"
            assert condition in CONDITIONS, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}'s health"
            if condition == "service_completed_successfully":
                assert services[target].get("restart") == ONE_SHOT, target


def test_long_running_services_restart_and_have_healthchecks() -> None:
    services = _services()
    one_shot = {t for s in services.values() for t, condition in _depends_on(s).items()
                if condition == "service_completed_successfully"}  # fmt: skip
    assert one_shot, "the schema migration runs before the okrflow processes"
    for name, service in services.items():
        if name in one_shot:
            continue
        assert service.get("restart") in RESTARTING, f"{name} has no restart policy"
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"


def test_the_schema_is_migrated_once_before_every_okrflow_process() -> None:
    okrflow = _okrflow_services()
    (migrate,) = [n for n, s in okrflow.items() if _command(s)[1:] == ["db", "upgrade"]]
    assert _invocation(migrate).subcommand == "db"
    assert _depends_on(okrflow[migrate]).get("postgres") == "service_healthy"
    for name in set(okrflow) - {migrate}:
        assert _depends_on(okrflow[name]).get(migrate) == "service_completed_successfully", name


def test_images_and_build() -> None:
    services = _services()
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"].startswith("postgres:")
    images = set()
    for name, service in _okrflow_services().items():
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).is_file(), name
        images.add(service["image"])
    assert len(images) == 1, f"one okrflow image, built once: {images}"


def test_mounted_files_exist_and_named_volumes_are_declared() -> None:
    declared = set(_compose().get("volumes") or {})
    for name, service in _services().items():
        for source, _target in _mounts(service):
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"


@pytest.mark.parametrize("name", sorted(_okrflow_services()))
def test_okrflow_commands_and_settings_are_real(name: str) -> None:
    """The command parses with okrflow's parser; every OKRFLOW_* variable is a setting and
    okrflow accepts its value; other services are reached by name."""
    invocation = _invocation(name)
    settings = invocation.settings
    services = _services()
    for value in _env(services[name]).values():
        assert not LOOPBACK.search(value), f"{name}: {value} (use the service name)"
    kafka_host, kafka_port = _hostport(settings.kafka_bootstrap)
    assert kafka_host in services
    advertised = _env(services[kafka_host])["KAFKA_ADVERTISED_LISTENERS"]
    assert f"://{kafka_host}:{kafka_port}" in advertised
    database = urlsplit(settings.database_url)
    assert database.hostname in services
    postgres = _env(services[database.hostname])
    assert (database.username, database.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert (database.port or 5432) == 5432


@pytest.mark.parametrize(
    "name", sorted(n for n, s in _okrflow_services().items() if _command(s)[1] in SERVED)
)
def test_servers_listen_where_their_healthcheck_and_ports_say(name: str) -> None:
    service = _services()[name]
    invocation = _invocation(name)
    host, port = invocation.listens_on()
    assert host == "0.0.0.0", f"{name} listens on {host}: unreachable from other containers"
    assert invocation.ports() <= _container_ports(service), f"{name} serves on {port}"
    # Ready: every process (a worker's N processes each on its own port) answers /readyz.
    urls = re.findall(r"https?://[^\s'\"]+", " ".join(service["healthcheck"]["test"]))
    checks = [urlsplit(url) for url in urls]
    assert {(c.hostname, c.port) for c in checks} == {("127.0.0.1", p) for p in invocation.ports()}
    for check in checks:
        assert check.path in SERVED[invocation.subcommand], check
        assert check.path == "/readyz"


def test_kafka_listeners_are_consistent() -> None:
    env = _env(_services()["kafka"])
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = {p.split("://")[0]: p for p in env["KAFKA_LISTENERS"].split(",")}
    advertised = {p.split("://")[0] for p in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert set(listeners) <= set(protocols)
    assert advertised <= set(listeners)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")[1]
    controller_port = listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]].rsplit(":", 1)[1]
    assert voter == f"kafka:{controller_port}"
    # The host reaches the broker on the port its HOST listener advertises.
    host_listener = next(
        a for a in env["KAFKA_ADVERTISED_LISTENERS"].split(",") if a.startswith("HOST://")
    )
    published = {
        int(p.rsplit(":", 2)[-2]): int(p.rsplit(":", 1)[1]) for p in _services()["kafka"]["ports"]
    }
    host_port = int(host_listener.rsplit(":", 1)[1])
    assert published[host_port] == int(listeners["HOST"].rsplit(":", 1)[1])


def _prometheus() -> tuple[dict[str, Any], Path]:
    service = _services()["prometheus"]
    config_path = _flag(service, "config.file")
    assert config_path
    path = _host_path(service, config_path)
    assert path == DEPLOY / "prometheus" / "prometheus.yml", "the file the tests check"
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return config, path


def _job_targets(job: dict[str, Any]) -> list[tuple[str, int]]:
    targets = [_hostport(t) for c in job.get("static_configs", []) for t in c["targets"]]
    for sd in job.get("dns_sd_configs", []):
        assert sd.get("type", "SRV") == "A", "A records carry no port: give it"
        targets += [(n, int(sd["port"])) for n in sd["names"]]
    return targets


def test_prometheus_scrapes_every_okrflow_server_where_it_listens() -> None:
    config, path = _prometheus()
    services = _services()
    for rule_file in config["rule_files"]:
        assert (path.parent / rule_file).is_file(), rule_file
        assert (path.parent / rule_file).parent == DEPLOY / "prometheus" / "rules"
    scraped: dict[str, set[int]] = {}
    for job in config["scrape_configs"]:
        for host, port in _job_targets(job):
            assert host in services, f"{job['job_name']}: {host} is not a compose service"
            invocation = _invocation(host)
            assert port in invocation.ports(), f"{job['job_name']}: {host}:{port}"
            assert job.get("metrics_path", "/metrics") in SERVED[invocation.subcommand]
            # The rules and dashboards select jobs by these names.
            assert job["job_name"] == f"okrflow-{invocation.subcommand}"
            scraped.setdefault(host, set()).add(port)
    servers = {n for n in _okrflow_services() if _invocation(n).subcommand in SERVED}
    assert set(scraped) == servers
    for host, ports in scraped.items():  # each of a worker's processes too
        assert ports == _invocation(host).ports(), host


def test_prometheus_sends_alerts_to_the_alertmanager_service() -> None:
    config, _ = _prometheus()
    services = _services()
    (target,) = [t for am in config["alerting"]["alertmanagers"]
                 for c in am["static_configs"] for t in c["targets"]]  # fmt: skip
    host, port = _hostport(target)
    assert host == "alertmanager" and host in services
    listen = _flag(services[host], "web.listen-address") or ":9093"
    assert port == int(listen.rsplit(":", 1)[1])
    config_file = _flag(services[host], "config.file")
    assert config_file
    assert _host_path(services[host], config_file) == DEPLOY / "alertmanager" / "alertmanager.yml"


def test_grafana_finds_prometheus_and_the_dashboards() -> None:
    grafana = _services()["grafana"]
    provisioning = _host_path(grafana, "/etc/grafana/provisioning")
    assert provisioning == DEPLOY / "grafana" / "provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "okrflow.yml").read_text())[
        "datasources"
    ]
    host, port = _hostport(datasource["url"])
    prometheus = _services()["prometheus"]
    assert host == "prometheus"
    assert port == int((_flag(prometheus, "web.listen-address") or ":9090").rsplit(":", 1)[1])
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "okrflow.yml").read_text())[
        "providers"
    ]
    dashboards = _host_path(grafana, provider["options"]["path"])
    assert dashboards == DEPLOY / "grafana" / "dashboards"
    assert sorted(dashboards.glob("*.json"))


def test_nothing_between_services_points_at_the_loopback() -> None:
    config, _ = _prometheus()
    datasources = (DEPLOY / "grafana" / "provisioning" / "datasources" / "okrflow.yml").read_text()
    addresses = [datasources, yaml.safe_dump(config["scrape_configs"]),
                 yaml.safe_dump(config["alerting"])]  # fmt: skip
    for text in addresses:
        assert not LOOPBACK.search(text), text


def test_the_served_paths_are_the_processes_own() -> None:
    """The paths deploy/ probes and scrapes (okrflow_refs.SERVED) are routes okrflow declares."""
    for subcommand, source in ROUTE_SOURCES.items():
        code = source.read_text()
        missing = [p for p in SERVED[subcommand] if f'"{p}"' not in code]
        assert not missing, f"{subcommand}: no route for {missing} in {source.name}"
    assert SERVED["intake"] <= intake_paths()
    assert set(SERVED) == set(ROUTE_SOURCES) | {"intake"}
