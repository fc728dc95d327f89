"""Connection options shared by every Kafka client okrflow creates (admin, producers, the
worker's faust app and its consumer): the bootstrap servers and the TLS/SASL settings.

TLS contexts are aiokafka's (`create_ssl_context`: hostname checking on, the system's CAs
unless `kafka_ssl_cafile` names others); faust gets the same settings as its own credentials
objects, which it turns into the same aiokafka options for its consumer and producer.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Protocol

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.helpers import create_ssl_context
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.failures import one_line
from okrflow.settings import Settings


class _NoKeyPassword(Exception):
    pass


def uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (None otherwise): the brokers' CA, and the client
    certificate and key for mutual TLS when they are set."""
    if not uses_tls(settings):
        return None
    secret = settings.kafka_ssl_key_password

    def password() -> str:
        # Without this, OpenSSL would prompt on the terminal for an encrypted key's password.
        if secret is None:
            raise _NoKeyPassword
        return secret.get_secret_value()

    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            password=password,
        )
    except _NoKeyPassword:
        raise OperatorError(
            ExitCode.USAGE,
            "the TLS key is encrypted: set OKRFLOW_KAFKA_SSL_KEY_PASSWORD",
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise OperatorError(
            ExitCode.USAGE,
            "cannot load the TLS files (OKRFLOW_KAFKA_SSL_CAFILE, _CERTFILE, _KEYFILE, "
            f"_KEY_PASSWORD): {exc}",
        ) from None
    return context


def _sasl_password(settings: Settings) -> str:
    password = settings.kafka_sasl_password
    return password.get_secret_value() if password is not None else ""


def client_kwargs(settings: Settings) -> dict[str, object]:
    """Keyword arguments for any aiokafka client (AIOKafkaProducer, AIOKafkaConsumer, admin)."""
    kwargs: dict[str, object] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if uses_sasl(settings):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = _sasl_password(settings)
    return kwargs


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The faust app's `broker_credentials`: the same options for faust's consumer, producer
    and topic creation (faust maps them to aiokafka's, SCRAM included)."""
    context = ssl_context(settings)
    if uses_sasl(settings):
        return SASLCredentials(
            username=settings.kafka_sasl_username,
            password=_sasl_password(settings),
            ssl_context=context,  # SASL_SSL when set, SASL_PLAINTEXT when None
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return SSLCredentials(context)
    return None


class _Startable(Protocol):
    async def start(self) -> None: ...


async def connect_failure(settings: Settings) -> str | None:
    """Why connecting (TLS, SASL) to the first bootstrap server fails; None if it does not."""
    options = client_kwargs(settings)
    del options["bootstrap_servers"]
    host, port, _ = collect_hosts(settings.kafka_bootstrap, randomize=False)[0]
    try:
        connection = await asyncio.wait_for(
            create_conn(host, port, request_timeout_ms=10_000, **options), 15
        )
    except (OSError, KafkaError, TimeoutError) as exc:
        return one_line(exc)
    connection.close()
    return None


async def start_client(client: _Startable, settings: Settings) -> None:
    """`client.start()`; when it cannot bootstrap, the error says why (e.g. the broker's SASL
    authentication failure): aiokafka only logs the reason, and raises "Unable to bootstrap
    from [...]"."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        reason = await connect_failure(settings)
        if reason is None:
            raise
        raise KafkaConnectionError(reason) from exc


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    """An admin client (not started) with okrflow's connection options."""
    return AIOKafkaAdminClient(**client_kwargs(settings))
