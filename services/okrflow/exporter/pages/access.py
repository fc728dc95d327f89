"""Who may see a shop's pages: everyone who reaches the exporter, or (with
`OKRFLOW_PAGES_REQUIRE_TOKEN`) whoever holds one of the shop's intake tokens.

The token comes as `?token=` (a link to share) or as the cookie that link sets: HttpOnly,
SameSite=Strict, scoped to the shop's pages (`Path=/shops/SHOP`), so the page's script never
sees it and no other site can send it. Tokens are checked by the intake's own
`okrflow.access.tokens.TokenAuthenticator` (SHA-256 lookup, verdicts cached a few seconds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from okrflow.exporter.pages.render import shop_url

COOKIE = "okrflow_pages_token"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # The token came in the query and is good: remember it in a cookie.
    set_cookie: str | None = None


def _cookie_token(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    try:
        jar: SimpleCookie = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


class PageAccess:
    """`check(shop, query, headers)`; `authenticate(token)` gives a token's shop or None."""

    def __init__(
        self, require_token: bool, authenticate: Callable[[str], str | None] | None
    ) -> None:
        if require_token and authenticate is None:
            raise ValueError("requiring a token needs a way to check tokens")
        self.require_token = require_token
        self._authenticate = authenticate

    def check(self, shop: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Verdict:
        if not self.require_token:
            return Verdict(True)
        assert self._authenticate is not None
        token = query.get("token")
        if token is not None and self._authenticate(token) == shop:
            cookie = (
                f"{COOKIE}={token}; Path={shop_url(shop)}; HttpOnly; SameSite=Strict; "
                "Max-Age=2592000"
            )
            if headers.get("x-forwarded-proto") == "https":  # behind a TLS proxy
                cookie += "; Secure"
            return Verdict(True, cookie)
        cookie_token = _cookie_token(headers)
        if cookie_token is not None and self._authenticate(cookie_token) == shop:
            return Verdict(True)
        return Verdict(False)
