"""The exporter's pages in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
through selenium): the real broker, SQLite, a real worker counting the salon and TikTok
examples (their periods moved around today), the exporter serving the pages.

The numbers the shop pages show, and their forecasts in words, are checked against `okrflow
progress --format json`, a burn-up chart's points against `okrflow history --format json`
and its forecast band against `progress`; more events make the open page change in place
(the DOM is watched; no reload). Twenty days of backdated posts, followers and orders give
the forecasts their basis. Screenshots go to $OKRFLOW_TEST_ARTIFACTS (default: the test's
tmp_path)."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from okrflow.domain.forecast import NoForecast
from okrflow.exporter.pages.forecast_text import BANDS as _BANDS
from okrflow.exporter.pages.forecast_text import key_result_text, objective_text
from okrflow.reports.forecasts import KeyResultForecastFigures, ObjectiveForecastFigures
from tests.conftest import REPO
from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.services import free_port, unavailable, wait_for

EXAMPLES = REPO / "schemas" / "examples" / "okrs"
SALON, STUDIO = "salone-bella", "studio-lumen"
NONE = "—"
BANDS = {"certain", *(words for _, words in _BANDS)}
STATUS = {
    "on_track": "On track", "at_risk": "At risk", "off_track": "Off track",
    "achieved": "Achieved", "missed": "Missed", "not_started": "Not started",
    None: "Waiting for its baseline",
}  # fmt: skip


def _plans(folder: Path) -> list[Path]:
    """The two examples with their periods moved to run around today."""
    today = date.today()
    long = f"start: {today - timedelta(days=30)}, end: {today + timedelta(days=60)}"
    short = f"start: {today - timedelta(days=20)}, end: {today + timedelta(days=40)}"
    out = []
    for name in ("salon.yaml", "tiktok.yaml"):
        text = (EXAMPLES / name).read_text()
        text = text.replace("start: 2026-01-01, end: 2026-06-30", long)
        text = text.replace("start: 2026-01-01, end: 2026-03-31", short)
        assert "2026-01-01, end" not in text, name
        (folder / name).write_text(text)
        out.append(folder / name)
    return out


def _events(prefix: str, campaigns: int) -> list[dict[str, Any]]:
    """Events of both shops, a few minutes ago and a few days ago."""
    now = datetime.now(UTC).replace(microsecond=0)
    recent = (now - timedelta(minutes=2)).isoformat()
    earlier = (now - timedelta(days=3)).isoformat()
    out: list[dict[str, Any]] = []

    def add(shop: str, kind: str, when: str, data: dict[str, Any]) -> None:
        out.append(cloud_event(f"{prefix}-{len(out)}", shop=shop, event_type=kind, time=when,
                               data=data))  # fmt: skip

    for i in range(campaigns):
        add(SALON, "campaign.launched", earlier if i % 2 else recent,
            {"campaign_id": f"{prefix}{i}", "channel": "instagram", "service": "scalp-care",
             "kind": "promo"})  # fmt: skip
    for i in range(3):
        add(SALON, "customer.created", recent, {"customer_id": f"{prefix}-c{i}"})
        add(SALON, "order.placed", earlier, {"order_id": f"{prefix}{i}", "customer_id": "c",
                                             "service": "scalp-care", "total": 45.5 + i,
                                             "currency": "EUR"})  # fmt: skip
    add(SALON, "partnership.signed", recent, {"partner_id": f"{prefix}-p"})
    for i in range(4):
        add(STUDIO, "social.post.published", earlier if i % 2 else recent,
            {"platform": "tiktok", "post_id": f"{prefix}{i}"})  # fmt: skip
    add(STUDIO, "social.followers.changed", recent, {"platform": "tiktok", "followers": 131})
    add(STUDIO, "campaign.launched", earlier,
        {"campaign_id": f"{prefix}-ad", "channel": "tiktok", "kind": "ad"})  # fmt: skip
    add(STUDIO, "influencer.contacted", recent, {"platform": "tiktok", "influencer": prefix})
    return out


def _backdated() -> list[dict[str, Any]]:
    """The 20 days before today: posts on weekdays (three or four: every slot met),
    followers growing to 130, scalp-care orders; what the forecasts stand on."""
    out: list[dict[str, Any]] = []
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def add(kind: str, shop: str, when: datetime, data: dict[str, Any]) -> None:
        out.append(cloud_event(f"h-{len(out)}", shop=shop, event_type=kind,
                               time=when.isoformat(), data=data))  # fmt: skip

    for back in range(20, 0, -1):  # from the short period's first day
        noon = midnight - timedelta(days=back) + timedelta(hours=11)
        add("social.followers.changed", STUDIO, noon,
            {"platform": "tiktok", "followers": 130 - back // 2})  # fmt: skip
        if noon.weekday() < 5:
            for i in range(3 + back % 2):
                add("social.post.published", STUDIO, noon + timedelta(minutes=i),
                    {"platform": "tiktok", "post_id": f"h{back}-{i}"})  # fmt: skip
        add("order.placed", SALON, noon, {"order_id": f"h{back}", "customer_id": "h",
                                           "service": "scalp-care", "total": 30 + back,
                                           "currency": "EUR"})  # fmt: skip
    return out


def _emit(env: dict[str, str], path: Path, events: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    done = okrflow(env, "emit", str(path))
    assert done.returncode == 0, done.stderr


def _counted(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM seen_events")).scalar_one())
    except sa.exc.OperationalError:
        return -1
    finally:
        engine.dispose()


def number(x: Any) -> str:
    """How the pages print a number (at most 2 decimals, thousands separated)."""
    if not isinstance(x, int | float) or not math.isfinite(x):
        return NONE
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def percent(x: Any) -> str:
    return NONE if x is None else f"{math.floor(x * 100 + 0.5)}%"


def _cli_json(env: dict[str, str], *args: str) -> Any:
    done = okrflow(env, *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        unavailable("chromium and chromedriver are not installed (Debian: chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (the dev extras)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,1400", "--disable-extensions", "--no-first-run"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shown(driver: Any) -> dict[str, Any]:
    """What the open shop page shows: per objective / key result / KPI, its fields' text."""
    script = """
      const out = {objectives: {}, krs: {}, kpis: {}};
      const fields = (el) => {
        const f = {};
        el.querySelectorAll('[data-field]').forEach((x) => {
          if (x.closest('[data-kr]') === el || x.closest('[data-kpi]') === el ||
              (!x.closest('[data-kr]') && x.closest('[data-objective]') === el)) {
            f[x.dataset.field] = x.textContent;
          }
        });
        return f;
      };
      document.querySelectorAll('[data-objective]').forEach((o) => {
        out.objectives[o.dataset.objective] = fields(o);
      });
      document.querySelectorAll('[data-kr]').forEach((k) => { out.krs[k.dataset.kr] = fields(k); });
      document.querySelectorAll('[data-kpi]').forEach((k) => { out.kpis[k.dataset.kpi] = fields(k); });
      return out;
    """
    return dict(driver.execute_script(script))


