"""The exporter's pages on both databases: the JSON twins equal `okrflow progress` and
`okrflow history` (but for the instant: pace and forecasts move with it), and with
OKRFLOW_PAGES_REQUIRE_TOKEN a shop's pages open with one of its intake tokens (`okrflow
tokens create`), a revoked one is refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import REPO
from tests.integration.processes import okrflow, okrflow_env, running
from tests.services import free_port, wait_for

SALON = "salone-bella"
ROME = ZoneInfo("Europe/Rome")


def _plan(tmp_path: Path) -> Path:
    today = date.today()
    text = (REPO / "schemas/examples/okrs/salon.yaml").read_text()
    text = text.replace(
        "start: 2026-01-01, end: 2026-06-30",
        f"start: {today - timedelta(days=30)}, end: {today + timedelta(days=60)}",
    )
    text = text.replace("start: 2026-01-01, end: 2026-03-31",
                        f"start: {today - timedelta(days=20)}, end: {today + timedelta(days=40)}")  # fmt: skip
    path = tmp_path / "salon.yaml"
    path.write_text(text)
    return path


def _get(url: str, cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except OSError:
        return 0, {}, b""


# What moves with the instant judged: the expected pace, and a forecast's figures (the pages
# forecast at their snapshot's instant, the command at its own).
MOVING = ("expected", "probability", "p10", "p50", "p90", "required_per_day", "p50_progress")


def _pace_approx(doc: Any) -> Any:
    """`doc` with every figure that moves with the clock compared within 1e-4 (a second
    apart it moves ~1e-7)."""
    if isinstance(doc, dict):
        return {
            k: pytest.approx(v, rel=1e-4, abs=1e-4) if k in MOVING and v is not None
            else _pace_approx(v)
            for k, v in doc.items()
        }  # fmt: skip
    if isinstance(doc, list):
        return [_pace_approx(v) for v in doc]
    return doc


def _cli(env: dict[str, str], *args: str) -> Any:
    done = okrflow(env, *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_twins_and_tokens(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = okrflow_env(database_url=database_url, exporter_port=port,
                      exporter_refresh_seconds=0.2, pages_require_token="true")  # fmt: skip
    assert okrflow(env, "apply", str(_plan(tmp_path)), "--yes").returncode == 0
    created = okrflow(env, "tokens", "create", "--shop", SALON, "--name", "pages")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1].split()[-1]
    other = okrflow(env, "tokens", "create", "--shop", "someone-else")
    other_token = other.stdout.strip().splitlines()[-1].split()[-1]
    base = f"http://127.0.0.1:{port}"
    with running(env, "exporter", log=tmp_path / "exporter.log"):
        wait_for(lambda: _get(f"{base}/readyz")[0], lambda s: s == 200, 60, "/readyz")
        status, _, body = _get(f"{base}/?format=json")
        assert status == 200 and json.loads(body)["shops"] == []
        assert _get(f"{base}/shops/{SALON}?format=json")[0] == 403
        assert _get(f"{base}/shops/{SALON}?format=json&token={other_token}")[0] == 403

        status, headers, body = _get(f"{base}/shops/{SALON}?format=json&token={token}")
        assert status == 200
        cookie = headers["Set-Cookie"].split(";")[0]
        page = json.loads(body)
        cli = _cli(env, "progress", "--shop", SALON)
        page.pop("at"), cli.pop("at")
        # The same document, but for the instant judged: the expected pace and the
        # forecasts move with it.
        assert page == _pace_approx(cli)
        campaigns = page["shops"][0]["objectives"][0]["key_results"][1]
        start = date.today() - timedelta(days=30)
        # its basis: the period's local days before today (no event: a forecast of nothing)
        assert campaigns["forecast"]["basis_days"] == (datetime.now(ROME).date() - start).days

        status, _, body = _get(f"{base}/shops/{SALON}/key-results/more-clients/campaigns"
                               "?format=json", cookie)  # fmt: skip
        assert status == 200
        history = _cli(env, "history", "--shop", SALON, "--objective", "more-clients",
                       "--key-result", "campaigns")  # fmt: skip
        assert json.loads(body) == _pace_approx(history)  # today's forecast: made now
        status, _, body = _get(f"{base}/shops/{SALON}", cookie)
        assert status == 200 and b"<h1>salone-bella</h1>" in body

        tokens = okrflow(env, "tokens", "list", "--shop", SALON)
        token_id = tokens.stdout.split()[tokens.stdout.split().index(SALON) - 1]
        assert okrflow(env, "tokens", "revoke", token_id).returncode == 0
        wait_for(lambda: _get(f"{base}/shops/{SALON}?format=json", cookie)[0],
                 lambda s: s == 403, 30, "the revoked token refused")  # fmt: skip
