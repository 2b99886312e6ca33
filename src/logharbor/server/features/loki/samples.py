"""Range aggregations computed from the records themselves, when buckets cannot say them.

Why: most range functions are assembled from engine buckets (:mod:`.execute`); a few need every
value of a window (``stddev_over_time``, ``stdvar_over_time``, ``rate_counter``, a
``quantile_over_time`` whose range differs from the step), a conversion the engine cannot do
(``| unwrap duration(x)``/``bytes(x)``), or windows that are not whole seconds (a ``step`` of
15.5). These read the matching records — at most :data:`MAX_SAMPLES`, else a 400 that says so,
never a cut answer — and compute in Python with Loki's formulas.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from itertools import pairwise
from typing import Any

from logharbor.server.engine.store.rows import row_to_record
from logharbor.server.errors import ApiError
from logharbor.server.features.query import ast

from .lexer import _humanize_bytes, go_duration
from .nodes import RangeAgg
from .streams import Context, label_text, series_label_text, value_of

__all__ = ["MAX_SAMPLES", "sample_series"]

MAX_SAMPLES = 200_000
NS = 1_000_000_000
Labels = tuple[tuple[str, str], ...]


def _convert(value: Any, conversion: str | None) -> float | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    if conversion is None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if not math.isnan(number) else None
    text = str(value).strip()
    if conversion in ("duration", "duration_seconds"):
        ns = go_duration(text)
        return None if ns is None else ns / NS
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text)
    return None if m is None else _humanize_bytes(m[1], m[2])


def _quantile(q: float, values: list[float]) -> float:
    """Prometheus' quantile: linear interpolation between the closest ranks."""
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    weight = rank - low
    return ordered[low] * (1 - weight) + ordered[high] * weight


def _rate_counter(points: list[tuple[int, float]], start: int, end: int) -> float | None:
    """Prometheus' extrapolated rate of a counter (resets add the value after them)."""
    if len(points) < 2:
        return None
    increase = points[-1][1] - points[0][1]
    for (_, before), (_, after) in pairwise(points):
        if after < before:
            increase += before
    first_t, last_t = points[0][0], points[-1][0]
    sampled = (last_t - first_t) / NS
    if sampled <= 0:
        return None
    to_start, to_end = (first_t - start) / NS, (end - last_t) / NS
    average = sampled / (len(points) - 1)
    threshold = average * 1.1
    if increase > 0 and points[0][1] >= 0:
        to_zero = sampled * (points[0][1] / increase)
        to_start = min(to_start, to_zero)
    factor = (sampled + (to_start if to_start < threshold else average / 2)
              + (to_end if to_end < threshold else average / 2)) / sampled
    return increase * factor / ((end - start) / NS)


def _value(fn: str, points: list[tuple[int, float]], agg: RangeAgg, start: int, end: int) -> float | None:
    if not points:
        return None
    values = [v for _, v in points]
    range_s = agg.range_ns / NS
    if fn == "count_over_time":
        return float(len(values))
    if fn == "rate":
        return (sum(values) if agg.log.unwrap else len(values)) / range_s
    if fn in ("bytes_over_time", "sum_over_time"):
        return sum(values)
    if fn == "bytes_rate":
        return sum(values) / range_s
    if fn == "avg_over_time":
        return sum(values) / len(values)
    if fn == "min_over_time":
        return min(values)
    if fn == "max_over_time":
        return max(values)
    if fn == "first_over_time":
        return values[0]
    if fn == "last_over_time":
        return values[-1]
    if fn in ("stdvar_over_time", "stddev_over_time"):
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        return var if fn == "stdvar_over_time" else math.sqrt(var)
    if fn == "quantile_over_time":
        assert agg.quantile is not None
        return _quantile(agg.quantile, values)
    if fn == "rate_counter":
        return _rate_counter(points, start, end)
    raise AssertionError(fn)


def sample_series(ctx: Context, agg: RangeAgg, labels: tuple[str, ...], fields: tuple[str, ...],
                  times: list[int], flt: ast.Filter) -> dict[Labels, dict[int, float]]:
    """Values of ``agg`` at ``times`` (window ``[t - offset - range, t - offset)``) per label set."""
    shift = agg.offset_ns
    begin, stop = times[0] - shift - agg.range_ns, times[-1] - shift
    rows, _ = ctx.query(ast.Query(flt), begin, stop, MAX_SAMPLES + 1, cap=MAX_SAMPLES + 1)
    if len(rows) > MAX_SAMPLES:
        raise ApiError(400, "too_many_samples", f"{agg.fn} here reads each matching record and more than "
                       f"{MAX_SAMPLES} match; narrow the selector or the time range")
    per_group: dict[Labels, list[tuple[int, float]]] = {}
    for row in rows:
        record = row_to_record(row)
        if agg.log.unwrap is not None:
            value = _convert(value_of(record, agg.log.unwrap), agg.log.conversion)
            if value is None:
                continue
        elif agg.fn in ("bytes_over_time", "bytes_rate"):
            value = float(len((record.get("message") or "").encode()))
        else:
            value = 1.0
        key = tuple(sorted((n, series_label_text(n, label_text(value_of(record, f))))
                           for n, f in zip(labels, fields, strict=True)))
        group = tuple((k, v) for k, v in key if v != "")
        per_group.setdefault(group, []).append((record["timestamp"], value))
    out: dict[Labels, dict[int, float]] = {}
    for key, points in per_group.items():
        points.sort(key=lambda p: p[0])
        stamps = [p[0] for p in points]
        series: dict[int, float] = {}
        for t in times:
            end = t - shift
            lo, hi = bisect_left(stamps, end - agg.range_ns), bisect_left(stamps, end)
            value = _value(agg.fn, points[lo:hi], agg, end - agg.range_ns, end)
            if value is not None:
                series[t] = value
        if series:
            out[key] = series
    return out
