"""Connection options shared by every Kafka client okrflow creates (admin, producers, the
worker's consumer): the bootstrap servers and the TLS/SASL settings."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from okrflow.settings import Settings


def client_kwargs(settings: Settings) -> dict[str, object]:
    """Keyword arguments for any aiokafka client (AIOKafkaProducer, AIOKafkaConsumer, admin)."""
    return {"bootstrap_servers": settings.kafka_bootstrap}


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    """An admin client (not started) with okrflow's connection options."""
    return AIOKafkaAdminClient(**client_kwargs(settings))
