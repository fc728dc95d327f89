"""The pages' routes on the exporter (read only):

    GET /                                               the shops
    GET /shops/{shop}                                   a shop's objective tree and KPIs
    GET /shops/{shop}/key-results/{objective}/{key}     a key result's burn-up
    GET /static/pages.css, /static/pages.js             served from the package

Each page's JSON twin is the same path with `?format=json`: `/` and a shop give the document
of `okrflow progress --format json` (every shop / that shop), a key result gives the one of
`okrflow history SHOP --objective O --key-result K --format json`. A key result's chart alone
is `?format=svg` (what the page's script swaps in when the chart changes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files

from sqlalchemy import Engine

from okrflow.access.tokens import TokenAuthenticator
from okrflow.exporter.collector import OkrCollector
from okrflow.exporter.pages import render
from okrflow.exporter.pages.access import PageAccess
from okrflow.exporter.pages.cache import PageCache
from okrflow.exporter.pages.forecast_text import key_result_text
from okrflow.exporter.pages.model import NotFound, PagesModel, SnapshotView
from okrflow.exporter.pages.svg import Band, burn_up
from okrflow.exporter.snapshot import ProgressSnapshot
from okrflow.jsontypes import JsonObject
from okrflow.ops.routes import Reply, Request
from okrflow.reports.forecasts import KeyResultForecastFigures
from okrflow.reports.progress import ProgressReport
from okrflow.settings import Settings

HTML = "text/html; charset=utf-8"
JSON = "application/json"
SVG = "image/svg+xml"
# The pages load nothing from elsewhere: their own CSS and script only.
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
STATIC_TYPES = {"pages.css": "text/css; charset=utf-8", "pages.js": "text/javascript"}


def _json_bytes(body: JsonObject) -> bytes:
    return json.dumps(body, allow_nan=False).encode() + b"\n"


def _json(status: int, body: JsonObject, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, [_json_bytes(body)], JSON, SECURITY_HEADERS + headers)


def _html(status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, [text.encode()], HTML, SECURITY_HEADERS + headers)


def static_routes() -> dict[str, Callable[[], Reply]]:
    """/static/pages.css and /static/pages.js, read once from the package."""
    folder = files("okrflow") / "exporter" / "pages" / "static"
    routes: dict[str, Callable[[], Reply]] = {}
    for name, content_type in STATIC_TYPES.items():
        reply = Reply(
            200, [(folder / name).read_bytes()], content_type,
            (("Cache-Control", "max-age=300"), ("X-Content-Type-Options", "nosniff")),
        )  # fmt: skip
        routes[f"/static/{name}"] = lambda reply=reply: reply  # type: ignore[misc]
    return routes


class Pages:
    """Answers the page routes from the model's current snapshot view."""

    def __init__(
        self, model: PagesModel, access: PageAccess, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._model = model
        self._access = access
        self._clock = clock or (lambda: datetime.now(UTC))
        self._cache = PageCache()

    def __call__(self, request: Request) -> Reply:
        fmt = request.query.get("format", "html")
        if fmt not in ("html", "json", "svg"):
            return self._missing(fmt, 400, f"format {fmt!r}: use html, json or svg", None)
        view = self._model.view()
        if view is None:
            return self._missing(fmt, 503, "no snapshot of the database yet; try again", None)
        parts = request.path.strip("/").split("/")
        try:
            if request.path == "/":
                return self._index(view, fmt)
            if len(parts) >= 2 and parts[0] == "shops":
                return self._shop_route(view, parts[1], parts[2:], fmt, request)
        except NotFound as exc:
            return self._missing(fmt, 404, str(exc), view)
        return self._missing(fmt, 404, f"no page at {request.path}", view)

    def _index(self, view: SnapshotView, fmt: str) -> Reply:
        def index() -> bytes:
            now = self._clock()
            shops = [] if self._access.require_token else view.shops
            # The index page shows statuses only: forecasts are made for its JSON twin.
            reports = [view.progress(shop, now, fmt == "json").shops[0] for shop in shops]
            if fmt == "json":
                return _json_bytes(ProgressReport(now, tuple(reports)).to_json())
            return render.index_page(reports, self._access.require_token).encode()

        body = self._cache.get(("/", fmt), view, index)
        return Reply(200, [body], JSON if fmt == "json" else HTML, SECURITY_HEADERS)

    def _shop_route(
        self, view: SnapshotView, shop: str, rest: list[str], fmt: str, request: Request
    ) -> Reply:
        verdict = self._access.check(shop, request.query, request.headers)
        if not verdict.allowed:
            line = (
                f"the pages of shop {shop!r} need one of its tokens: open them with "
                f"?token=… (okrflow tokens create --shop {shop})"
            )
            return self._missing(fmt, 403, line, None)
        cookie = (("Set-Cookie", verdict.set_cookie),) if verdict.set_cookie else ()
        active = view.plan(shop)
        if not rest:

            def shop_page() -> bytes:
                report = view.progress(shop, self._clock())
                if fmt == "json":
                    return _json_bytes(report.to_json())
                return render.shop_page(active.plan, report).encode()

            body = self._cache.get((shop, fmt), view, shop_page)
            return Reply(200, [body], JSON if fmt == "json" else HTML, SECURITY_HEADERS + cookie)
        if len(rest) == 3 and rest[0] == "key-results":
            objective_key, kr_key = rest[1], rest[2]
            objectives = {o.key: o for o in active.plan.objectives}
            objective = objectives.get(objective_key)
            if objective is None:
                raise NotFound(f"shop {shop!r} has no objective {objective_key!r} (objectives: "
                               f"{', '.join(objectives)})")  # fmt: skip
            krs = {k.key: k for k in objective.key_results}
            kr = krs.get(kr_key)
            if kr is None:
                raise NotFound(f"objective {objective_key!r} of shop {shop!r} has no key result "
                               f"{kr_key!r} (key results: {', '.join(krs)})")  # fmt: skip
            history = view.history(shop, objective_key, kr_key)
            if fmt == "json":
                return _json(200, history.to_json(), cookie)
            days = history.objectives[0].key_results[0].days
            forecast = view.forecast(shop, objective_key, kr_key)
            last = days[-1].figures if days else None
            text = key_result_text(
                forecast, last.target if last else None, last.baseline if last else None,
                objective.period.end,
            )  # fmt: skip
            band = Band(forecast, text) if isinstance(forecast, KeyResultForecastFigures) else None
            chart = burn_up(kr, objective, active.plan.timezone, days, band)
            if fmt == "svg":
                return Reply(200, [chart.encode()], SVG, SECURITY_HEADERS + cookie)
            page = render.key_result_page(shop, objective, kr_key, history, chart, text)
            return _html(200, page, cookie)
        raise NotFound(
            f"no page at {request.path}: try {render.shop_url(shop)} or "
            f"{render.shop_url(shop)}/key-results/OBJECTIVE/KEY_RESULT"
        )

    def _missing(self, fmt: str, status: int, line: str, view: SnapshotView | None) -> Reply:
        """An error page (or JSON) naming what exists: the shops, when they may be listed."""
        shops = [] if view is None or self._access.require_token else view.shops
        titles = {400: "Bad request", 403: "Token needed", 404: "Not found", 503: "Not ready"}
        if fmt == "json":
            return _json(status, {"error": line, "shops": [*shops]})
        links = [(shop, render.shop_url(shop)) for shop in shops]
        return _html(status, render.message_page(status, titles[status], line, links))


def pages_for(collector: OkrCollector, engine: Engine, settings: Settings) -> Pages:
    """The pages of the exporter's collector: its served snapshot, the database for the
    burn-up days, and token checks (the intake's) when `pages_require_token` is set."""

    def current() -> ProgressSnapshot | None:
        renderer = collector.renderer
        return renderer.snapshot if renderer is not None else None

    authenticator = TokenAuthenticator(engine, settings.intake_credentials_cache_seconds)
    access = PageAccess(settings.pages_require_token, authenticator.authenticate)
    return Pages(PagesModel(current, engine), access)
