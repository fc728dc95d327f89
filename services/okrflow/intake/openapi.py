"""The intake's OpenAPI 3.1 document, built from the decoder's own types and the settings.

`python -m okrflow.intake.openapi > schemas/intake.openapi.json` writes the checked-in copy;
a test keeps it equal to what the intake serves at /openapi.json. One builder per path; the
components are the decoder's CloudEvent and the bodies of the intake's refusals.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

import msgspec

from okrflow.events.envelope import SHOP_PATTERN, CloudEvent
from okrflow.jsontypes import JsonObject, JsonValue
from okrflow.settings import Settings

_REF = "#/components/schemas/{name}"


def _json(schema: JsonObject) -> JsonObject:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> JsonObject:
    return {"$ref": _REF.format(name=name)}


def _error(description: str) -> JsonObject:
    return {"description": description, "content": _json(_ref("Error"))}


def _problems(description: str) -> JsonObject:
    return {"description": description, "content": _json(_ref("Problems"))}


def _retry_later(description: str) -> JsonObject:
    """An Error answer with a Retry-After header (rate limited, broker unavailable)."""
    return {
        "description": description,
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": _json(_ref("Error")),
    }


def _accepted() -> JsonObject:
    return {
        "description": "every event acknowledged by the broker (acks=all)",
        "content": _json({
            "type": "object", "required": ["accepted"],
            "properties": {"accepted": {"type": "integer", "minimum": 0},
                           "ignored": {"type": "string"}},
        }),
    }  # fmt: skip


_LIMITED = "rate limit exceeded"
_UNAVAILABLE = "the broker did not take the events; retry"


def _bearer() -> list[JsonValue]:
    return [{"bearer": []}]


def _shop() -> JsonObject:
    return {"name": "shop", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": SHOP_PATTERN}}  # fmt: skip


def _components() -> tuple[JsonObject, JsonObject]:
    """The CloudEvent's schema reference, and every component schema."""
    (event_ref,), components = msgspec.json.schema_components([CloudEvent], ref_template=_REF)
    components["CloudEvent"]["properties"]["time"]["format"] = "date-time"
    # The decoder checks the shop's pattern after decoding (okrflow.events.envelope).
    components["CloudEvent"]["properties"]["shop"]["pattern"] = SHOP_PATTERN
    components["Error"] = {
        "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}},
    }  # fmt: skip
    components["Problem"] = {
        "type": "object",
        "required": ["index", "pointer", "reason", "message"],
        "properties": {
            "index": {"type": "integer", "minimum": 0, "description": "the event's index in the batch (0 otherwise)"},
            "pointer": {"type": "string", "description": "JSON pointer into the event"},
            "reason": {"type": "string", "description": "decoder reason code (docs/events.md) or wrong_shop"},
            "message": {"type": "string"},
        },
    }  # fmt: skip
    components["Problems"] = {
        "type": "object",
        "required": ["error", "problems"],
        "properties": {
            "error": {"type": "string"},
            "problems": {"type": "array", "items": _ref("Problem")},
        },
    }
    return event_ref, components


def _events(settings: Settings, event_ref: JsonObject) -> JsonObject:
    batch: JsonObject = {
        "type": "array",
        "items": event_ref,
        "minItems": 1,
        "maxItems": settings.intake_max_batch_events,
    }
    binary: JsonObject = {
        "schema": {"type": "object"},
        "description": "binary mode: the data, with the attributes "
        "in ce-specversion, ce-id, ce-source, ce-type, ce-time, ce-shop",
    }
    too_large = (
        f"body over {settings.intake_max_request_bytes} bytes, or more "
        f"than {settings.intake_max_batch_events} events"
    )
    return {
        "post": {
            "summary": "Send events: structured, batched, or binary (ce-* headers)",
            "security": _bearer(),
            "requestBody": {
                "required": True,
                "content": {
                    "application/cloudevents+json": {"schema": event_ref},
                    "application/cloudevents-batch+json": {"schema": batch},
                    "application/json": binary,
                },
            },
            "responses": {
                "202": _accepted(),
                "400": _problems("the body is not JSON"),
                "401": _error("missing, unknown or revoked token"),
                "403": _problems("an event for another shop than the token's"),
                "413": _error(too_large),
                "415": _error("not one of the three content types"),
                "422": _problems("invalid events (none was accepted)"),
                "429": _retry_later(_LIMITED),
                "503": _retry_later(_UNAVAILABLE),
            },
        }
    }


def _webhooks(settings: Settings) -> JsonObject:
    platform: JsonObject = {
        "name": "platform",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": ["shopify", "stripe"]},
    }
    return {
        "post": {
            "summary": "A platform's signed webhook (Shopify, Stripe)",
            "parameters": [platform, _shop()],
            "requestBody": {"required": True, "content": _json({"type": "object"})},
            "responses": {
                "202": _accepted(),
                "401": _error("no secret set, or a bad or expired signature"),
                "404": _error("unknown platform"),
                "413": _error(f"body over {settings.intake_max_request_bytes} bytes"),
                "422": _error("signed, but not a payload okrflow can map"),
                "503": _retry_later(_UNAVAILABLE),
            },
        }
    }


def _progress() -> JsonObject:
    report: JsonObject = {
        "type": "object",
        "required": ["at", "shops"],
        "properties": {"at": {"type": "string"}, "shops": {"type": "array"}},
    }
    return {
        "get": {
            "summary": "The shop's progress (as `okrflow progress --format json`)",
            "security": _bearer(),
            "parameters": [_shop()],
            "responses": {
                "200": {"description": "progress report", "content": _json(report)},
                "401": _error("missing, unknown or revoked token"),
                "403": _error("another shop than the token's"),
                "429": _retry_later(_LIMITED),
            },
        }
    }


# The operational routes: path, summary, and (status, description, body) of each answer.
_OPS_ROUTES: tuple[tuple[str, str, tuple[tuple[str, str, Literal["json", "text"]], ...]], ...] = (
    ("/healthz", "alive", (("200", "the process runs", "json"),)),
    ("/readyz", "ready: the broker answers",
     (("200", "ready", "json"), ("503", "broker unreachable", "json"))),
    ("/metrics", "Prometheus metrics", (("200", "text exposition format", "text"),)),
    ("/openapi.json", "this document", (("200", "OpenAPI 3.1", "json"),)),
)  # fmt: skip


def _body(kind: Literal["json", "text"]) -> JsonObject:
    """A JSON object, or text."""
    if kind == "json":
        return _json({"type": "object"})
    return {"text/plain": {"schema": {"type": "string"}}}


def _ops_paths() -> JsonObject:
    return {
        path: {
            "get": {
                "summary": summary,
                "responses": {
                    status: {"description": description, "content": _body(kind)}
                    for status, description, kind in answers
                },
            }
        }
        for path, summary, answers in _OPS_ROUTES
    }


def openapi_document(settings: Settings) -> JsonObject:
    try:
        release = version("okrflow")
    except PackageNotFoundError:  # running from a source tree
        release = "0+unknown"
    event_ref, components = _components()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "okrflow intake",
            "version": release,
            "description": "CloudEvents over HTTP and platform webhooks into okrflow's events "
            "topic (docs/intake.md).",
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/events": _events(settings, event_ref),
            "/v1/webhooks/{platform}/{shop}": _webhooks(settings),
            "/v1/shops/{shop}/progress": _progress(),
            **_ops_paths(),
        },
    }


if __name__ == "__main__":
    json.dump(openapi_document(Settings()), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
