"""The one settings object: built once at start-up from `OKRFLOW_*` variables and flags.

Nothing else in okrflow reads `os.environ`.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The local broker's pom.xml, server.properties and log4j2.properties ship inside the package
# (a wheel installs unzipped: a real folder that Maven and the JVM read by path).
BUNDLED_KAFKA_CONFIG = Path(str(files("okrflow") / "devkafka" / "resources"))


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/okrflow (if absolute, as the XDG spec asks), else ~/.cache/okrflow.

    The Kafka jars (~45 MB) and the local broker's state go there, never under the install
    prefix (read-only, or thrown away with the venv), and are shared by every checkout and
    install of the same user: fetched once. The Makefile points OKRFLOW_KAFKA_CACHE_DIR at the
    repo's .cache/kafka instead, which `make clean` removes and the tests reuse.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "okrflow"


class Settings(BaseSettings):
    """Configuration for every okrflow command (environment prefix `OKRFLOW_`)."""

    model_config = SettingsConfigDict(env_prefix="OKRFLOW_", frozen=True, extra="ignore")

    database_url: str = "sqlite:///okrflow.db"
    kafka_bootstrap: str = "127.0.0.1:9092"
    events_topic: str = "okr.events"
    dlq_topic: str = "okr.events.dlq"
    events_partitions: int = Field(default=6, ge=1)
    consumer_group: str = "okrflow"

    # Worker batching: a batch closes at `batch_size` events or after `batch_seconds`.
    batch_size: int = Field(default=5000, ge=1)
    batch_seconds: float = Field(default=0.2, gt=0)
    max_event_bytes: int = Field(default=256 * 1024, ge=1024)
    # Decode and count each batch in a helper process (okrflow.ingest.helper_client), off the GIL
    # the worker's event loop shares with its database thread.
    worker_counting_process: bool = True
    # How long the broker may hold a fetch for partitions without new data. faust fixes it at
    # 1,500 ms; while one fetch is held, partitions that still have data cannot be fetched.
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=10_000)
    # How much data the broker gathers before it answers a fetch (or fetch_max_wait_ms).
    # aiokafka asks for 1 byte: a worker keeping up with a steady stream then fetches a few
    # records at a time, hundreds of times a second, which costs the broker and the worker
    # more CPU than the records do.
    fetch_min_bytes: int = Field(default=64 * 1024, ge=1, le=64 * 1024 * 1024)
    # The invalid-share guard (okrflow.ingest.guard, docs/operations.md), over the last
    # `invalid_window` messages: a shop (Kafka key) whose own share passes `max_invalid_share`
    # (with at least `invalid_min_messages` of its own) is quarantined: logged and counted,
    # never a stop. The worker stops only when the share passes it with any one shop left
    # out (and `invalid_min_messages` left): a bad deploy across shops, or keyless garbage.
    max_invalid_share: float = Field(default=0.5, gt=0, le=1)
    invalid_window: int = Field(default=10_000, ge=1)
    invalid_min_messages: int = Field(default=200, ge=1)
    # (shop, id) pairs are remembered this long to absorb producer retries.
    dedupe_window_seconds: float = Field(default=7 * 24 * 3600, gt=0)
    dedupe_prune_seconds: float = Field(default=60, gt=0)
    # `okrflow backfill`: a runner holds its job this long past its last chunk (another takes
    # it over after), and counts this many messages per transaction.
    backfill_lease_seconds: float = Field(default=30, ge=1)
    backfill_chunk_size: int = Field(default=5000, ge=1, le=100_000)
    # A worker that dies is noticed by the group after this long (>= the broker's 6 s minimum).
    kafka_session_timeout: float = Field(default=10.0, ge=6)
    worker_data_dir: Path = Path(".cache/worker")
    # `okrflow worker` runs this many worker processes in the consumer group (0: one per core,
    # os.cpu_count()); each has its own <worker_data_dir>/process-<i> and metrics port + i.
    worker_processes: int = Field(default=0, ge=0, le=256)
    # A worker asked to stop (SIGTERM, Ctrl-C, its supervisor gone) that is still stopping
    # this long later exits at once (exit 11): nothing is lost, the database's offsets are
    # where the next owner of its partitions resumes.
    worker_stop_seconds: float = Field(default=8.0, gt=0, le=600)
    # The worker's /metrics, /healthz and /readyz (port 0: not served).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)

    exporter_host: str = "127.0.0.1"
    exporter_port: int = Field(default=9464, ge=0, le=65535)
    exporter_refresh_seconds: float = Field(default=2.0, gt=0)
    # The forecast families (okr_key_result_forecast_*, docs/metrics.md), computed in each
    # refresh; false leaves them empty (and spares the refresh their cost).
    exporter_forecasts: bool = True
    # The exporter's pages (docs/pages.md): a shop's pages need one of its intake tokens.
    pages_require_token: bool = False

    # HTTP intake (`okrflow intake`, docs/intake.md).
    intake_host: str = "127.0.0.1"
    intake_port: int = Field(default=8080, ge=0, le=65535)
    # Largest request body; a batch's events are also each held to `max_event_bytes`.
    intake_max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    intake_max_batch_events: int = Field(default=500, ge=1, le=10_000)
    # Requests a second per token (0: no limit), with bursts up to `intake_rate_burst`.
    intake_rate_limit: float = Field(default=0, ge=0)
    intake_rate_burst: int = Field(default=50, ge=1)
    # How long a token's or a webhook secret's lookup is reused (a revocation takes effect
    # within this long).
    intake_credentials_cache_seconds: float = Field(default=2.0, ge=0)
    # The intake's HTTP limits (docs/operations.md, "HTTP limits"): a request's head must
    # arrive within this long of its first byte and its body within this long of its head;
    # past this many open connections a new one gets 503; a connection closed while its
    # client still sends (a 413) is drained for up to this long and this many bytes.
    intake_header_timeout_seconds: float = Field(default=10.0, gt=0)
    intake_body_timeout_seconds: float = Field(default=30.0, gt=0)
    intake_max_connections: int = Field(default=1000, ge=1)
    intake_linger_seconds: float = Field(default=5.0, ge=0)
    intake_linger_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    # The same deadlines and cap for the worker's and the exporter's HTTP server (a thread a
    # connection): /metrics, the probes and the pages.
    ops_http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    ops_http_body_timeout_seconds: float = Field(default=10.0, gt=0)
    ops_http_max_connections: int = Field(default=256, ge=1, le=10_000)

    # Local development Kafka (`okrflow kafka ...`).
    kafka_deploy_dir: Path = BUNDLED_KAFKA_CONFIG
    kafka_cache_dir: Path = Field(default_factory=lambda: user_cache_dir() / "kafka")
    kafka_run_dir: Path | None = None  # default: <kafka_cache_dir>/broker-<port>
    kafka_controller_port: int = 9093
    kafka_start_timeout: float = 90.0

    # Kafka security, used by every client okrflow creates (docs/operations.md).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = None  # CA bundle that signed the brokers' certificates
    kafka_ssl_certfile: Path | None = None  # client certificate (mutual TLS)
    kafka_ssl_keyfile: Path | None = None  # its private key
    kafka_ssl_key_password: SecretStr | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    # Needed (checked below) with the SASL_* protocols.
    kafka_sasl_username: str | None = Field(default=None, validate_default=True)
    kafka_sasl_password: SecretStr | None = Field(default=None, validate_default=True)
    # Topics okrflow creates: replication factor (-1: the broker's default.replication.factor)
    # and extra topic configs, e.g. {"min.insync.replicas": "2"} (JSON in the environment).
    kafka_replication_factor: int = Field(default=-1, ge=-1)
    kafka_topic_configs: dict[str, str] = Field(default_factory=dict)
    # retention.ms of the topics okrflow creates, in days (-1: unlimited), so history stays
    # replayable; an explicit "retention.ms" in kafka_topic_configs wins (docs/operations.md).
    events_retention_days: int = Field(default=400, ge=-1)

    # Start-up: wait this long for Kafka and the database, retrying with backoff.
    startup_deadline_seconds: float = Field(default=60.0, ge=0)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _tls_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        if not value.is_file():
            raise ValueError("no such file")
        protocol = info.data.get("kafka_security_protocol")
        if protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(
                f"TLS is not used with OKRFLOW_KAFKA_SECURITY_PROTOCOL={protocol}: "
                "set it to SSL or SASL_SSL"
            )
        if info.field_name == "kafka_ssl_keyfile" and info.data.get("kafka_ssl_certfile") is None:
            raise ValueError("a key needs its certificate: set OKRFLOW_KAFKA_SSL_CERTFILE too")
        return value

    @field_validator("kafka_sasl_username", "kafka_sasl_password")
    @classmethod
    def _sasl_credential(cls, value: object, info: ValidationInfo) -> object:
        protocol = info.data.get("kafka_security_protocol", "")
        secret = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not secret and str(protocol).startswith("SASL_"):
            raise ValueError(f"needed with OKRFLOW_KAFKA_SECURITY_PROTOCOL={protocol}")
        return value

    @field_validator("kafka_replication_factor")
    @classmethod
    def _replication(cls, value: int) -> int:
        if value == 0:
            raise ValueError("use -1 (the broker's default.replication.factor) or 1 and up")
        return value

    @field_validator("events_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value == 0:
            raise ValueError("use -1 (unlimited) or 1 and up (days)")
        return value

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.rsplit(":", 1)[1])


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (e.g. from CLI flags) on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
