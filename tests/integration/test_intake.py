"""The HTTP intake end to end: real intake process, real broker, real worker, both databases.

Events sent as structured, binary and batched CloudEvents, and as Shopify and Stripe webhooks
with valid signatures, each request sent twice, are counted exactly once in `okrflow
progress`. Cross-shop writes, bad and revoked tokens and bad signatures fail with their
status, and reading the topic back shows nothing of them reached it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.integration.streams import read_topic
from tests.services import free_port, wait_for
from tests.webhooks import fixture, shopify_request, stripe_headers

SHOP = "intake-shop"
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
      - {{key: refunds, metric: {{event: order.refunded, aggregate: count}}, target: 100}}
      - {{key: visits, metric: {{event: shop.visit, aggregate: count}}, target: 100}}
"""


def _cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "okrflow", *args], env=env, input=stdin, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip


def _token(env: dict[str, str], shop: str) -> str:
    created = _cli(env, "tokens", "create", "--shop", shop, "--name", "test")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def _ready(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except OSError:
        return 0


def test_http_events_and_webhooks_count_exactly_once(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = pipeline_env(
        kafka_bootstrap, database_url, tmp_path, intake_port=port,
        intake_credentials_cache_seconds=0,
    )  # fmt: skip
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN)
    assert okrflow(env, "apply", str(plan)).returncode == 0
    token, other_token, revoked = _token(env, SHOP), _token(env, "other-shop"), _token(env, SHOP)
    listed = _cli(env, "tokens", "list", "--shop", SHOP).stdout
    revoked_id = listed.strip().splitlines()[-1].split()[0].strip("#:")
    assert _cli(env, "tokens", "revoke", revoked_id).returncode == 0
    for platform, secret in (("shopify", "shpss_secret"), ("stripe", "whsec_secret")):
        done = _cli(env, "webhooks", "set-secret", "--shop", SHOP, "--platform", platform,
                    stdin=secret + "\n")  # fmt: skip
        assert done.returncode == 0, done.stderr

    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    structured = cloud_event("s-1", shop=SHOP, event_type="customer.created")
    binary_headers = {
        **auth, "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "b-1",
        "ce-source": f"/shops/{SHOP}/web", "ce-type": "customer.created",
        "ce-time": "2026-02-10T10:00:00Z", "ce-shop": SHOP,
    }  # fmt: skip
    orders = [
        cloud_event(f"o-{i}", shop=SHOP, event_type="order.placed",
                    data={"order_id": f"o-{i}", "customer_id": "c", "total": 10.0 * i,
                          "currency": "EUR"})
        for i in (1, 2, 3)
    ]  # fmt: skip
    visits = [cloud_event(f"v-{i}", shop=SHOP, event_type="shop.visit", data={}) for i in (1, 2)]
    now = int(time.time())
    shopify = [
        (fixture("shopify", name), topic, f"wh-{name}")
        for name, topic in (("orders-create", "orders/create"),
                            ("customers-create", "customers/create"),
                            ("refunds-create", "refunds/create"))
    ]  # fmt: skip
    stripe = [fixture("stripe", "checkout-session-completed"), fixture("stripe", "charge-refunded")]
    valid: list[tuple[str, dict[str, str], bytes]] = [
        ("/v1/events", {**auth, "Content-Type": "application/cloudevents+json"},
         json.dumps(structured).encode()),
        ("/v1/events", binary_headers, b'{"customer_id": "c-b"}'),
        ("/v1/events", {**auth, "Content-Type": "application/cloudevents-batch+json"},
         json.dumps(orders).encode()),
        ("/v1/events", {**auth, "Content-Type": "application/cloudevents-batch+json"},
         json.dumps(visits).encode()),
        *((f"/v1/webhooks/shopify/{SHOP}", shopify_request(body, topic, wid, "shpss_secret"), body)
          for body, topic, wid in shopify),
        *((f"/v1/webhooks/stripe/{SHOP}", stripe_headers(body, "whsec_secret", now), body)
          for body in stripe),
    ]  # fmt: skip
    refused: list[tuple[str, dict[str, str], bytes, int]] = [
        ("/v1/events", {**auth, "Content-Type": "application/cloudevents+json"},
         json.dumps(cloud_event("cross-1", shop="other-shop")).encode(), 403),
        ("/v1/events", {"Authorization": f"Bearer {other_token}",
                        "Content-Type": "application/cloudevents+json"},
         json.dumps(cloud_event("cross-2", shop=SHOP)).encode(), 403),
        ("/v1/events", {"Authorization": "Bearer okr_not-a-token",
                        "Content-Type": "application/cloudevents+json"},
         json.dumps(cloud_event("bad-token", shop=SHOP)).encode(), 401),
        ("/v1/events", {"Authorization": f"Bearer {revoked}",
                        "Content-Type": "application/cloudevents+json"},
         json.dumps(cloud_event("revoked", shop=SHOP)).encode(), 401),
        (f"/v1/webhooks/shopify/{SHOP}",
         shopify_request(shopify[0][0], "orders/create", "wh-forged", "wrong-secret"),
         shopify[0][0].replace(b"85.90", b"185.90"), 401),
        (f"/v1/webhooks/stripe/{SHOP}", stripe_headers(stripe[0], "whsec_secret", now - 600),
         stripe[0], 401),
    ]  # fmt: skip

    with (
        running(env, "worker", log=tmp_path / "worker.log") as worker,
        running(env, "intake", log=tmp_path / "intake.log") as intake,
    ):
        wait_for(lambda: _ready(f"{base}/readyz"), lambda s: s == 200, 60,
                 f"the intake ready (log: {tmp_path / 'intake.log'})")  # fmt: skip
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(2):  # every request retried: counted once
                for path, headers, body in valid:
                    response = client.post(path, headers=headers, content=body)
                    assert response.status_code == 202, (path, response.text)
            for path, headers, body, status in refused:
                response = client.post(path, headers=headers, content=body)
                assert response.status_code == status, (path, response.text)

            def values() -> dict[str, Any]:
                response = client.get(f"/v1/shops/{SHOP}/progress", headers=auth)
                report = response.json()
                return {kr["key"]: kr["value"]
                        for kr in report["shops"][0]["objectives"][0]["key_results"]}  # fmt: skip

            expected = {"orders": 5, "revenue": 60.0 + 85.9 + 49.9, "clients": 3,
                        "refunds": 2, "visits": 2}  # fmt: skip
            got = wait_for(values, lambda v: v == expected, 90, "the HTTP events counted")
            assert got == expected
            # The same JSON as `okrflow progress --format json` (judged a moment apart).
            cli = json.loads(okrflow(env, "progress", "--shop", SHOP, "--format", "json").stdout)
            http = client.get(f"/v1/shops/{SHOP}/progress", headers=auth).json()
            assert cli.keys() == http.keys()

            def counted(report: dict[str, Any]) -> list[tuple[str, float, float]]:
                return [(kr["key"], kr["value"], kr["progress"])
                        for o in report["shops"][0]["objectives"] for kr in o["key_results"]]  # fmt: skip

            assert counted(cli) == counted(http)
            metrics = client.get("/metrics").text
        assert worker.poll() is None and intake.poll() is None

    records = read_topic(kafka_bootstrap, env["OKRFLOW_EVENTS_TOPIC"])
    assert len(records) == 2 * 12  # 1 + 1 + 3 + 2 + 3 + 2 events, each request twice
    ids = {json.loads(r.value)["id"] for r in records}
    assert not ids & {"cross-1", "cross-2", "bad-token", "revoked"}
    assert all(r.key == SHOP.encode() for r in records)
    assert 'okrflow_intake_requests_total{route="/v1/events",status="202"} 8.0' in metrics
    assert 'okrflow_build_info{component="intake",' in metrics
    assert "process_resident_memory_bytes" in metrics