def _outlook(entry: dict[str, Any], figures: type[Any]) -> Any:
    """A `progress` entry's forecast as the report holds it (what the words are said from)."""
    if entry["forecast"] is None:
        return NoForecast(entry["forecast_reason"])
    return figures(**entry["forecast"])


def _expected(report: dict[str, Any]) -> dict[str, Any]:
    """What the page should show for one shop of `progress --format json`."""
    (shop,) = report["shops"]
    out: dict[str, Any] = {"objectives": {}, "krs": {}, "kpis": {}}
    for o in shop["objectives"]:
        end = date.fromisoformat(o["period"]["end"])
        out["objectives"][o["key"]] = {
            "status": STATUS[o["status"]], "progress": percent(o["progress"]),
            "expected": percent(o["expected"]),
            "forecast": objective_text(_outlook(o, ObjectiveForecastFigures), end),
        }  # fmt: skip
        for kr in o["key_results"]:
            said = key_result_text(_outlook(kr, KeyResultForecastFigures), kr["target"],
                                   kr["baseline"], end)  # fmt: skip
            shown = {
                "status": STATUS[kr["status"]], "progress": percent(kr["progress"]),
                "expected": percent(kr["expected"]), "value": number(kr["value"]),
                "baseline": number(kr["baseline"]), "target": number(kr["target"]),
                "forecast": said,
            }  # fmt: skip
            if kr.get("backfill") in ("pending", "running"):
                shown["backfill"] = f"backfill {kr['backfill']}: partial values"
            out["krs"][f"{o['key']}/{kr['key']}"] = shown
    for k in shop["kpis"]:
        health = {True: "Healthy", False: "Unhealthy", None: NONE}[k["healthy"]]
        out["kpis"][k["key"]] = {"value": number(k["value"]), "healthy": health}
    return out


