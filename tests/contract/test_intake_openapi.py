"""The intake's OpenAPI document: the checked-in copy is what the code builds (regenerate with
`python -m okrflow.intake.openapi > schemas/intake.openapi.json`), and it is valid OpenAPI."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from okrflow.intake.openapi import openapi_document
from okrflow.settings import Settings

CHECKED_IN = Path(__file__).resolve().parents[2] / "schemas" / "intake.openapi.json"


def test_checked_in_document_is_what_the_intake_serves() -> None:
    built = json.loads(json.dumps(openapi_document(Settings())))
    assert json.loads(CHECKED_IN.read_text()) == built, (
        "regenerate: python -m okrflow.intake.openapi > schemas/intake.openapi.json"
    )


def test_document_is_openapi_3_1_with_valid_schemas() -> None:
    document = json.loads(CHECKED_IN.read_text())
    assert document["openapi"] == "3.1.0"
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    assert set(document["paths"]) == {
        "/v1/events", "/v1/webhooks/{platform}/{shop}", "/v1/shops/{shop}/progress",
        "/healthz", "/readyz", "/metrics", "/openapi.json",
    }  # fmt: skip
