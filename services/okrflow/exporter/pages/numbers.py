"""Numbers as the pages print them; the script (static/pages.js: number, percent) prints
them the same way when it updates a page in place."""

from __future__ import annotations

import math

from okrflow.reports.figures import Number

NONE = "—"


def number(x: Number) -> str:
    """A value as shown: thousands separated, at most 2 decimals; an em dash for none."""
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x):
        return NONE
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def percent(x: float | None) -> str:
    """A ratio as a whole percentage (rounded half up, like the script's Math.round)."""
    if not isinstance(x, int | float) or not math.isfinite(x):
        return NONE
    return f"{math.floor(x * 100 + 0.5)}%"
