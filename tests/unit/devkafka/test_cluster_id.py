"""Cluster ids for the local broker's storage format."""

from __future__ import annotations

import base64
import uuid

import pytest

from okrflow.devkafka import broker
from okrflow.devkafka.broker import new_cluster_id


def test_cluster_ids_are_16_bytes_and_never_start_with_a_dash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 0xf8 encodes to "-" first: the first draw must be rejected, the second kept.
    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(draws))
    cluster_id = new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(b"\x01" * 16).decode().rstrip("=")
    monkeypatch.undo()
    for _ in range(2000):
        cluster_id = new_cluster_id()
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
