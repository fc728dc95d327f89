"""Progress JSON is strict JSON: a value JSON cannot hold becomes null, never Infinity."""

import json
import math

from okrflow.reports.progress import _number, _ratio


def test_non_finite_values_become_null() -> None:
    assert _number(math.inf) is None
    assert _number(-math.inf) is None
    assert _number(math.nan) is None
    assert _ratio(math.nan) is None
    assert _number(3.0) == 3 and _number(2.5) == 2.5 and _ratio(0.1234567) == 0.123457
    json.dumps({"v": _number(math.inf), "p": _ratio(math.inf)}, allow_nan=False)
