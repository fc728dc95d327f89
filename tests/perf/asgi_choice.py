"""The intake's ASGI stack, chosen by measurement: Starlette against FastAPI, in one run.

The same minimal handler (read the body, decode it with msgspec, answer 202 with a fixed JSON
body) on each framework, each served by uvicorn on 127.0.0.1 in its own process, under the
same bounded load: `--concurrency` keep-alive connections posting `--requests` pre-encoded
batches of 100 CloudEvents each (the intake benchmark's events), after a warm-up. The client
is a minimal HTTP/1.1 one (RawClient), not httpx: httpx spends more CPU a request than these
servers, and on 2 cores it would measure itself. Frameworks
take turns for `--rounds` rounds; the table shows the median requests/s and the server's CPU
per request. A third row shows FastAPI the way it is usually written (the body declared as
`list[dict[str, Any]]`, parsed and validated by FastAPI and pydantic instead of msgspec).

FastAPI is not a dependency of okrflow: without it installed (`.venv/bin/pip install
fastapi`) only Starlette is measured, and the script says so.

Usage: python -m tests.perf.asgi_choice [--requests N] [--concurrency C] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
from rich.console import Console
from rich.table import Table

from tests.perf.bench import cpu_seconds, make_events
from tests.services import free_port

BATCH_TYPE = "application/cloudevents-batch+json"
ACCEPTED = b'{"accepted":100}'
_decoder = msgspec.json.Decoder()


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def post_events(request: Request) -> Response:
        events = _decoder.decode(await request.body())
        if not isinstance(events, list):
            return Response(b'{"error":"not a batch"}', 400, media_type="application/json")
        return Response(ACCEPTED, 202, media_type="application/json")

    return Starlette(routes=[Route("/v1/events", post_events, methods=["POST"])])


def fastapi_app() -> Any:
    from fastapi import FastAPI, Request, Response

    async def post_events(request: Request) -> Response:
        events = _decoder.decode(await request.body())
        if not isinstance(events, list):
            return Response(b'{"error":"not a batch"}', 400, media_type="application/json")
        return Response(ACCEPTED, 202, media_type="application/json")

    # FastAPI reads the annotations, which `from __future__ import annotations` made strings
    # naming names local to this function: give it the types themselves.
    post_events.__annotations__ = {"request": Request, "return": Response}
    app = FastAPI()
    app.post("/v1/events")(post_events)
    return app


def fastapi_pydantic_app() -> Any:
    from fastapi import Body, FastAPI, Response

    async def post_events(events: list[dict[str, Any]] = Body(...)) -> Response:  # noqa: B008
        return Response(ACCEPTED, 202, media_type="application/json")

    post_events.__annotations__ = {"events": list[dict[str, Any]], "return": Response}
    app = FastAPI()
    app.post("/v1/events")(post_events)
    return app


STACKS = {
    "Starlette + msgspec": "starlette_app",
    "FastAPI + msgspec (Request)": "fastapi_app",
    "FastAPI + pydantic body": "fastapi_pydantic_app",
}


@dataclass
class Round:
    requests_per_s: float
    server_cpu_ms: float  # per request
    client_cpu_ms: float


class RawClient:
    """One keep-alive HTTP/1.1 connection sending one pre-built request over and over: a few
    tens of µs of CPU a request, where httpx spends 1.5 ms (more than these servers), which
    would make the client the bottleneck on a 2-core machine."""

    def __init__(self, port: int, body: bytes) -> None:
        self.port = port
        self.request = (
            f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: {BATCH_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> int:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(self.request)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 30)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await asyncio.wait_for(self.reader.readexactly(length), 30)
        return int(head.split(b" ", 2)[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def load(
    port: int, body: bytes, requests: int, concurrency: int, server_pid: int, limit_s: float
) -> Round:
    clients = [RawClient(port, body) for _ in range(concurrency)]
    try:
        for _ in range(200 // concurrency + 1):  # warm-up
            statuses = await asyncio.gather(*(c.post() for c in clients))
            if any(s != 202 for s in statuses):
                raise RuntimeError(f"warm-up answered {sorted(set(statuses))}")
        left = requests
        deadline = time.monotonic() + limit_s
        done = 0

        async def sender(client: RawClient) -> None:
            nonlocal left, done
            while left > 0 and time.monotonic() < deadline:
                left -= 1
                status = await client.post()
                if status != 202:
                    raise RuntimeError(f"answered {status}")
                done += 1

        server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(sender(c) for c in clients))
        seconds = time.perf_counter() - started
        return Round(
            done / seconds,
            (cpu_seconds(server_pid) - server_cpu) / done * 1000,
            (time.process_time() - client_cpu) / done * 1000,
        )
    finally:
        for client in clients:
            await client.close()


def serve(factory: str, port: int, http: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", f"tests.perf.asgi_choice:{factory}",
         "--host", "127.0.0.1", "--port", str(port), "--http", http, "--loop", "asyncio",
         "--lifespan", "off", "--no-access-log", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_listening(port: int, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1, trust_env=False)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"uvicorn not listening after {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000, help="timed requests per round")
    parser.add_argument("--concurrency", type=int, default=12, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--http", default="h11", help="uvicorn's HTTP protocol (h11, httptools)")
    args = parser.parse_args()
    console = Console(width=160)
    stacks = dict(STACKS)
    if importlib.util.find_spec("fastapi") is None:
        console.print(
            "FastAPI is not installed: measuring Starlette only "
            "(.venv/bin/pip install fastapi to compare)"
        )
        stacks = {k: v for k, v in stacks.items() if not k.startswith("FastAPI")}
    body = b"[" + b",".join(v for _, v in make_events(100)) + b"]"
    results: dict[str, list[Round]] = {name: [] for name in stacks}
    for round_ in range(args.rounds):
        for name, factory in stacks.items():
            port = free_port()
            server = serve(factory, port, args.http)
            try:
                wait_listening(port, server, 30)
                result = asyncio.run(
                    load(port, body, args.requests, args.concurrency, server.pid, 300)
                )
            finally:
                server.terminate()
                server.wait(30)
            results[name].append(result)
            console.print(
                f"round {round_ + 1}: {name}: {result.requests_per_s:,.0f} requests/s, "
                f"server {result.server_cpu_ms:.3f} ms CPU/request"
            )
    table = Table(
        title=(
            f"ASGI stack: POST of {len(body):,} bytes (100 CloudEvents), {args.concurrency} in "
            f"flight, {args.requests:,} requests x {args.rounds} rounds, uvicorn --http "
            f"{args.http}; {os.cpu_count()} CPUs; medians"
        )
    )
    for col in (
        "stack",
        "requests/s",
        "vs Starlette",
        "server CPU ms/request",
        "client CPU ms/req",
    ):
        table.add_column(col, justify="right")
    base = statistics.median(r.requests_per_s for r in results["Starlette + msgspec"])
    for name, rounds in results.items():
        rate = statistics.median(r.requests_per_s for r in rounds)
        table.add_row(
            name,
            f"{rate:,.0f}",
            f"{rate / base:.2f}",
            f"{statistics.median(r.server_cpu_ms for r in rounds):.3f}",
            f"{statistics.median(r.client_cpu_ms for r in rounds):.3f}",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
