"""The intake's OpenAPI 3.1 document, built from the decoder's own types and the settings.

`python -m okrflow.intake.openapi > schemas/intake.openapi.json` writes the checked-in copy;
a test keeps it equal to what the intake serves at /openapi.json.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec

from okrflow.events.envelope import SHOP_PATTERN, CloudEvent
from okrflow.settings import Settings

_REF = "#/components/schemas/{name}"


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json({"$ref": _REF.format(name="Error")})}


def _problems(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json({"$ref": _REF.format(name="Problems")})}


def openapi_document(settings: Settings) -> dict[str, Any]:
    try:
        release = version("okrflow")
    except PackageNotFoundError:  # running from a source tree
        release = "0+unknown"
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
            "problems": {"type": "array", "items": {"$ref": _REF.format(name="Problem")}},
        },
    }
    accepted = {
        "description": "every event acknowledged by the broker (acks=all)",
        "content": _json({
            "type": "object", "required": ["accepted"],
            "properties": {"accepted": {"type": "integer", "minimum": 0},
                           "ignored": {"type": "string"}},
        }),
    }  # fmt: skip
    limited = {
        "description": "rate limit exceeded",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": _json({"$ref": _REF.format(name="Error")}),
    }
    unavailable = {
        "description": "the broker did not take the events; retry",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": _json({"$ref": _REF.format(name="Error")}),
    }
    shop = {"name": "shop", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": SHOP_PATTERN}}  # fmt: skip
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
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
            "/v1/events": {
                "post": {
                    "summary": "Send events: structured, batched, or binary (ce-* headers)",
                    "security": bearer,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/cloudevents+json": {"schema": event_ref},
                            "application/cloudevents-batch+json": {
                                "schema": {
                                    "type": "array",
                                    "items": event_ref,
                                    "minItems": 1,
                                    "maxItems": settings.intake_max_batch_events,
                                }
                            },
                            "application/json": {
                                "schema": {"type": "object"},
                                "description": "binary mode: the data, with the attributes "
                                "in ce-specversion, ce-id, ce-source, ce-type, ce-time, ce-shop",
                            },
                        },
                    },
                    "responses": {
                        "202": accepted,
                        "400": _problems("the body is not JSON"),
                        "401": _error("missing, unknown or revoked token"),
                        "403": _problems("an event for another shop than the token's"),
                        "413": _error(
                            f"body over {settings.intake_max_request_bytes} bytes, or more "
                            f"than {settings.intake_max_batch_events} events"
                        ),
                        "415": _error("not one of the three content types"),
                        "422": _problems("invalid events (none was accepted)"),
                        "429": limited,
                        "503": unavailable,
                    },
                }
            },
            "/v1/webhooks/{platform}/{shop}": {
                "post": {
                    "summary": "A platform's signed webhook (Shopify, Stripe)",
                    "parameters": [
                        {
                            "name": "platform",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": ["shopify", "stripe"]},
                        },
                        shop,
                    ],
                    "requestBody": {"required": True, "content": _json({"type": "object"})},
                    "responses": {
                        "202": accepted,
                        "401": _error("no secret set, or a bad or expired signature"),
                        "404": _error("unknown platform"),
                        "413": _error(f"body over {settings.intake_max_request_bytes} bytes"),
                        "422": _error("signed, but not a payload okrflow can map"),
                        "503": unavailable,
                    },
                }
            },
            "/v1/shops/{shop}/progress": {
                "get": {
                    "summary": "The shop's progress (as `okrflow progress --format json`)",
                    "security": bearer,
                    "parameters": [shop],
                    "responses": {
                        "200": {
                            "description": "progress report",
                            "content": _json(
                                {
                                    "type": "object",
                                    "required": ["at", "shops"],
                                    "properties": {
                                        "at": {"type": "string"},
                                        "shops": {"type": "array"},
                                    },
                                }
                            ),
                        },
                        "401": _error("missing, unknown or revoked token"),
                        "403": _error("another shop than the token's"),
                        "429": limited,
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "alive",
                    "responses": {
                        "200": {
                            "description": "the process runs",
                            "content": _json({"type": "object"}),
                        }
                    },
                }
            },
            "/readyz": {
                "get": {
                    "summary": "ready: the broker answers",
                    "responses": {
                        "200": {"description": "ready", "content": _json({"type": "object"})},
                        "503": {
                            "description": "broker unreachable",
                            "content": _json({"type": "object"}),
                        },
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "this document",
                    "responses": {
                        "200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}
                    },
                }
            },
        },
    }


if __name__ == "__main__":
    json.dump(openapi_document(Settings()), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
