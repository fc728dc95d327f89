"""okrflow against a broker that takes only TLS and SASL: SCRAM-SHA-512 over TLS for the
emitter and the worker (its faust consumer and producer, the admin client, the dead-letter
writer), mutual TLS for a client certificate, and one line on stderr for wrong credentials.

The broker (a real Kafka, KRaft) has a SASL_SSL listener (clients and inter-broker), an SSL
listener that requires a client certificate, and the controller on PLAINTEXT: no client
listener takes plain text. Certificates are made here (tests.tlsfiles); SCRAM users are
added when the storage is formatted.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from okrflow.devkafka import LocalKafka, LocalKafkaError
from okrflow.kafkaclient import admin_client, client_kwargs
from okrflow.settings import Settings
from okrflow.topics import TopicLayoutError, ensure_topics
from tests.factories import clients_plan, cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.integration.streams import applied_messages, totals
from tests.services import free_port, unavailable, wait_for
from tests.tlsfiles import TlsFiles, make_tls_files

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "alice", "alice-Secret-7d1f"
BROKER_USER, BROKER_PASSWORD = "broker", "broker-Secret-93ac"
MECHANISM = "SCRAM-SHA-512"
N_EVENTS = 120


@dataclass(frozen=True)
class SecureKafka:
    sasl_bootstrap: str  # SASL_SSL with SCRAM-SHA-512
    mtls_bootstrap: str  # SSL, client certificate required
    tls: TlsFiles

    def sasl_settings(self, password: str = PASSWORD) -> dict[str, str | Path]:
        """okrflow settings (as for pipeline_env) for the SASL_SSL listener."""
        return {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_ssl_cafile": self.tls.ca,
            "kafka_sasl_mechanism": MECHANISM,
            "kafka_sasl_username": USER,
            "kafka_sasl_password": password,
        }

    def mtls_settings(self) -> dict[str, str | Path]:
        return {
            "kafka_security_protocol": "SSL",
            "kafka_ssl_cafile": self.tls.ca,
            "kafka_ssl_certfile": self.tls.client_cert,
            "kafka_ssl_keyfile": self.tls.client_key,
            "kafka_ssl_key_password": self.tls.client_key_password,
        }


def _scram_user(name: str, password: str) -> tuple[str, str]:
    return "--add-scram", f"{MECHANISM}=[name={name},password={password}]"


def _broker_properties(
    tls: TlsFiles, port: int, mtls_port: int, controller_port: int
) -> dict[str, str]:
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{BROKER_USER}" password="{BROKER_PASSWORD}";'
    )
    return {
        "listeners": (
            f"SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{mtls_port},"
            f"CONTROLLER://127.0.0.1:{controller_port}"
        ),
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{mtls_port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(tls.server_keystore),
        "ssl.keystore.password": tls.server_keystore_password,
        "ssl.key.password": tls.server_keystore_password,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca),
        "auto.create.topics.enable": "false",
    }


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    if shutil.which("java") is None:
        unavailable("java is not installed (needed for the Kafka broker)")
    run_dir = tmp_path_factory.mktemp("secure-kafka")
    tls = make_tls_files(run_dir / "tls")
    port, mtls_port, controller_port = free_port(), free_port(), free_port()
    secure = SecureKafka(f"127.0.0.1:{port}", f"127.0.0.1:{mtls_port}", tls)
    probe = client_kwargs(_settings(secure.sasl_bootstrap, **secure.sasl_settings()))
    probe.pop("bootstrap_servers")
    kafka = LocalKafka(
        deploy_dir=Settings.model_fields["kafka_deploy_dir"].get_default(call_default_factory=True),
        cache_dir=REPO / ".cache" / "kafka",
        run_dir=run_dir,
        port=port,
        controller_port=controller_port,
        heap="512m",
        extra_properties=tuple(_broker_properties(tls, port, mtls_port, controller_port).items()),
        format_args=(*_scram_user(USER, PASSWORD), *_scram_user(BROKER_USER, BROKER_PASSWORD)),
        probe_options=tuple(probe.items()),
    )
    try:
        kafka.start(timeout=120)
    except LocalKafkaError as exc:
        unavailable(f"the TLS/SASL Kafka did not start: {exc}")
    try:
        yield secure
    finally:
        kafka.stop()


def _settings(bootstrap: str, **more: str | Path) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, **more)  # type: ignore[arg-type]


async def _topic_facts(settings: Settings, topic: str) -> tuple[list[int], dict[str, str]]:
    """Replica counts of the topic's partitions, and its non-default configs."""
    admin = admin_client(settings)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        replicas = sorted(len(p["replicas"]) for p in described[0]["partitions"])
        response = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = response[0].resources[0][4]
        configs = {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()
    return replicas, configs


def test_worker_counts_events_through_sasl_ssl_scram(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'okrflow.db'}"
    env = pipeline_env(
        secure_kafka.sasl_bootstrap, database_url, tmp_path, **secure_kafka.sasl_settings(),
        kafka_topic_configs=json.dumps({"retention.ms": "7200000"}),
        events_partitions=3, log_level="DEBUG",
    )  # fmt: skip
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    shops = ("salone-bella", "tiktok-studio")
    events = [
        cloud_event(f"ev-{i}", event_type="customer.created", shop=shops[i % 2])
        for i in range(N_EVENTS)
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    plans = []
    for shop in shops:
        plans.append(tmp_path / f"{shop}.yaml")
        plans[-1].write_text(clients_plan(shop))
    applied = okrflow(env, "apply", *map(str, plans))
    assert applied.returncode == 0, applied.stderr

    log = tmp_path / "worker.log"
    with running(env, "worker", log=log) as worker:
        emitted = okrflow(env, "emit", str(tmp_path / "events.jsonl"))
        assert emitted.returncode == 0, emitted.stderr
        assert f"sent {N_EVENTS} events" in emitted.stdout
        wait_for(
            lambda: applied_messages(database_url, topic),
            lambda n: n >= N_EVENTS or worker.poll() is not None,
            timeout=120,
            what=f"{N_EVENTS} applied messages (worker log: {log})",
        )
        assert worker.poll() is None, log.read_text()[-3000:]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, log.read_text()[-3000:]

    assert applied_messages(database_url, topic) == N_EVENTS
    assert totals(database_url) == {
        (shop, "customer.created"): sum(1 for e in events if e["shop"] == shop) for shop in shops
    }
    progress = okrflow(env, "progress", "--format", "json")
    assert progress.returncode == 0, progress.stderr
    assert str(N_EVENTS // 2) in progress.stdout
    worker_log = log.read_text()
    assert PASSWORD not in worker_log + emitted.stdout + emitted.stderr

    # The topics: replication factor -1 (the broker's default.replication.factor, 1 on one
    # node) and the settings' topic configs; the DLQ keeps its larger max.message.bytes.
    settings = _settings(secure_kafka.sasl_bootstrap, **secure_kafka.sasl_settings())
    replicas, configs = asyncio.run(_topic_facts(settings, topic))
    assert replicas == [1, 1, 1]
    assert configs["retention.ms"] == "7200000"
    _, dlq_configs = asyncio.run(_topic_facts(settings, env["OKRFLOW_DLQ_TOPIC"]))
    assert dlq_configs["retention.ms"] == "7200000"
    assert dlq_configs["max.message.bytes"] == str(4 * 1024 * 1024)


def test_wrong_password_is_one_line_naming_the_broker(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    wrong = "not-" + PASSWORD
    env = pipeline_env(
        secure_kafka.sasl_bootstrap, f"sqlite:///{tmp_path / 'okrflow.db'}", tmp_path,
        **secure_kafka.sasl_settings(password=wrong), startup_deadline_seconds=3,
    )  # fmt: skip
    assert okrflow(env, "db", "upgrade").returncode == 0
    for command in (("worker",), ("emit", "/dev/null")):
        result = okrflow(env, *command, timeout=120)
        assert result.returncode == 6, result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        assert wrong not in result.stderr + result.stdout
        # Lines before the last are the start-up wait's, one per attempt (okrflow.ops.startup).
        lines = result.stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith("okrflow ")]
        assert errors == lines[-1:], result.stderr
        assert secure_kafka.sasl_bootstrap in errors[0]
        assert "SaslAuthenticationFailed" in errors[0], errors[0]


def test_emit_with_a_client_certificate(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    env = pipeline_env(
        secure_kafka.mtls_bootstrap, f"sqlite:///{tmp_path / 'okrflow.db'}", tmp_path,
        **secure_kafka.mtls_settings(), startup_deadline_seconds=3,
    )  # fmt: skip
    events = [json.dumps(cloud_event(f"m-{i}")) for i in range(10)]
    (tmp_path / "events.jsonl").write_text("\n".join(events) + "\n")
    emitted = okrflow(env, "emit", str(tmp_path / "events.jsonl"))
    assert emitted.returncode == 0, emitted.stderr
    assert "sent 10 events" in emitted.stdout

    # Without the certificate the broker hangs up; with an unknown CA the client does.
    for drop in (("OKRFLOW_KAFKA_SSL_CERTFILE", "OKRFLOW_KAFKA_SSL_KEYFILE"), ()):
        changed = {k: v for k, v in env.items() if k not in drop}
        if not drop:
            changed["OKRFLOW_KAFKA_SSL_CAFILE"] = str(secure_kafka.tls.other_ca)
        refused = okrflow(changed, "emit", str(tmp_path / "events.jsonl"))
        assert refused.returncode == 6, refused.stderr
        assert "Traceback" not in refused.stderr
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith(f"okrflow emit: cannot reach Kafka at {secure_kafka.mtls_bootstrap}")


def test_a_replication_factor_the_cluster_cannot_place_is_one_clear_error(
    kafka_bootstrap: str,
) -> None:
    run = os.urandom(4).hex()
    settings = _settings(
        kafka_bootstrap, events_topic=f"rf-{run}", dlq_topic=f"rf-{run}.dlq",
        kafka_replication_factor="2",
    )  # fmt: skip
    with pytest.raises(TopicLayoutError, match=f"rf-{run}: InvalidReplicationFactorError"):
        asyncio.run(ensure_topics(settings))
