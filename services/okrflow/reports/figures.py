"""Numbers as the reports print them in JSON (`progress`, `history`, the pages' twins).

Strict JSON: a value JSON cannot hold (infinite or NaN) becomes null, never `Infinity`.
"""

from __future__ import annotations

import math


def number(x: float) -> float | int | None:
    """A JSON number; None (null) for a value JSON cannot hold (infinite or NaN). Whole
    values print as integers; others keep 9 decimals."""
    if not math.isfinite(x):
        return None
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else round(x, 9)


def ratio(x: float) -> float | None:
    """A share (progress, expected pace) to 6 decimals; None for infinite or NaN."""
    return round(x, 6) if math.isfinite(x) else None
