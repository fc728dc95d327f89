"""Kafka connection options from the settings: TLS, SASL, faust's credentials, topic layout."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr, ValidationError

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.kafkaclient import client_kwargs, faust_credentials, ssl_context
from okrflow.settings import Settings
from okrflow.topics import DLQ_MAX_MESSAGE_BYTES, new_topic, topic_configs
from tests.tlsfiles import TlsFiles, make_tls_files


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def settings(**values: object) -> Settings:
    return Settings(kafka_bootstrap="broker-1:9093", **values)  # type: ignore[arg-type]


def test_plaintext_is_only_the_bootstrap() -> None:
    plain = settings()
    assert client_kwargs(plain) == {
        "bootstrap_servers": "broker-1:9093",
        "security_protocol": "PLAINTEXT",
    }
    assert ssl_context(plain) is None
    assert faust_credentials(plain) is None


def test_sasl_ssl_scram(tls: TlsFiles) -> None:
    scram = settings(
        kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=tls.ca,
        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="alice",
        kafka_sasl_password="s3cret",
    )  # fmt: skip
    kwargs = client_kwargs(scram)
    context = kwargs.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "okrflow test CA"),),)
    ]
    assert kwargs == {
        "bootstrap_servers": "broker-1:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": "s3cret",
    }
    # faust turns its credentials into the same aiokafka options for its consumer/producer.
    credentials = faust_credentials(scram)
    assert isinstance(credentials, SASLCredentials)
    assert "s3cret" not in repr(credentials)
    auth = dict(credentials_to_aiokafka_auth(credentials))
    assert isinstance(auth.pop("ssl_context"), ssl.SSLContext)
    assert auth == {k: v for k, v in kwargs.items() if k != "bootstrap_servers"}


def test_sasl_plaintext_has_no_tls() -> None:
    plain_sasl = settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="bob",
        kafka_sasl_password="pw",
    )  # fmt: skip
    assert "ssl_context" not in client_kwargs(plain_sasl)
    credentials = faust_credentials(plain_sasl)
    assert isinstance(credentials, SASLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SASL_PLAINTEXT"
    assert credentials_to_aiokafka_auth(credentials)["sasl_mechanism"] == "PLAIN"


def test_mutual_tls_loads_the_client_certificate(tls: TlsFiles) -> None:
    mtls = settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=tls.ca,
        kafka_ssl_certfile=tls.client_cert, kafka_ssl_keyfile=tls.client_key,
        kafka_ssl_key_password=tls.client_key_password,
    )  # fmt: skip
    assert isinstance(ssl_context(mtls), ssl.SSLContext)
    credentials = faust_credentials(mtls)
    assert isinstance(credentials, SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"
    # The key is encrypted: no password (never a prompt on the terminal) or a wrong one.
    with pytest.raises(OperatorError, match="set OKRFLOW_KAFKA_SSL_KEY_PASSWORD"):
        ssl_context(mtls.model_copy(update={"kafka_ssl_key_password": None}))
    wrong = mtls.model_copy(update={"kafka_ssl_key_password": SecretStr("nope")})
    with pytest.raises(OperatorError, match="cannot load the TLS files") as raised:
        ssl_context(wrong)
    assert raised.value.code == ExitCode.USAGE


def test_password_never_shown() -> None:
    s = settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="alice",
        kafka_sasl_password="hunter2", kafka_ssl_key_password="key-pass",
    )  # fmt: skip
    assert "hunter2" not in repr(s) and "hunter2" not in str(s)
    assert "key-pass" not in repr(s)


@pytest.mark.parametrize(
    ("values", "setting", "says"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "kafka_sasl_username", "needed with"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "a"},
            "kafka_sasl_password",
            "needed with",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/no/such/ca.pem"},
            "kafka_ssl_cafile",
            "no such file",
        ),
        ({"kafka_replication_factor": 0}, "kafka_replication_factor", "-1"),
    ],
)
def test_bad_security_settings_name_the_setting(
    values: dict[str, object], setting: str, says: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        settings(**values)
    errors = {str(e["loc"][0]): e["msg"] for e in raised.value.errors()}
    assert setting in errors and says in errors[setting], errors


def test_tls_files_need_a_tls_protocol_and_a_key_its_certificate(tls: TlsFiles) -> None:
    with pytest.raises(ValidationError, match="set it to SSL or SASL_SSL"):
        settings(kafka_ssl_cafile=tls.ca)
    with pytest.raises(ValidationError, match="OKRFLOW_KAFKA_SSL_CERTFILE"):
        settings(kafka_security_protocol="SSL", kafka_ssl_keyfile=tls.client_key)


def test_topic_layout_from_settings(tmp_path: Path) -> None:
    s = settings(
        kafka_replication_factor=3,
        kafka_topic_configs={"min.insync.replicas": "2", "max.message.bytes": "1000"},
    )
    configs = topic_configs(s)
    retention = {"retention.ms": str(400 * 24 * 3600 * 1000)}  # events_retention_days' default
    assert configs[s.events_topic] == {
        **retention,
        "min.insync.replicas": "2",
        "max.message.bytes": "1000",
    }
    assert configs[s.dlq_topic] == {
        **retention,
        "min.insync.replicas": "2",
        "max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES),
    }
    topic = new_topic(s.events_topic, s, configs[s.events_topic])
    assert (topic.replication_factor, topic.num_partitions) == (3, s.events_partitions)
    default = new_topic(s.events_topic, settings(), {})
    assert default.replication_factor == -1 and default.replica_assignments == {}
