"""Forecasts end to end, on both databases with the real broker: the salon and TikTok
examples with their periods moved around today, weeks of backdated events counted by the
worker; the forecasts show in `progress --format json` (now, `--at`, `--as-of`), in
`history` (every day, as `progress --as-of` that day), and in the exporter's pages (the
JSON twin, the words, the burn-up's band)."""

from __future__ import annotations

import json
import random
import urllib.request
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.conftest import REPO
from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.services import free_port, wait_for

EXAMPLES = REPO / "schemas" / "examples" / "okrs"
ROME = ZoneInfo("Europe/Rome")
SALON, STUDIO = "salone-bella", "studio-lumen"
TODAY = datetime.now(ROME).date()
LONG = (TODAY - timedelta(days=30), TODAY + timedelta(days=60))
SHORT = (TODAY - timedelta(days=20), TODAY + timedelta(days=40))
FORECAST_KEYS = ["probability", "p10", "p50", "p90", "required_per_day", "basis_days", "method"]


def _plans(folder: Path) -> list[Path]:
    out = []
    for name in ("salon.yaml", "tiktok.yaml"):
        text = (EXAMPLES / name).read_text()
        text = text.replace(
            "start: 2026-01-01, end: 2026-06-30", f"start: {LONG[0]}, end: {LONG[1]}"
        )
        text = text.replace("start: 2026-01-01, end: 2026-03-31",
                            f"start: {SHORT[0]}, end: {SHORT[1]}")  # fmt: skip
        # Typed, so the key result forecasts without waiting for a backfill to measure it.
        text = text.replace("baseline: {from: history}", "baseline: 200")
        (folder / name).write_text(text)
        out.append(folder / name)
    return out


def _at(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), ROME).isoformat()


def _events(rng: random.Random) -> list[dict[str, Any]]:
    """Every day of the periods up to today: clients, orders, campaigns and partners of the salon;
    followers, posts on weekdays (3 or more: every slot met so far), the month's ads and
    influencers of the studio. Today's events only before now."""
    out: list[dict[str, Any]] = []

    def add(shop: str, kind: str, when: str, data: dict[str, Any]) -> None:
        if datetime.fromisoformat(when) < datetime.now(UTC):
            out.append(cloud_event(f"f-{len(out)}", shop=shop, event_type=kind, time=when,
                                   data=data))  # fmt: skip

    followers = 120
    ads: dict[tuple[int, int], int] = {}
    for n in range((TODAY - LONG[0]).days + 1):
        day = LONG[0] + timedelta(days=n)
        for i in range(rng.randrange(4)):
            add(SALON, "customer.created", _at(day, 9 + i), {"customer_id": f"c{n}-{i}"})
        for i in range(rng.randrange(3)):
            add(SALON, "order.placed", _at(day, 10 + i),
                {"order_id": f"o{n}-{i}", "customer_id": f"c{n}", "service": "scalp-care",
                 "total": 20 + rng.randrange(60), "currency": "EUR"})  # fmt: skip
        if n % 12 == 5:
            add(SALON, "partnership.signed", _at(day, 11), {"partner_id": f"p{n}"})
        if n % 5 == 0:
            add(SALON, "campaign.launched", _at(day, 8),
                {"campaign_id": f"k{n}", "channel": "instagram", "service": "scalp-care",
                 "kind": "promo"})  # fmt: skip
        if day < SHORT[0]:
            continue
        followers += rng.randrange(3)
        add(STUDIO, "social.followers.changed", _at(day, 0, 30),
            {"platform": "tiktok", "followers": followers})  # fmt: skip
        if day.weekday() < 5:
            for i in range(3 + rng.randrange(2)):
                add(STUDIO, "social.post.published", _at(day, 0, 1 + i),
                    {"platform": "tiktok", "post_id": f"p{n}-{i}"})  # fmt: skip
        month = (day.year, day.month)
        while ads.get(month, 0) < 4:  # the month's ads on its first day in the period
            ads[month] = ads.get(month, 0) + 1
            add(STUDIO, "campaign.launched", _at(day, 0, 10 + ads[month]),
                {"campaign_id": f"a{n}-{ads[month]}", "channel": "tiktok", "kind": "ad"})  # fmt: skip
        if n % 4 == 0:
            add(STUDIO, "influencer.contacted", _at(day, 0, 20),
                {"platform": "tiktok", "influencer": f"i{n}"})  # fmt: skip
    return out


