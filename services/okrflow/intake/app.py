"""The intake's HTTP routes (Starlette): events and webhooks in, progress out, health, metrics.

Chosen over FastAPI by measurement (docs/intake.md): the routes take raw bodies in three
content types and validate them with the worker's own msgspec decoder, so FastAPI's pydantic
layer would only add per-request work; the OpenAPI document is built in okrflow.intake.openapi.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from okrflow.events import CloudEvent, decode_event
from okrflow.events.envelope import SHOP_PATTERN
from okrflow.intake.binding import (
    Problem,
    TooManyEvents,
    UnsupportedMediaType,
    parse_events,
)
from okrflow.intake.metrics import IntakeMetrics
from okrflow.intake.ratelimit import RateLimiter
from okrflow.intake.webhooks import PLATFORMS, PayloadError, SignatureError
from okrflow.jsontypes import JsonObject

_SHOP = re.compile(SHOP_PATTERN)
Handler = Callable[[Request], Awaitable[Response]]


class EventSink(Protocol):
    async def send_all(self, messages: Sequence[tuple[bytes, bytes]]) -> None: ...
    async def reachable(self, timeout: float) -> bool: ...


@dataclass(frozen=True)
class IntakeParts:
    """What the routes need, injected (tests pass their own)."""

    sink: EventSink
    authenticate: Callable[[str], str | None]  # token -> its shop (may block: run in a thread)
    webhook_secret: Callable[[str, str], str | None]  # (shop, platform) -> secret (blocks)
    # shop -> the progress report's JSON (`okrflow progress --shop SHOP --format json`; blocks)
    progress: Callable[[str], JsonObject]
    metrics: IntakeMetrics
    registry: CollectorRegistry
    limiter: RateLimiter
    openapi: JsonObject
    max_request_bytes: int
    max_event_bytes: int
    max_batch_events: int
    clock: Callable[[], float] = time.time


class Refused(Exception):
    """Answer with this status and JSON body (raised inside a route)."""

    def __init__(
        self, status: int, error: str, headers: Mapping[str, str] | None = None,
        problems: Sequence[Problem] = (),
    ) -> None:  # fmt: skip
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = dict(headers or {})
        self.problems = problems

    def response(self) -> JSONResponse:
        body: JsonObject = {"error": self.error}
        if self.problems:
            body["problems"] = [p.to_json() for p in self.problems]
        return JSONResponse(body, self.status, headers=self.headers)


def build_app(parts: IntakeParts) -> Starlette:
    """The intake's routes; every handler finds `parts` on the app's state."""
    app = Starlette(routes=[
        Route("/v1/events", _observed("/v1/events", _post_events), methods=["POST"]),
        Route(
            "/v1/webhooks/{platform}/{shop}",
            _observed("/v1/webhooks/{platform}/{shop}", _post_webhook),
            methods=["POST"],
        ),
        Route(
            "/v1/shops/{shop}/progress",
            _observed("/v1/shops/{shop}/progress", _get_progress),
            methods=["GET"],
        ),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
    ])  # fmt: skip
    app.state.parts = parts
    return app


def _parts(request: Request) -> IntakeParts:
    parts: IntakeParts = request.app.state.parts
    return parts


def _observed(route: str, handler: Handler) -> Handler:
    """`handler` counted and timed under `route`; a `Refused` becomes its answer."""

    async def run(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except Refused as refused:
            response = refused.response()
        except ClientDisconnect:
            response = Response(status_code=400)
        m = _parts(request).metrics
        m.requests.labels(route, str(response.status_code)).inc()
        m.latency.labels(route).observe(time.perf_counter() - started)
        return response

    return run


async def _body_of(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _token_shop(request: Request, parts: IntakeParts) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="okrflow"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "missing bearer token", challenge)
    shop = await run_in_threadpool(parts.authenticate, token.strip())
    if shop is None:
        raise Refused(401, "unknown or revoked token", challenge)
    wait = parts.limiter.acquire(token.strip())
    if wait > 0:
        raise Refused(429, "rate limit exceeded", {"Retry-After": str(math.ceil(wait))})
    return shop


async def _produce(parts: IntakeParts, shop: str, values: Sequence[bytes], source: str) -> None:
    try:
        await parts.sink.send_all([(shop.encode(), v) for v in values])
    except KafkaError as exc:
        raise Refused(
            503, f"the broker did not take the events: {exc}", {"Retry-After": "1"}
        ) from exc
    parts.metrics.produced.labels(source).inc(len(values))


async def _post_events(request: Request) -> Response:
    parts = _parts(request)
    m = parts.metrics
    shop = await _token_shop(request, parts)
    body = await _body_of(request, parts.max_request_bytes)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        accepted, problems = parse_events(
            request.headers.get("content-type"), headers, body,
            max_event_bytes=parts.max_event_bytes, max_batch=parts.max_batch_events,
        )  # fmt: skip
    except UnsupportedMediaType as exc:
        raise Refused(415, str(exc)) from exc
    except TooManyEvents as exc:
        m.rejected.labels("too_many").inc()
        raise Refused(413, str(exc)) from exc
    if problems:
        for p in problems:
            m.rejected.labels(p.reason).inc()
        malformed = all(p.reason in ("not_json", "too_deep", "too_large") for p in problems)
        raise Refused(400 if malformed else 422, "invalid events; nothing was accepted",
                      problems=problems)  # fmt: skip
    foreign = [
        Problem(i, "/shop", "wrong_shop", f"this token writes shop {shop!r} only")
        for i, a in enumerate(accepted)
        if a.event.shop != shop
    ]
    if foreign:
        m.rejected.labels("wrong_shop").inc(len(foreign))
        raise Refused(403, "events for another shop; nothing was accepted", problems=foreign)
    await _produce(parts, shop, [a.value for a in accepted], "events")
    return JSONResponse({"accepted": len(accepted)}, 202)


async def _post_webhook(request: Request) -> Response:
    parts = _parts(request)
    m = parts.metrics
    platform_name = request.path_params["platform"]
    shop = request.path_params["shop"]
    platform = PLATFORMS.get(platform_name)
    if platform is None or not _SHOP.match(shop):
        raise Refused(404, f"no webhook endpoint for platform {platform_name!r}")
    body = await _body_of(request, parts.max_request_bytes)
    secret = await run_in_threadpool(parts.webhook_secret, shop, platform_name)
    if secret is None:
        raise Refused(401, f"no {platform_name} secret is set for shop {shop!r}")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        platform.verify(headers, body, secret, parts.clock())
    except SignatureError as exc:
        m.rejected.labels("bad_signature").inc()
        raise Refused(401, f"signature refused: {exc}") from exc
    try:
        mapped = platform.to_events(headers, body, shop)
    except PayloadError as exc:
        m.rejected.labels("bad_payload").inc()
        raise Refused(422, f"cannot map the {platform_name} payload: {exc}") from exc
    if mapped.ignored is not None:
        m.ignored.labels(platform_name).inc()
        return JSONResponse({"accepted": 0, "ignored": mapped.ignored}, 202)
    values = []
    for index, event in enumerate(mapped.events):
        value = _encode(event)
        decoded = decode_event(value, parts.max_event_bytes)
        if not isinstance(decoded, CloudEvent):
            problem = Problem(index, "", decoded.reason, decoded.error)
            raise Refused(422, "the mapped event is invalid", problems=[problem])
        values.append(value)
    await _produce(parts, shop, values, f"webhook_{platform_name}")
    return JSONResponse({"accepted": len(values)}, 202)


async def _get_progress(request: Request) -> Response:
    parts = _parts(request)
    shop = await _token_shop(request, parts)
    if request.path_params["shop"] != shop:
        raise Refused(403, f"this token reads shop {shop!r} only")
    report = await run_in_threadpool(parts.progress, shop)
    return JSONResponse(report)


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    if await _parts(request).sink.reachable(2.0):
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "broker unreachable"}, 503)


async def _metrics(request: Request) -> Response:
    return Response(generate_latest(_parts(request).registry), media_type=CONTENT_TYPE_LATEST)


async def _openapi(request: Request) -> Response:
    return JSONResponse(_parts(request).openapi)


def _encode(event: JsonObject) -> bytes:
    return msgspec.json.encode(event)
