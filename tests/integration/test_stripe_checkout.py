"""Stripe's delayed payments end to end (real intake, broker and worker, both databases): an
unpaid completed Checkout Session counts nothing; its `async_payment_succeeded` counts it
once (sent twice, and with a paid `completed` of the same session besides); an
`async_payment_failed` counts nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.integration.tenants import ready, set_secret, token, values
from tests.services import free_port, wait_for
from tests.webhooks import fixture, stripe_headers

SHOP = "stripe-shop"
PLAN = f"""\
shop: {SHOP}
timezone: Europe/Rome
objectives:
  - key: sales
    title: Sales
    owner: sales
    period: {{start: 2026-01-01, end: 2026-12-31}}
    key_results:
      - {{key: orders, metric: {{event: order.placed, aggregate: count}}, target: 100}}
      - {{key: revenue, metric: {{event: order.placed, aggregate: sum, field: data.total}}, target: 1000}}
      - {{key: clients, metric: {{event: customer.created, aggregate: count}}, target: 100}}
"""


def test_stripe_delayed_payments_count_once_when_paid_and_never_when_failed(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path, intake_port=port)
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN)
    assert okrflow(env, "apply", str(plan)).returncode == 0
    auth = {"Authorization": f"Bearer {token(env, SHOP)}"}
    set_secret(env, SHOP, "stripe", "whsec_secret")
    base = f"http://127.0.0.1:{port}"

    def paid_completed() -> bytes:
        event = json.loads(fixture("stripe", "checkout-session-completed-unpaid"))
        event["id"] = "evt_1QzZ9zE2x0Nt3kLmPaidLater"
        event["data"]["object"]["payment_status"] = "paid"
        return json.dumps(event).encode()

    with (
        running(env, "worker", log=tmp_path / "worker.log") as worker,
        running(env, "intake", log=tmp_path / "intake.log") as intake,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        wait_for(lambda: ready(f"{base}/readyz"), lambda s: s == 200, 60,
                 f"the intake ready (log: {tmp_path / 'intake.log'})")  # fmt: skip

        def stripe(body: bytes) -> Any:
            headers = stripe_headers(body, "whsec_secret", int(time.time()))
            response = client.post(f"/v1/webhooks/stripe/{SHOP}", headers=headers, content=body)
            assert response.status_code == 202, response.text
            return response.json()["accepted"]

        def barrier(n: int) -> dict[str, float]:
            """A customer.created after the webhooks: once it is counted, so is all before
            it (one shop, one partition, in order)."""
            marker = cloud_event(f"marker-{n}", shop=SHOP, event_type="customer.created")
            headers = {**auth, "Content-Type": "application/cloudevents+json"}
            response = client.post("/v1/events", headers=headers, content=json.dumps(marker))
            assert response.status_code == 202, response.text
            return wait_for(lambda: values(env, SHOP), lambda v: v.get("clients") == n, 60,
                            f"marker {n} counted")  # fmt: skip

        assert stripe(fixture("stripe", "checkout-session-completed-unpaid")) == 0
        assert barrier(1) == {"orders": 0, "revenue": 0, "clients": 1}
        succeeded = fixture("stripe", "checkout-session-async-payment-succeeded")
        assert stripe(succeeded) == 1
        assert stripe(succeeded) == 1  # Stripe's retry
        assert stripe(paid_completed()) == 1  # the same session, paid: the same event id
        assert barrier(2) == {"orders": 1, "revenue": 129.0, "clients": 2}
        assert stripe(fixture("stripe", "checkout-session-async-payment-failed")) == 0
        assert barrier(3) == {"orders": 1, "revenue": 129.0, "clients": 3}
        assert worker.poll() is None and intake.poll() is None
