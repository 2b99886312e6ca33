"""``stats``/``timechart`` functions → ClickHouse aggregate expressions.

| function | SQL | notes |
|---|---|---|
| ``count()`` / ``count(f)`` | ``count()`` / ``countIf(f present)`` | |
| ``count_uniq(f)`` | ``uniqExact`` | exact distinct values |
| ``sum avg min max (f)`` | ``sum avg min max`` | numbers; ``min``/``max`` of text or time too |
| ``pNN(f)`` | ``quantile(NN/100)`` | interpolated; sampled (8192 values) per group beyond that |
| ``rate()`` | ``count() / seconds`` | per second: over the span, the window, or the group's extent |
| ``first(f)`` / ``last(f)`` | ``argMin``/``argMax`` by timestamp | earliest / latest value |
"""

from __future__ import annotations

import re

from . import ast
from .errors import QueryTypeError, UnknownFunctionError
from .fields import Kind, format_time_sql
from .filters import FilterCompiler, Params, Resolver

__all__ = ["aggregate_sql"]

_PERCENTILE = re.compile(r"p(\d{1,3})")


def percentile_level(fn: str) -> float:
    """``p5`` → 0.05, ``p50`` → 0.5, ``p999`` → 0.999 (three digits are per mille)."""
    digits = _PERCENTILE.fullmatch(fn)
    assert digits is not None
    return int(digits[1]) / (1000 if len(digits[1]) == 3 else 100)


def aggregate_sql(
    agg: ast.Agg, resolve: Resolver, params: Params, *, records: bool, window_s: int | None
) -> tuple[str, Kind]:
    """The SQL expression of one aggregate and the kind of value it returns."""
    fn = agg.fn
    if fn == "count" and agg.arg is None:
        return "count()", "int"
    if fn == "rate":
        if window_s:
            return f"count() / {int(window_s)}", "float"
        if not records:
            raise QueryTypeError("rate() needs records or a time range; put it before other stats")
        return ("count() / greatest(1, dateDiff('second', min(`timestamp`), max(`timestamp`)))", "float")
    if agg.arg is None:
        raise QueryTypeError(f"{fn}() needs a field")
    ref = resolve(agg.arg, None)
    if ref.kind == "json":
        raise QueryTypeError(f"{fn}() needs a path inside attributes, not the whole object")
    if fn == "count":
        return f"countIf({FilterCompiler(params, resolve, 0).exists(ref)})", "int"
    if fn == "count_uniq":
        # an attribute's text form, NULL when absent: absence is not one more distinct value
        return f"uniqExact({ref.sql})", "int"
    if fn in ("first", "last"):
        if not records:
            raise QueryTypeError(f"{fn}() needs records; put it before other stats")
        pick = "argMin" if fn == "first" else "argMax"
        value = ref.select_sql if ref.kind == "time" else ref.sql
        kind: Kind = "string" if ref.kind in ("time", "dynamic", "text") else ref.kind
        if ref.kind == "dynamic":
            value = ref.group_sql
        return f"{pick}({value}, `timestamp`)", kind
    if fn in ("min", "max") and ref.kind in ("string", "text", "time"):
        expr = f"{fn}({ref.sql})"
        return (format_time_sql(expr), "string") if ref.kind == "time" else (expr, "string")
    number = ref.number_sql
    if number is None:
        raise QueryTypeError(f"{fn}() needs a number field; '{agg.arg}' holds {ref.kind}")
    if fn in ("sum", "avg", "min", "max"):
        return f"{fn}({number})", "float" if fn == "avg" or ref.kind != "int" else "int"
    if _PERCENTILE.fullmatch(fn):
        return f"quantile({percentile_level(fn)!r})({number})", "float"
    raise UnknownFunctionError(f"unknown function {fn!r}")

