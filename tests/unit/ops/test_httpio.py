"""Reading against whole deadlines: trickled bytes do not extend a head's deadline."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest

from okrflow.ops.http import OpsLimits, ops_limits
from okrflow.ops.httpio import MAX_HEAD_BYTES, DeadlineReader, HeadTooLarge, read_head
from okrflow.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_a_head_trickled_in_time_reads_whole(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    clock = Clock()
    reader = DeadlineReader(server, clock)
    reader.expect("request head", 10)
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody")
    assert read_head(io.BufferedReader(reader)) == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def test_each_byte_does_not_restart_the_deadline(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    clock = Clock()
    reader = DeadlineReader(server, clock)
    reader.expect("request head", 10)
    rfile = io.BufferedReader(reader, buffer_size=1)
    for byte in b"GET / H":  # read at 100, 101.5, ... 109: each in time
        client.send(bytes([byte]))
        assert rfile.read(1) == bytes([byte])
        clock.now += 1.5  # each byte well within a per-read timeout of 10 s
    with pytest.raises(TimeoutError, match="request head not received within 10 s"):
        rfile.read(1)


def test_idle_then_head_counts_from_the_first_byte(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    clock = Clock()
    reader = DeadlineReader(server, clock)
    reader.idle(30, head_seconds=2)
    clock.now += 25  # idle within the keep-alive timeout
    client.send(b"G")
    rfile = io.BufferedReader(reader, buffer_size=1)
    assert rfile.read(1) == b"G" and reader.what == "request head" and reader.started
    clock.now += 2.5
    with pytest.raises(TimeoutError, match="request head not received within 2 s"):
        rfile.read(1)


def test_a_real_wait_ends_at_the_deadline(pair: tuple[socket.socket, socket.socket]) -> None:
    server, _ = pair
    reader = DeadlineReader(server)
    reader.expect("request body", 0.2)
    with pytest.raises(TimeoutError, match=r"request body not received within 0\.2 s"):
        reader.readinto(bytearray(10))


def test_read_head_end_of_stream_and_size_limit() -> None:
    assert read_head(io.BytesIO(b"")) == b""
    assert read_head(io.BytesIO(b"GET / HTTP/1.1\r\nHost")) == b""
    assert read_head(io.BytesIO(b"GET / HTTP/1.1\nHost: x\n\n")) == b"GET / HTTP/1.1\nHost: x\n\n"
    with pytest.raises(HeadTooLarge):
        read_head(io.BytesIO(b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n"))


def test_the_limits_defaults_are_the_settings_defaults() -> None:
    assert ops_limits(Settings(_env_file=None)) == OpsLimits()
