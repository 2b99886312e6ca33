"""LogQL metric queries run through the query compiler, answered as Loki series.

Why here and not in the query package: the filter and the aggregation are the query language's
own (``compile_ast`` with a ``timechart``/``stats`` pipe); what is Loki's alone is put around it —
sliding ``[range]`` windows over ``step``-aligned points, and vector aggregations across streams.
A window is assembled from buckets of ``gcd(step, range)`` seconds, so each record is read once
however much the windows overlap.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

from logharbor.record import parse_timestamp
from logharbor.server.engine.store.timebounds import before_end
from logharbor.server.errors import ApiError
from logharbor.server.features.query import ast
from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.fields import resolve_field
from logharbor.server.features.query.filters import FilterCompiler, Params

from .logql import Constant, LogQLError, LogQuery, RangeAgg, field_name
from .nodes import Binary, LabelReplace, Metric
from .samples import sample_series
from .streams import STREAM_LABELS, Context, label_text, series_label_text
from .vectors import Series, aggregate, binary_series, label_replace, scalar_binary

__all__ = ["Group", "Series", "aggregate", "bytes_rows", "constant_series", "default_group", "eval_metric",
           "eval_range", "points", "range_group"]

NS = 1_000_000_000
MAX_BUCKETS = 11_000
#: bucket rows (series × buckets) one metric query may read before it is refused as too large
MAX_BUCKET_ROWS = 200_000


def points(start: int, end: int, step: int) -> list[int]:
    """Evaluation times: multiples of ``step`` within ``[start, end]`` (Loki's step alignment)."""
    first = -(-start // step) * step
    return list(range(first, end + 1, step)) if first <= end else []


@dataclass(frozen=True)
class Group:
    labels: tuple[str, ...]  # output label names
    fields: tuple[str, ...]  # the field of each label


def default_group(lq: LogQuery, extra: tuple[str, ...] = ()) -> Group:
    """The labels of a stream (``keep``/``drop`` applied), plus ``extra`` an outer ``by`` needs."""
    names = tuple(n for n in dict.fromkeys((*STREAM_LABELS, *lq.selector))
                  if (lq.keep is None or n in lq.keep) and n not in lq.drop)
    names = tuple(dict.fromkeys((*names, *extra)))
    return Group(names, tuple(_label_field(lq, n) for n in names))


def _label_field(lq: LogQuery, name: str) -> str:
    for lf in reversed(lq.label_formats):
        if lf.name == name:
            if lf.template is not None:
                raise LogQLError(f"grouping by {name!r}, made by a label_format template, is not supported")
            return lf.source or name
    for pattern in lq.extractors:
        if name in pattern.groupindex:
            raise LogQLError(f"grouping by {name!r}, extracted by regexp/pattern, is not supported")
    return field_name(name)


def _aggs(agg: RangeAgg) -> tuple[ast.Agg, ...]:
    f = agg.log.unwrap
    if agg.fn == "rate" and f is not None:  # the per-second sum of the values
        return ast.Agg("sum", f, "s"), ast.Agg("count", f, "c")
    if agg.fn in ("count_over_time", "rate"):
        return (ast.Agg("count", None, "c"),)
    if agg.fn in ("sum_over_time", "avg_over_time"):
        return ast.Agg("sum", f, "s"), ast.Agg("count", f, "c")
    if agg.fn in ("min_over_time", "max_over_time"):
        return ast.Agg(agg.fn[:3], f, "s"), ast.Agg("count", f, "c")
    if agg.fn in ("first_over_time", "last_over_time"):  # argMin/argMax by timestamp per bucket
        return ast.Agg(agg.fn.split("_")[0], f, "s"), ast.Agg("count", f, "c")
    assert agg.quantile is not None
    q = round(agg.quantile * 1000)
    if q % 10 == 0:
        fn = f"p{q // 10}"
    elif q >= 100:
        fn = f"p{q}"
    else:
        raise LogQLError(f"quantile_over_time({agg.quantile}) is not supported; use whole percents "
                         "(0.5, 0.95, 0.99) or per mille from 0.1 (0.999)")
    return ast.Agg(fn, f, "s"), ast.Agg("count", f, "c")


def _bucket_rows(ctx: Context, agg: RangeAgg, group: Group, start: int, end: int, span_s: int | None,
                 now: int) -> list[tuple[int, tuple[str, ...], dict[str, Any]]]:
    """(bucket start ns, group values, partial values) rows over ``[start, end)``."""
    flt = agg.log.query.filter
    if agg.log.unwrap is not None:
        flt = ast.And((flt, ast.Exists(agg.log.unwrap)))
    fields = tuple(dict.fromkeys(group.fields))
    if agg.fn in ("bytes_over_time", "bytes_rate"):
        rows = bytes_rows(ctx, flt, fields, start, end, span_s, now)
    else:
        pipe: ast.Pipe = (ast.Timechart(f"{span_s}s", _aggs(agg), fields) if span_s
                          else ast.Stats(_aggs(agg), fields))
        rows, cap = ctx.query(ast.Query(flt, (pipe,)), start, end, None, now, cap=MAX_BUCKET_ROWS)
        if len(rows) >= cap:
            raise ApiError(400, "too_many_series", f"the query makes more than {cap} series × steps; "
                           "use a larger step or aggregate with sum by (…)")
    out = []
    stamps: dict[str, int] = {}  # one parse per bucket, not per row
    for row in rows:
        if "_at" in row:
            at = row["_at"]
        elif span_s:
            text = row["_time"]
            at = stamps.get(text) or stamps.setdefault(text, parse_timestamp(text))
        else:
            at = start
        out.append((at, tuple(label_text(row.get(f)) for f in fields), row))
    return out


def bytes_rows(ctx: Context, flt: ast.Filter, fields: tuple[str, ...], start: int, end: int,
                span_s: int | None, now: int) -> list[dict[str, Any]]:
    """Bytes of lines per bucket: the query language has no length function, so this one SELECT is
    built here, with the same filter compiler, parameters and key scope as every query."""
    params = Params()
    where = [f"`timestamp` >= fromUnixTimestamp64Nano({params.add(start, 'Int64')}, 'UTC')",
             before_end("`timestamp`", params.add(end, "Int64"), end)]
    if ctx.extra is not None:
        flt = ast.And((ctx.extra, flt))
    try:
        if not isinstance(flt, ast.MatchAll):
            where.append(FilterCompiler(params, resolve_field, now).compile(flt))
        refs = [resolve_field(f) for f in fields]
    except QueryError as exc:
        raise ApiError(400, exc.code, exc.message, detail=exc.detail) from None
    all_params: dict[str, object] = dict(params.values)
    if ctx.scope is not None:
        where.append(f"({ctx.scope[0]})")
        all_params.update(ctx.scope[1])
    cols = [f"{r.group_sql} AS `g{i}`" for i, r in enumerate(refs)]
    keys = [f"`g{i}`" for i in range(len(refs))]
    if span_s:
        bucket = f"toStartOfInterval(`timestamp`, toIntervalSecond({int(span_s)}))"
        cols.insert(0, f"toUnixTimestamp({bucket}) AS b")
        keys.insert(0, "b")
    cols.append("sum(length(`message`)) AS s")
    sql = (f"SELECT {', '.join(cols)} FROM {ctx.store.table} WHERE {' AND '.join(where)}"  # noqa: S608
           + (f" GROUP BY {', '.join(keys)}" if keys else "") + f" LIMIT {MAX_BUCKET_ROWS + 1}")
    rows = ctx.run(sql, all_params)
    if len(rows) > MAX_BUCKET_ROWS:
        raise ApiError(400, "too_many_series", "the query makes too many series × steps; use a larger step")
    out = []
    for row in rows:
        named = {f: row[f"g{i}"] for i, f in enumerate(fields)}
        named["s"] = row["s"]
        if span_s:
            named["_at"] = int(row["b"]) * NS
        out.append(named)
    return out


def _combine(fn: str, parts: list[dict[str, Any]], range_s: float) -> float | None:
    counts = sum(int(p.get("c") or 0) for p in parts) if fn not in ("bytes_over_time", "bytes_rate") else 1
    if not parts or counts == 0:
        return None
    if fn == "count_over_time":
        return float(counts)
    if fn == "rate" and not any("s" in p for p in parts):
        return counts / range_s
    values = [v for v in (_number(p.get("s")) for p in parts) if v is not None]  # in bucket order
    if not values:
        return None
    if fn == "bytes_over_time":
        return sum(values)
    if fn in ("bytes_rate", "rate"):
        return sum(values) / range_s
    if fn == "sum_over_time":
        return sum(values)
    if fn == "avg_over_time":
        return sum(values) / counts
    if fn == "min_over_time":
        return min(values)
    if fn == "max_over_time":
        return max(values)
    if fn == "last_over_time":
        return values[-1]
    return values[0]  # first_over_time; quantile: one bucket per window


def _number(value: Any) -> float | None:
    """A bucket value as a number (``first``/``last`` of an attribute come back as text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _absent(ctx: Context, agg: RangeAgg, times: list[int], step: int | None) -> Series:
    """``absent_over_time``: 1 where the window holds no record, labelled by the selector's ``=``
    matchers (as Loki does); nothing where it holds some."""
    present = eval_range(ctx, replace(agg, fn="count_over_time"), Group((), ()), times, step).get((), {})
    missing = {t: 1.0 for t in times if t not in present}
    if not missing:
        return {}
    flt = agg.log.query.filter
    items = flt.items if isinstance(flt, ast.And) else (flt,)
    names = {field_name(n): n for n in agg.log.selector}
    labels = [(names[m.field], m.matcher.value) for m in items if isinstance(m, ast.Match)
              and isinstance(m.matcher, ast.Phrase) and m.field in names]
    return {tuple(sorted(labels)): missing}


def _needs_samples(agg: RangeAgg, step: int | None) -> bool:
    """Whether ``agg`` must read records (:mod:`.samples`) rather than engine buckets."""
    if agg.fn in ("stddev_over_time", "stdvar_over_time", "rate_counter") or agg.log.conversion is not None:
        return True
    if step is None:
        return agg.range_ns % NS != 0 or agg.offset_ns % NS != 0
    if any(x % NS for x in (step, agg.range_ns, agg.offset_ns)):
        return True  # windows that are not whole seconds
    return agg.fn == "quantile_over_time" and math.gcd(step, agg.range_ns, abs(agg.offset_ns)) != agg.range_ns


def eval_range(ctx: Context, agg: RangeAgg, group: Group, times: list[int], step: int | None) -> Series:
    """Values of a range aggregation at ``times`` (one time and no step for an instant query);
    a point at ``t`` covers ``[t - offset - range, t - offset)``."""
    if not times:
        return {}
    if agg.fn == "absent_over_time":
        return _absent(ctx, agg, times, step)
    flt = agg.log.query.filter
    if agg.log.unwrap is not None:
        flt = ast.And((flt, ast.Exists(agg.log.unwrap)))
    if _needs_samples(agg, step):
        return sample_series(ctx, agg, group.labels, group.fields, times, flt)
    now = time.time_ns()
    shift = agg.offset_ns
    if step is None:
        span = agg.range_ns
        rows = _bucket_rows(ctx, agg, group, times[0] - shift - agg.range_ns, times[0] - shift, None, now)
    else:
        span = math.gcd(step, agg.range_ns, abs(shift))
        begin, stop = times[0] - shift - agg.range_ns, times[-1] - shift
        if (stop - begin) // span > MAX_BUCKETS:
            raise ApiError(400, "too_many_points", "the range needs too many buckets; use a larger step")
        rows = _bucket_rows(ctx, agg, group, begin, stop, span // NS, now)
    buckets: dict[tuple[str, ...], dict[int, list[dict[str, Any]]]] = {}
    for at, values, row in rows:
        buckets.setdefault(values, {}).setdefault(at, []).append(row)
    unique = tuple(dict.fromkeys(group.fields))
    series: Series = {}
    for values, per_bucket in buckets.items():
        by_field = dict(zip(unique, values, strict=True))
        labels = tuple((n, series_label_text(n, by_field[f]))
                       for n, f in zip(group.labels, group.fields, strict=True) if by_field[f] != "")
        out: dict[int, float] = {}
        for t in times:
            end = t - shift
            parts = ([r for b in range(end - agg.range_ns, end, span) for r in per_bucket.get(b, [])]
                     if step is not None else per_bucket.get(end - agg.range_ns, []))
            value = _combine(agg.fn, parts, agg.range_ns / NS)
            if value is not None:
                out[t] = value
        if out:
            series[tuple(sorted(labels))] = out
    return series


def range_group(agg: RangeAgg, extra: tuple[str, ...] = ()) -> Group:
    """The labels of a range aggregation's series: ``by``/``without`` when it has them (streams
    merged per group, Loki's grouped range aggregation), else those of its streams."""
    if agg.by is not None:
        names = tuple(dict.fromkeys((*agg.by, *extra)))
        return Group(names, tuple(_label_field(agg.log, n) for n in names))
    base = default_group(agg.log, extra)
    if agg.without is None:
        return base
    kept = [(n, f) for n, f in zip(base.labels, base.fields, strict=True)
            if n not in agg.without or n in extra]
    return Group(tuple(n for n, _ in kept), tuple(f for _, f in kept))


_PUSHDOWN = {"sum": {"count_over_time", "rate", "bytes_over_time", "bytes_rate", "sum_over_time"},
             "max": {"max_over_time"}, "min": {"min_over_time"}}


def eval_metric(ctx: Context, expr: Metric, times: list[int], step: int | None) -> Series:
    """Series of a metric expression at ``times``."""
    if isinstance(expr, Binary):
        return _binary(ctx, expr, times, step)
    if isinstance(expr, LabelReplace):
        return label_replace(expr, _side(ctx, expr.inner, times, step))
    if isinstance(expr, RangeAgg):
        return eval_range(ctx, expr, range_group(expr), times, step)
    inner = expr.inner
    if (isinstance(inner, RangeAgg) and expr.without is None and inner.by is None and inner.without is None
            and inner.fn in _PUSHDOWN.get(expr.op, ()) and inner.log.conversion is None):
        by = expr.by or ()  # sum(…) with no grouping is one group
        group = Group(by, tuple(_label_field(inner.log, n) for n in by))
        return eval_range(ctx, inner, group, times, step)  # grouped by the engine directly
    if isinstance(inner, RangeAgg):
        below = eval_range(ctx, inner, range_group(inner, expr.by or ()), times, step)
    else:
        below = _side(ctx, inner, times, step)
    return aggregate(expr, below)


def _side(ctx: Context, e: Metric | Constant, times: list[int], step: int | None) -> Series:
    if isinstance(e, Constant):
        return constant_series(e, times)
    return eval_metric(ctx, e, times, step)


def _binary(ctx: Context, expr: Binary, times: list[int], step: int | None) -> Series:
    """Arithmetic, comparisons and set operators per time: with a number on one side, on every
    series; between two vectors, on the pairs the matching makes (:mod:`.vectors`)."""
    left, right = expr.left, expr.right
    if isinstance(left, Constant) and not left.is_vector:
        return scalar_binary(expr.op, _side(ctx, right, times, step), left.value, number_left=True,
                             is_bool=expr.bool)
    if isinstance(right, Constant) and not right.is_vector:
        return scalar_binary(expr.op, _side(ctx, left, times, step), right.value, number_left=False,
                             is_bool=expr.bool)
    return binary_series(expr, _side(ctx, left, times, step), _side(ctx, right, times, step))


def constant_series(value: Constant, times: list[int]) -> Series:
    """A constant at every time (``vector(1)+vector(1)``)."""
    return {(): dict.fromkeys(times, value.value)}
