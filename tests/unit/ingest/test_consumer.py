"""The worker's consumer asks the broker for okrflow's fetch wait (not faust's fixed 1.5 s) and
minimum fetch size (not aiokafka's 1 byte)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from okrflow.ingest.app import build_app
from okrflow.ingest.consumer import BatchConsumer, FetchTunedConsumerThread
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.settings import Settings
from okrflow.store.engine import make_engine


def test_worker_consumer_uses_the_configured_fetch_wait_and_size(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        kafka_bootstrap="127.0.0.1:9",
        worker_data_dir=tmp_path / "worker",
        fetch_max_wait_ms=42,
        fetch_min_bytes=4242,
    )

    async def create() -> tuple[int, int]:
        app = build_app(
            settings, make_engine(settings.database_url), PipelineMetrics(CollectorRegistry())
        )
        consumer = app.consumer
        assert isinstance(consumer, BatchConsumer)
        thread = consumer._thread
        assert isinstance(thread, FetchTunedConsumerThread)
        kafka_consumer = thread._create_worker_consumer(app.transport)
        wait: int = kafka_consumer._fetch_max_wait_ms
        size: int = kafka_consumer._fetch_min_bytes
        return wait, size

    assert asyncio.run(create()) == (42, 4242)
