"""The ``anomaly`` condition: a rule's value now against its own baseline, by median and MAD.

The value is what a count, ratio or value rule would compute (``metric``), per group. The
baseline is the same value over earlier windows of the same length:

- ``periods``: the ``periods`` windows right before the current one (a sudden change);
- ``same_hour``: the same time of day on each of the last ``periods`` days (a daily rhythm:
  a nightly batch's burst of errors is usual at 02:00 and unusual at 14:00).

A group is anomalous when ``|value − median| > k × max(MAD, min_mad)`` in the rule's
``direction`` and the change is at least ``min_change``. MAD (median absolute deviation) is
robust: one earlier incident in the baseline barely moves it, unlike a standard deviation.
The floor keeps a flat baseline (MAD 0: no errors at all, every day) from firing on one error.

Every window is compiled by the query compiler exactly as the plain rule would be, with the
clock moved back; the windows of one role are then sent as **one** SQL statement, a
``UNION ALL`` of the compiled queries each tagged with its period number, with every
placeholder renamed per period (values stay parameters; no user text enters the SQL).
"""

from __future__ import annotations

import statistics
from typing import Any

from logharbor.server.engine.store.sql.alerts import PERIOD, union_sql

__all__ = ["DAY_NS", "PERIOD", "Verdict", "judge", "union_sql"]

DAY_NS = 86400 * 10**9


class Verdict(dict[str, Any]):
    """What the alert payload says about one group: value, median, mad, k, threshold, deviation."""


def judge(value: float | None, baseline: list[float], *, k: float, min_mad: float, min_change: float,
          direction: str, min_periods: int) -> tuple[bool, Verdict]:
    """Whether ``value`` is anomalous against ``baseline``, and the figures that say why.

    No verdict (inactive) without a value or with fewer than ``min_periods`` baseline values.
    """
    out = Verdict(value=value, k=k, baseline=baseline, median=None, mad=None, threshold=None, deviation=None)
    if value is None or len(baseline) < max(1, min_periods):
        return False, out
    median = statistics.median(baseline)
    mad = statistics.median([abs(x - median) for x in baseline])
    threshold = k * max(mad, min_mad)
    deviation = value - median
    out.update(median=median, mad=mad, threshold=threshold, deviation=deviation)
    size = {"up": deviation, "down": -deviation, "both": abs(deviation)}[direction]
    return size > threshold and size >= min_change, out
