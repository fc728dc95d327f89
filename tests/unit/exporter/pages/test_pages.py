"""The pages from a snapshot, through the exporter's HTTP server (no database, no broker): the
JSON twin is the progress shape judged at the request's instant, HTML escapes what plans
supply, 404s name what exists, tokens gate a shop's pages, the SVG chart's points."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any

import pytest

from okrflow.domain.forecast import NoForecast
from okrflow.domain.model import Cadence, KeyResult, Objective, Period, Plan, SimpleMetric
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import SeriesState, plan_progress
from okrflow.exporter.pages import render
from okrflow.exporter.pages.access import COOKIE, PageAccess
from okrflow.exporter.pages.model import PagesModel
from okrflow.exporter.pages.routes import Pages, static_routes
from okrflow.exporter.pages.svg import burn_up
from okrflow.exporter.snapshot import ProgressSnapshot
from okrflow.ops.http import OpsServer
from okrflow.ops.routes import text
from okrflow.reports.figures import KeyResultFigures
from okrflow.reports.history import KeyResultDay

AT = datetime(2026, 2, 15, 12, tzinfo=UTC)
TOKEN = "okr_" + "a" * 43


def _snapshot() -> ProgressSnapshot:
    clients = KeyResult("new-clients", "Grow <clients>", SimpleMetric("customer.created", "count"),
                        baseline=200, target=230)  # fmt: skip
    parent = Objective("more-clients", 'More "clients" & <b>', "marketing", "company",
                       Period(date(2026, 1, 1), date(2026, 6, 30)), (clients,))  # fmt: skip
    posts = KeyResult("posts", "Posts", SimpleMetric("social.post.published", "count"),
                      cadence=Cadence("day", 3))  # fmt: skip
    child = Objective("tiktok", "TikTok", "social", "team",
                      Period(date(2026, 1, 1), date(2026, 3, 31)), (posts,),
                      parent="more-clients")  # fmt: skip
    plan = Plan("salone-bella", "UTC", (child, parent))
    active = ActivePlan(plan, {("more-clients", "new-clients"): 1, ("tiktok", "posts"): 2})
    states = {1: {"value": SeriesState(events=15, total=15)},
              2: {"value": SeriesState(events=4, total=4,
                                       day_counts={date(2026, 1, 5): 4})}}  # fmt: skip
    return ProgressSnapshot(1.0, (active,), states, ())


class _Titles(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self._tag: str | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("h1", "h2", "h3"):
            self._tag = tag

    def handle_data(self, data: str) -> None:
        if self._tag:
            self.headings.append((self._tag, data))
            self._tag = None


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[OpsServer] = []

    def start(require_token: bool = False) -> str:
        snapshot = _snapshot()
        tokens = {TOKEN: "salone-bella"}
        access = PageAccess(require_token, tokens.get)
        pages = Pages(PagesModel(lambda: snapshot, None), access, clock=lambda: AT)
        server = OpsServer("127.0.0.1", 0, {"/metrics": lambda: text(200, "m"), **static_routes()},
                           what="test", setting="-", prefixes={"/": pages})  # fmt: skip
        server.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        server.stop()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


def test_shop_json_is_the_progress_shape_judged_at_the_request(serve: Any) -> None:
    base = serve()
    status, body, headers = _get(f"{base}/shops/salone-bella?format=json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    report = json.loads(body)
    assert report["at"] == AT.isoformat()
    (shop,) = report["shops"]
    snapshot = _snapshot()
    (active,) = snapshot.plans
    states = {pair: snapshot.states[i] for pair, i in active.key_result_ids.items()}
    expected = plan_progress(active.plan, states, AT)
    by_key = {o["key"]: o for o in shop["objectives"]}
    for key, result in expected.items():
        assert by_key[key]["progress"] == pytest.approx(result.progress, abs=1e-6)
        assert by_key[key]["expected"] == pytest.approx(result.expected, abs=1e-6)
        assert by_key[key]["status"] == result.status
    assert by_key["more-clients"]["key_results"][0]["value"] == 215
    assert by_key["tiktok"]["key_results"][0]["value"] == 3  # 4 posts, at most 3 a day
    # Forecast at the snapshot's instant (1970): before the periods.
    posts = by_key["tiktok"]["key_results"][0]
    assert (posts["forecast"], posts["forecast_reason"]) == (None, "the period has not started")


def test_shop_page_escapes_and_orders_levels(serve: Any) -> None:
    base = serve()
    status, body, headers = _get(f"{base}/shops/salone-bella")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "<b>" not in body and "More &quot;clients&quot; &amp; &lt;b&gt;" in body
    parser = _Titles()
    parser.feed(body)
    # h1 the shop, then the company objective before the team one (file order is reversed).
    assert parser.headings[:2] == [("h1", "salone-bella"), ("h2", 'More "clients" & <b>')]
    assert ("h3", "Grow <clients>") in parser.headings
    assert 'data-field="value">215<' in body
    # The snapshot is of 1970: no forecast yet, and the page says why.
    assert 'data-field="forecast">none (the period has not started)<' in body
    assert "/static/pages.js" in body and 'data-poll="/shops/salone-bella?format=json"' in body


def test_unknown_pages_name_what_exists(serve: Any) -> None:
    base = serve()
    status, body, _ = _get(f"{base}/shops/nope?format=json")
    assert status == 404
    assert json.loads(body) == {
        "error": "no shop 'nope' has a plan (shops: salone-bella)", "shops": ["salone-bella"]
    }  # fmt: skip
    status, body, _ = _get(f"{base}/shops/salone-bella/key-results/nope/x?format=json")
    assert status == 404 and "objectives: tiktok, more-clients" in json.loads(body)["error"]
    status, body, _ = _get(f"{base}/shops/salone-bella/key-results/tiktok/x")
    assert status == 404 and "key results: posts" in body and "<h1>Not found</h1>" in body
    status, body, _ = _get(f"{base}/elsewhere")
    assert status == 404 and 'href="/shops/salone-bella"' in body
    assert _get(f"{base}/metrics")[1] == "m\n"  # exact routes still win
    assert _get(f"{base}/static/pages.css")[0] == 200


def test_index_lists_shops_unless_tokens_are_required(serve: Any) -> None:
    status, body, _ = _get(serve() + "/?format=json")
    assert status == 200 and [s["shop"] for s in json.loads(body)["shops"]] == ["salone-bella"]
    status, body, _ = _get(serve(require_token=True) + "/?format=json")
    assert status == 200 and json.loads(body)["shops"] == []


def test_a_token_opens_its_shop_and_sets_a_strict_cookie(serve: Any) -> None:
    base = serve(require_token=True)
    status, body, _ = _get(f"{base}/shops/salone-bella?format=json")
    assert status == 403 and json.loads(body)["shops"] == []
    assert _get(f"{base}/shops/nope")[0] == 403  # no token: nothing said about other shops
    assert _get(f"{base}/shops/salone-bella?token=okr_wrong")[0] == 403
    status, _, headers = _get(f"{base}/shops/salone-bella?token={TOKEN}")
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};")
    for part in ("HttpOnly", "SameSite=Strict", "Path=/shops/salone-bella"):
        assert part in cookie
    status, _, _ = _get(f"{base}/shops/salone-bella/key-results/tiktok/posts?format=svg",
                        {"Cookie": f"{COOKIE}={TOKEN}"})  # fmt: skip
    assert status != 403  # the cookie is enough (no database here: the history is 404)


def test_burn_up_points_pace_target_and_slots() -> None:
    snapshot = _snapshot()
    (active,) = snapshot.plans
    tiktok = active.plan.objectives[0]
    days = [
        KeyResultDay(
            date(2026, 1, d),
            KeyResultFigures(value, 0, 270, None, None, None, True, None),
            NoForecast("needs 7 complete days of data in the period, has 2"),
        )
        for d, value in ((1, 0), (2, 3), (3, None))
    ]
    svg = burn_up(tiktok.key_results[0], tiktok, "UTC", days)
    assert svg.count('class="point"') == 2
    assert 'data-day="2026-01-02" data-value="3"' in svg
    assert svg.count('class="slot ') == 90  # every day of the quarter is a slot
    assert 'class="pace"' in svg and 'data-target="270"' in svg


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (1500, "1,500"), (0.05, "0.05"), (1234.567, "1,234.57"), (None, "—"),
     (float("nan"), "—")],
)  # fmt: skip
def test_numbers_as_shown(value: Any, shown: str) -> None:
    assert render.number(value) == shown


def test_percent_rounds_half_up_like_the_script() -> None:
    assert [render.percent(x) for x in (0.125, 0.135, 0.0049, None)] == ["13%", "14%", "0%", "—"]