def _mismatches(driver: Any, env: dict[str, str], base: str, shop: str) -> list[str]:
    """Loads the shop page and compares it with `okrflow progress --shop SHOP` run now."""
    report = _cli_json(env, "progress", "--shop", shop)
    driver.get(f"{base}/shops/{shop}")
    shown, expected = _shown(driver), _expected(report)
    problems = []
    for part in ("objectives", "krs", "kpis"):
        assert shown[part].keys() == expected[part].keys(), (part, shown[part], expected[part])
        for key, fields in expected[part].items():
            got = {k: v for k, v in shown[part][key].items() if k in fields}
            if got != fields:
                problems.append(f"{shop} {part} {key}: page {got} != progress {fields}")
    return problems


def test_pages_in_a_real_browser(kafka_bootstrap: str, tmp_path: Path, browser: Any) -> None:
    artifacts = Path(os.environ.get("OKRFLOW_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path / 'okrflow.db'}"
    port = free_port()
    env = pipeline_env(kafka_bootstrap, url, tmp_path, exporter_port=port,
                       exporter_refresh_seconds=0.5)  # fmt: skip
    applied = okrflow(env, "apply", *map(str, _plans(tmp_path)), "--yes")
    assert applied.returncode == 0, applied.stderr
    base = f"http://127.0.0.1:{port}"
    first = _events("a", campaigns=4) + _backdated()
    with (
        running(env, "worker", log=tmp_path / "worker.log") as worker,
        running(env, "exporter", log=tmp_path / "exporter.log") as exporter,
    ):
        _emit(env, tmp_path / "first.jsonl", first)
        wait_for(lambda: _counted(url), lambda n: n == len(first), 90, "the first events counted")

        # The shop pages show what `okrflow progress` prints (once the exporter's snapshot
        # has caught up: a bounded wait, reloading).
        for shop in (SALON, STUDIO):
            wait_for(lambda shop=shop: _mismatches(browser, env, base, shop), lambda m: not m,
                     30, f"{shop}'s page to match okrflow progress")  # fmt: skip
            assert browser.find_element("css selector", "h1").text == shop
            browser.save_screenshot(str(artifacts / f"shop-{shop}.png"))
        shown = _shown(browser)
        assert shown["krs"]["tiktok/influencers"]["value"] == "1"
        assert shown["krs"]["tiktok/followers"]["value"] == "131"
        # In words: how likely, to reach what by when, and the pace it takes.
        posts = shown["krs"]["tiktok/daily-posts"]["forecast"]
        assert " to reach " in posts and posts.endswith(" in every slot left"), posts
        assert " a day" in shown["krs"]["tiktok/followers"]["forecast"]
        assert shown["objectives"]["tiktok"]["forecast"].split(" (")[0] in BANDS

        # Keyboard: every key result is a link that takes focus; headings are real.
        links = browser.find_elements("css selector", "[data-kr] h3 a")
        assert len(links) == 4
        for link in links:
            browser.execute_script("arguments[0].focus()", link)
            assert browser.switch_to.active_element == link
        assert len(browser.find_elements("css selector", "main h2")) >= 2

        # 360 px wide: nothing wider than the window.
        browser.set_window_size(360, 900)
        browser.get(f"{base}/shops/{SALON}")
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        ), "the page scrolls sideways at 360 px"
        browser.save_screenshot(str(artifacts / "shop-narrow-360.png"))
        browser.set_window_size(1100, 1400)

        # A burn-up chart's points are `okrflow history`'s days.
        for shop, objective, kr in ((STUDIO, "tiktok", "daily-posts"),
                                    (SALON, "more-clients", "campaigns")):  # fmt: skip
            history = _cli_json(env, "history", "--shop", shop, "--objective", objective,
                                "--key-result", kr)  # fmt: skip
            browser.get(f"{base}/shops/{shop}")
            browser.find_element("css selector", f'[data-kr="{objective}/{kr}"] h3 a').click()
            wait_for(lambda: browser.find_elements("css selector", "svg.burnup"), bool, 10,
                     "the burn-up chart")  # fmt: skip
            points = [
                (c.get_attribute("data-day"), float(c.get_attribute("data-value")))
                for c in browser.find_elements("css selector", "svg.burnup circle.point")
            ]
            (days,) = [k["days"] for o in history["objectives"] for k in o["key_results"]]
            assert points == [(d["day"], d["value"]) for d in days]
            assert len(points) >= 20
            assert browser.find_elements("css selector", "svg.burnup polyline.pace")
            target = browser.find_element("css selector", "svg.burnup line.target")
            assert float(target.get_attribute("data-target")) == days[-1]["target"]
            if kr == "daily-posts":  # a cadence: its slots are drawn
                assert browser.find_elements("css selector", "svg.burnup rect.slot")
            # The forecast's p10-p90 band from today to the period's end, beside the pace.
            now = {k["key"]: k for o in _cli_json(env, "progress", "--shop", shop)["shops"][0]
                   ["objectives"] for k in o["key_results"]}[kr]["forecast"]  # fmt: skip
            drawn = browser.find_element("css selector", "svg.burnup g.forecast")
            for q in ("p10", "p50", "p90"):
                assert float(drawn.get_attribute(f"data-{q}")) == pytest.approx(now[q], rel=1e-3)
            assert browser.find_elements("css selector", "svg.burnup polygon.forecast-band")
            said = browser.find_element("css selector", '[data-kr] [data-field="forecast"]')
            assert said.text.split(" (")[0] in BANDS
            ticks = [
                float(t.get_attribute("data-tick"))
                for t in browser.find_elements("css selector", "svg.burnup text[data-tick]")
            ]
            step = ticks[1] - ticks[0]
            assert round(step / 10 ** math.floor(math.log10(step)), 9) in (1, 2, 2.5, 5), ticks
            assert max(ticks) >= now["p90"]
            browser.save_screenshot(str(artifacts / f"burnup-{shop}-{kr}.png"))

        # Live: more events change the open page in place, without a reload.
        browser.get(f"{base}/shops/{SALON}")
        browser.execute_script("window.__notReloaded = true")
        before = _shown(browser)["krs"]["more-clients/campaigns"]["value"]
        assert before == "4"
        second = _events("b", campaigns=3)
        _emit(env, tmp_path / "second.jsonl", second)
        wait_for(
            lambda: _shown(browser)["krs"]["more-clients/campaigns"]["value"],
            lambda v: v == "7", 30, "the campaigns shown to reach 7 without a reload",
        )  # fmt: skip
        # The words follow, from the JSON twin (the script says them as the server does).
        wait_for(
            lambda: (_shown(browser)["krs"]["more-clients/campaigns"]["forecast"],
                     _expected(_cli_json(env, "progress", "--shop", SALON))["krs"]
                     ["more-clients/campaigns"]["forecast"]),
            lambda pair: pair[0] == pair[1], 30, "the forecast's words to follow",
        )  # fmt: skip
        assert browser.execute_script("return window.__notReloaded === true")
        assert int(browser.find_element("tag name", "body").get_attribute("data-polls")) >= 1
        wait_for(lambda: _mismatches(browser, env, base, SALON), lambda m: not m, 30,
                 "the salon page to match okrflow progress after the update")  # fmt: skip
        browser.save_screenshot(str(artifacts / "shop-after-update.png"))
        assert worker.poll() is None and exporter.poll() is None
