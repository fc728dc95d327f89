"""Who listens on a port, read from /proc: this process's own listening socket is found as
this process, a closed one is nobody's."""

from __future__ import annotations

import os
import socket

from okrflow.devkafka.ports import PortHolder, port_holder


def test_a_listening_socket_is_found_with_its_process() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        holder = port_holder(port)
        assert holder is not None and holder.pid == os.getpid()
        assert "not okrflow's broker" in holder.describe()
    assert port_holder(port) is None


def test_a_bound_socket_that_does_not_listen_holds_nothing() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        assert port_holder(bound.getsockname()[1]) is None


def test_a_kafka_broker_is_named_by_its_config() -> None:
    holder = PortHolder(42, "java -Xmx1g -cp /libs/* kafka.Kafka /x/broker-9092/server.properties")
    assert holder.describe() == (
        "another Kafka broker (pid 42, config /x/broker-9092/server.properties)"
    )
    assert PortHolder(None, "").describe() == "a process this user cannot see"
