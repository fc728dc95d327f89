"""Progress JSON is strict JSON: a value JSON cannot hold becomes null, never Infinity."""

import json
import math

from okrflow.reports.figures import number, ratio


def test_non_finite_values_become_null() -> None:
    assert number(math.inf) is None
    assert number(-math.inf) is None
    assert number(math.nan) is None
    assert ratio(math.nan) is None
    assert number(3.0) == 3 and number(2.5) == 2.5 and ratio(0.1234567) == 0.123457
    json.dumps({"v": number(math.inf), "p": ratio(math.inf)}, allow_nan=False)