def _counted(database_url: str) -> int:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM seen_events")).scalar_one())
    except sa.exc.OperationalError:
        return -1
    finally:
        engine.dispose()


def _json(env: dict[str, str], *args: str) -> Any:
    done = okrflow(env, *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _key_results(report: Any) -> dict[tuple[str, str], Any]:
    return {(o["key"], kr["key"]): kr for s in report["shops"] for o in s["objectives"]
            for kr in o["key_results"]}  # fmt: skip


def _objectives(report: Any) -> dict[str, Any]:
    return {o["key"]: o for s in report["shops"] for o in s["objectives"]}


def _end(period: tuple[date, date]) -> datetime:
    return datetime.combine(period[1] + timedelta(days=1), time(0), ROME).astimezone(UTC)


def _check_now(report: Any) -> None:
    """The forecasts of `progress` now: which key results have one, and what holds of it."""
    at = datetime.fromisoformat(report["at"])
    krs = _key_results(report)
    no_forecast = {("new-service", "refund-rate")}
    for key, kr in krs.items():
        assert list(kr)[list(kr).index("last_event_at") + 1 :][:2] == [
            "forecast",
            "forecast_reason",
        ]
        if key in no_forecast:
            assert kr["forecast"] is None and "maintain" in kr["forecast_reason"], key
            continue
        f = kr["forecast"]
        assert f is not None and kr["forecast_reason"] is None, (key, kr["forecast_reason"])
        cadence = key[1] in ("daily-posts", "monthly-ads")
        assert list(f) == FORECAST_KEYS + (["required_per_slot"] if cadence else []), key
        assert 0 <= f["probability"] <= 1 and f["p10"] <= f["p50"] <= f["p90"], key
        period = LONG if key[0] == "more-clients" else SHORT
        complete = (TODAY - period[0]).days
        # `latest` stands on day-to-day changes: one fewer than the days
        assert f["basis_days"] == complete - (key[1] == "followers"), key
        if not cadence and key[1] != "followers":
            assert f["p10"] >= kr["value"] - 1e-6, key  # what was counted is certain
            days_left = (_end(period) - at).total_seconds() / 86400
            need = max(0.0, kr["target"] - kr["value"])
            assert f["required_per_day"] == pytest.approx(need / days_left, rel=1e-4, abs=1e-6)
    assert krs["tiktok", "daily-posts"]["forecast"]["required_per_slot"] == 3
    tiktok = _objectives(report)["tiktok"]
    product = 1.0
    for kr in tiktok["key_results"]:
        product *= kr["forecast"]["probability"]
    assert list(tiktok["forecast"]) == ["probability", "p50_progress"]
    assert tiktok["forecast"]["probability"] == pytest.approx(product, abs=1e-5)
    # The salon's objectives roll up a maintain key result, taken to hold (or stay broken)
    # to the end as it does now: each objective's chance is at most its forecast parts'.
    for key in ("more-clients", "new-service"):
        objective = _objectives(report)[key]
        chances = [k["forecast"]["probability"] for k in objective["key_results"] if k["forecast"]]
        assert objective["forecast"] is not None, objective["forecast_reason"]
        assert objective["forecast"]["probability"] <= min(chances, default=1.0) + 1e-6, key
        assert 0 <= objective["forecast"]["p50_progress"] <= 1, key


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read()


def test_forecasts_show_in_progress_history_and_the_pages(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path, exporter_port=port,
                       exporter_refresh_seconds=0.5)  # fmt: skip
    applied = okrflow(env, "apply", *map(str, _plans(tmp_path)), "--yes")
    assert applied.returncode == 0, applied.stderr
    events = _events(random.Random(23))
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    base = f"http://127.0.0.1:{port}"
    with (
        running(env, "worker", log=tmp_path / "worker.log") as worker,
        running(env, "exporter", log=tmp_path / "exporter.log") as exporter,
    ):
        assert okrflow(env, "emit", str(path)).returncode == 0
        wait_for(lambda: _counted(database_url), lambda n: n == len(events), 90, "all counted")

        now = _json(env, "progress")
        _check_now(now)

        # The pages' twin carries the same forecasts (made at the snapshot's instant).
        def twin() -> Any:
            return json.loads(_get(f"{base}/shops/{STUDIO}?format=json"))

        def same_basis(page: Any) -> bool:
            mine = {k: v["forecast"] for k, v in _key_results(page).items()}
            cli = {k: v["forecast"] for k, v in _key_results(now).items() if k[0] == "tiktok"}
            return mine.keys() == cli.keys() and all(
                mine[k]["basis_days"] == f["basis_days"]
                and mine[k]["probability"] == pytest.approx(f["probability"], abs=1e-3)
                for k, f in cli.items()
            )

        wait_for(twin, same_basis, 30, "the pages' twin to carry the forecasts")
        shop_page = _get(f"{base}/shops/{STUDIO}").decode()
        assert shop_page.count('data-field="forecast"') == 5  # the objective, 4 key results
        assert " to reach 170 by " in shop_page and " a day<" in shop_page
        chart = _get(f"{base}/shops/{SALON}/key-results/more-clients/campaigns").decode()
        assert 'class="forecast-band"' in chart and "data-forecast=" in chart
        assert worker.poll() is None and exporter.poll() is None

    # --as-of D: the forecast as it stood at the end of D; history's day D says the same.
    yesterday = TODAY - timedelta(days=1)
    as_of = _json(env, "progress", "--as-of", yesterday.isoformat())
    history = _json(env, "history", "--shop", STUDIO)
    (tiktok,) = history["objectives"]
    by_day = {d["day"]: d for d in tiktok["days"]}
    assert by_day[yesterday.isoformat()]["forecast"] == _objectives(as_of)["tiktok"]["forecast"]
    for kr in tiktok["key_results"]:
        days = {d["day"]: d for d in kr["days"]}
        then = _key_results(as_of)["tiktok", kr["key"]]
        assert days[yesterday.isoformat()]["forecast"] == then["forecast"], kr["key"]
        assert then["forecast"]["basis_days"] == (yesterday - SHORT[0]).days + 1 - (
            kr["key"] == "followers"
        )
        # The first days have too little data: null, and the reason.
        first = days[(SHORT[0] + timedelta(days=2)).isoformat()]
        assert first["forecast"] is None
        assert first["forecast_reason"].startswith("needs 7 complete days"), kr["key"]
        # The forecast moved as the days came in: a backtest reads it day by day.
        moved = {d["forecast"]["probability"] for d in kr["days"] if d["forecast"]}
        assert len(moved) > 1 or kr["key"] == "monthly-ads", kr["key"]

    # --at: from the days up to that instant's local day.
    at = datetime.combine(TODAY - timedelta(days=3), time(12), ROME)
    earlier = _key_results(_json(env, "progress", "--at", at.isoformat()))
    assert (
        earlier["more-clients", "campaigns"]["forecast"]["basis_days"]
        == (TODAY - timedelta(days=3) - LONG[0]).days
    )
    table = okrflow(env, "history", "--shop", STUDIO, "--from", yesterday.isoformat())
    assert table.returncode == 0 and "chance" in table.stdout
