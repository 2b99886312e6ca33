"""The Loki read API's answers, apart from HTTP: a log query's streams, a metric query's matrix or
vector, a selector's volume, in Loki's shapes (``resultType`` and ``result``; sample values as
strings, times in seconds). ``routes.py`` reads the parameters (times, step, limit, direction,
the key's tenants) and maps errors to Loki's 4xx bodies.
"""

from __future__ import annotations

import math
import time
from typing import Any

from . import catalog
from .execute import Series, constant_series, eval_metric, points
from .logql import Constant, LogQuery, VectorAgg
from .streams import Context, log_streams

__all__ = ["NS", "instant_constant", "matrix", "streams", "vector", "volume_matrix", "volume_vector"]

NS = 1_000_000_000


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _seconds(ns: int) -> float | int:
    return ns // NS if ns % NS == 0 else ns / NS


def _matrix(series: Series) -> list[dict[str, Any]]:
    return [{"metric": dict(labels), "values": [[_seconds(t), _num(v)] for t, v in sorted(values.items())]}
            for labels, values in sorted(series.items())]


def _vector(series: Series, at: int) -> list[dict[str, Any]]:
    return [{"metric": dict(labels), "value": [_seconds(at), _num(values[at])]}
            for labels, values in sorted(series.items()) if at in values]


def _stats(began: float, entries: int) -> dict[str, Any]:
    return {"summary": {"execTime": round(time.perf_counter() - began, 6), "totalEntriesReturned": entries}}


def streams(ctx: Context, expr: LogQuery, start: int | None, end: int, limit: int, direction: str,
            began: float) -> dict[str, Any]:
    """A log query's lines of ``[start, end)`` as streams (``began``: when the request began)."""
    found, n = log_streams(ctx, expr, start, end, limit, direction)
    return {"resultType": "streams", "result": found, "stats": _stats(began, n)}


def matrix(ctx: Context, expr: Any, start: int, end: int, step: int, began: float) -> dict[str, Any]:
    """A metric query (or a constant) at every step of ``[start, end]``."""
    times = points(start, end, step)
    if isinstance(expr, Constant):
        series = constant_series(expr, times)
    else:
        series = eval_metric(ctx, expr, times, step)
    return {"resultType": "matrix", "result": _matrix(series), "stats": _stats(began, 0)}


def instant_constant(expr: Constant, at: int) -> dict[str, Any]:
    """A constant at one instant: a scalar, or a vector of one series."""
    if not expr.is_vector:
        return {"resultType": "scalar", "result": [_seconds(at), _num(expr.value)]}
    return {"resultType": "vector", "result": _vector(constant_series(expr, [at]), at)}


def vector(ctx: Context, expr: Any, at: int, began: float) -> dict[str, Any]:
    """A metric query at one instant (``sort``/``sort_desc`` order the series by value)."""
    result = _vector(eval_metric(ctx, expr, [at], None), at)
    if isinstance(expr, VectorAgg) and expr.op in ("sort", "sort_desc"):
        result.sort(key=lambda s: float(s["value"][1]), reverse=expr.op == "sort_desc")
    return {"resultType": "vector", "result": result, "stats": _stats(began, 0)}


def volume_vector(ctx: Context, lq: LogQuery, start: int, end: int, limit: int,
                  target: list[str]) -> dict[str, Any]:
    """Bytes per series of a selector over ``[start, end]``, as one vector at ``end``."""
    series = catalog.volume(ctx, lq, [end], end - start, None, limit, target)
    return {"resultType": "vector", "result": _vector(series, end)}


def volume_matrix(ctx: Context, lq: LogQuery, start: int, end: int, step: int, limit: int,
                  target: list[str]) -> dict[str, Any]:
    """Bytes per series of a selector at every step of ``[start, end]``."""
    series = catalog.volume(ctx, lq, points(start, end, step), step, step, limit, target)
    return {"resultType": "matrix", "result": _matrix(series)}
