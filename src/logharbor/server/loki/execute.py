"""Runs parsed LogQL against the store through the query compiler, answering in Loki's shapes.

Why here and not in the query package: the filter and the aggregation are the query language's
own (``compile_ast`` with a ``timechart``/``stats`` pipe); what is Loki's alone is put around it —
which fields make a stream, sliding ``[range]`` windows over ``step``-aligned points, and the
vector aggregations across streams. A window is assembled from buckets of ``gcd(step, range)``
seconds, so each record is read once however much the windows overlap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from logharbor.record import HTTP_FIELDS, parse_timestamp
from logharbor.server.errors import ApiError
from logharbor.server.query import ast, compile_ast
from logharbor.server.query.errors import QueryError
from logharbor.server.query.fields import resolve_field
from logharbor.server.query.filters import FilterCompiler, Params
from logharbor.server.store.base import QueryCancelled, StoreError
from logharbor.server.store.rows import row_to_record

from .logql import Constant, LogQLError, LogQuery, RangeAgg, VectorAgg, field_name, render_template

__all__ = ["STREAM_LABELS", "Context", "Labels", "Series", "eval_metric", "log_streams", "value_of"]

#: the fields every stream is labelled with (when not empty), besides those the query names
STREAM_LABELS = ("service", "level", "source", "host", "instance", "env")
NS = 1_000_000_000
MAX_BUCKETS = 11_000
Labels = tuple[tuple[str, str], ...]
Series = dict[Labels, dict[int, float]]


@dataclass
class Context:
    """One request's store, scope and limits."""

    store: Any
    scope: tuple[str, dict[str, object]] | None
    extra: ast.Filter | None  # the X-Scope-OrgID tenant condition
    max_limit: int
    settings: Mapping[str, Any]

    def query(self, q: ast.Query, start: int | None, end: int | None, limit: int | None,
              now: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """Rows of ``q`` (tenant condition added) and the row cap the compiler applied."""
        if self.extra is not None:
            flt = self.extra if isinstance(q.filter, ast.MatchAll) else ast.And((self.extra, q.filter))
            q = ast.Query(flt, q.pipes)
        try:
            compiled = compile_ast(q, table=self.store.table, time_from_ns=start, time_to_ns=end,
                                   limit=limit, max_limit=self.max_limit, scope_sql=self.scope, now_ns=now)
        except QueryError as exc:
            raise ApiError(400, exc.code, exc.message, extra={"position": exc.position}) from None
        return self.run(compiled.sql, compiled.params), compiled.limit

    def run(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One SELECT; engine errors become 400 (budget, regex) or 500."""
        try:
            return list(self.store.query(sql, params, settings=self.settings))
        except QueryCancelled:
            raise ApiError(400, "query_cancelled", "the query went over its time or memory budget; "
                           "narrow the time range or the selector") from None
        except StoreError as exc:
            if "Code: 427." in str(exc):
                raise ApiError(400, "invalid_regex", "the regex does not compile in RE2") from None
            raise ApiError(500, "store_error", "the store could not run the query") from None


# ------------------------------------------------------------------------------------ log queries

def value_of(record: Mapping[str, Any], name: str) -> Any:
    """A field of a canonical record by its query name (``status``, ``http.status``, ``user.id``)."""
    name = field_name(name)
    if name in record and name not in ("http", "attributes"):
        return record[name]
    http = record.get("http") or {}
    short = name[5:] if name.startswith(("http.", "http_")) else name
    if short in HTTP_FIELDS:
        return http.get(short)
    node: Any = record.get("attributes") or {}
    for part in name.removeprefix("attributes.").split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}_{key}" if prefix else str(key), inner, out)
    elif value is not None and not isinstance(value, list):
        out[prefix] = _text(value)


def record_labels(record: Mapping[str, Any], lq: LogQuery) -> dict[str, str]:
    """The stream labels of one record: the usual fields, the selector's, and what parsers add."""
    labels = {name: _text(record.get(name)) for name in STREAM_LABELS}
    for name in lq.selector:
        labels[name] = _text(value_of(record, name))
    if lq.parsed:
        _flatten("", record.get("attributes") or {}, labels)
        for key, value in (record.get("http") or {}).items():
            labels["http_" + key] = _text(value)
    line = record.get("message") or ""
    for pattern in lq.extractors:
        m = pattern.search(line)
        if m is not None:
            labels.update({k: v for k, v in m.groupdict().items() if v is not None})
    for lf in lq.label_formats:
        if lf.template is not None:
            def lookup(n: str) -> str:
                return labels.get(n) or _text(value_of(record, n))

            labels[lf.name] = render_template(lf.template, lookup)
        else:
            source = lf.source or lf.name
            labels[lf.name] = labels.pop(source, None) or _text(value_of(record, source))
    return {k: v for k, v in labels.items() if v != ""}


def log_line(record: Mapping[str, Any], lq: LogQuery, labels: Mapping[str, str]) -> str:
    """The line Loki would show: the message, or ``line_format``'s template filled in."""
    message = record.get("message") or ""
    if lq.line_format is None:
        return message

    def lookup(name: str) -> str:
        if name == "__line__":
            return message
        if name == "__timestamp__":
            return str(record["timestamp"])
        return labels.get(name) or _text(value_of(record, name))

    return render_template(lq.line_format, lookup)


def log_streams(ctx: Context, lq: LogQuery, start: int | None, end: int | None, limit: int,
                direction: str) -> tuple[list[dict[str, Any]], int]:
    """Loki ``streams``: the newest (or, forward, oldest) ``limit`` records grouped by labels."""
    pipes: tuple[ast.Pipe, ...] = ()
    if direction == "forward":
        pipes = (ast.Sort((ast.SortKey("timestamp"),)),)
    rows, _ = ctx.query(ast.Query(lq.query.filter, pipes), start, end, limit)
    streams: dict[Labels, list[list[str]]] = {}
    for row in rows:
        record = row_to_record(row)
        labels = record_labels(record, lq)
        key = tuple(sorted(labels.items()))
        streams.setdefault(key, []).append([str(record["timestamp"]), log_line(record, lq, labels)])
    return [{"stream": dict(key), "values": values} for key, values in streams.items()], len(rows)


# ------------------------------------------------------------------------------------ metrics

def points(start: int, end: int, step: int) -> list[int]:
    """Evaluation times: multiples of ``step`` within ``[start, end]`` (Loki's step alignment)."""
    first = -(-start // step) * step
    return list(range(first, end + 1, step)) if first <= end else []


@dataclass(frozen=True)
class _Group:
    labels: tuple[str, ...]  # output label names
    fields: tuple[str, ...]  # the field of each label


def _default_group(lq: LogQuery, extra: tuple[str, ...] = ()) -> _Group:
    names = tuple(dict.fromkeys((*STREAM_LABELS, *lq.selector, *extra)))
    return _Group(names, tuple(_label_field(lq, n) for n in names))


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
    if agg.fn in ("count_over_time", "rate"):
        return (ast.Agg("count", None, "c"),)
    if agg.fn in ("sum_over_time", "avg_over_time"):
        return ast.Agg("sum", f, "s"), ast.Agg("count", f, "c")
    if agg.fn in ("min_over_time", "max_over_time"):
        return ast.Agg(agg.fn[:3], f, "s"), ast.Agg("count", f, "c")
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


def _bucket_rows(ctx: Context, agg: RangeAgg, group: _Group, start: int, end: int, span_s: int | None,
                 now: int) -> list[tuple[int, tuple[str, ...], dict[str, Any]]]:
    """(bucket start ns, group values, partial values) rows over ``[start, end)``."""
    flt = agg.log.query.filter
    if agg.log.unwrap is not None:
        flt = ast.And((flt, ast.Exists(agg.log.unwrap)))
    fields = tuple(dict.fromkeys(group.fields))
    if agg.fn in ("bytes_over_time", "bytes_rate"):
        rows = _bytes_rows(ctx, flt, fields, start, end, span_s, now)
    else:
        pipe: ast.Pipe = (ast.Timechart(f"{span_s}s", _aggs(agg), fields) if span_s
                          else ast.Stats(_aggs(agg), fields))
        rows, cap = ctx.query(ast.Query(flt, (pipe,)), start, end, None, now)
        if len(rows) >= cap:
            raise ApiError(400, "too_many_series", f"the query makes more than {cap} series × steps; "
                           "use a larger step or aggregate with sum by (…)")
    out = []
    for row in rows:
        at = row["_at"] if "_at" in row else parse_timestamp(row["_time"]) if span_s else start
        out.append((at, tuple(_text(row.get(f)) for f in fields), row))
    return out


def _bytes_rows(ctx: Context, flt: ast.Filter, fields: tuple[str, ...], start: int, end: int,
                span_s: int | None, now: int) -> list[dict[str, Any]]:
    """Bytes of lines per bucket: the query language has no length function, so this one SELECT is
    built here, with the same filter compiler, parameters and key scope as every query."""
    params = Params()
    where = [f"`timestamp` >= fromUnixTimestamp64Nano({params.add(start, 'Int64')}, 'UTC')",
             f"`timestamp` < fromUnixTimestamp64Nano({params.add(end, 'Int64')}, 'UTC')"]
    if ctx.extra is not None:
        flt = ast.And((ctx.extra, flt))
    try:
        if not isinstance(flt, ast.MatchAll):
            where.append(FilterCompiler(params, resolve_field, now).compile(flt))
        refs = [resolve_field(f) for f in fields]
    except QueryError as exc:
        raise ApiError(400, exc.code, exc.message) from None
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
           + (f" GROUP BY {', '.join(keys)}" if keys else "") + f" LIMIT {ctx.max_limit + 1}")
    rows = ctx.run(sql, all_params)
    if len(rows) > ctx.max_limit:
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
    if fn == "rate":
        return counts / range_s
    values = [float(p["s"]) for p in parts if p.get("s") is not None]
    if not values:
        return None
    if fn == "bytes_over_time":
        return sum(values)
    if fn == "bytes_rate":
        return sum(values) / range_s
    if fn == "sum_over_time":
        return sum(values)
    if fn == "avg_over_time":
        return sum(values) / counts
    if fn == "min_over_time":
        return min(values)
    if fn == "max_over_time":
        return max(values)
    return values[0]  # quantile: one bucket per window


def eval_range(ctx: Context, agg: RangeAgg, group: _Group, times: list[int], step: int | None) -> Series:
    """Values of a range aggregation at ``times`` (one time and no step for an instant query)."""
    if not times:
        return {}
    now = time.time_ns()
    if step is None:
        span = agg.range_ns
        rows = _bucket_rows(ctx, agg, group, times[0] - agg.range_ns, times[0], None, now)
    else:
        span = math.gcd(max(NS, step // NS * NS), max(NS, agg.range_ns // NS * NS))
        if agg.fn == "quantile_over_time" and span != agg.range_ns:
            raise LogQLError("quantile_over_time over a range query needs the range equal to the step "
                             "(use [$__interval] or [$__auto])")
        begin, stop = times[0] - agg.range_ns, times[-1]
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
        labels = tuple((n, by_field[f]) for n, f in zip(group.labels, group.fields, strict=True)
                       if by_field[f] != "")
        out: dict[int, float] = {}
        for t in times:
            parts = [r for b in range(t - agg.range_ns, t, span) for r in per_bucket.get(b, [])]
            value = _combine(agg.fn, parts, agg.range_ns / NS)
            if value is not None:
                out[t] = value
        if out:
            series[tuple(sorted(labels))] = out
    return series


_PUSHDOWN = {"sum": {"count_over_time", "rate", "bytes_over_time", "bytes_rate", "sum_over_time"},
             "max": {"max_over_time"}, "min": {"min_over_time"}}


def eval_metric(ctx: Context, expr: RangeAgg | VectorAgg, times: list[int], step: int | None) -> Series:
    """Series of a metric expression at ``times``."""
    if isinstance(expr, RangeAgg):
        return eval_range(ctx, expr, _default_group(expr.log), times, step)
    inner = expr.inner
    if isinstance(inner, RangeAgg) and expr.by is not None and inner.fn in _PUSHDOWN.get(expr.op, ()):
        group = _Group(expr.by, tuple(_label_field(inner.log, n) for n in expr.by))
        return eval_range(ctx, inner, group, times, step)  # grouped by the engine directly
    if isinstance(inner, RangeAgg):
        below = eval_range(ctx, inner, _default_group(inner.log, expr.by or ()), times, step)
    else:
        below = eval_metric(ctx, inner, times, step)
    return aggregate(expr, below)


def _key(labels: Labels, expr: VectorAgg) -> Labels:
    if expr.by is not None:
        return tuple((k, v) for k, v in labels if k in expr.by)
    if expr.without is not None:
        return tuple((k, v) for k, v in labels if k not in expr.without)
    return ()


_REDUCE: dict[str, Callable[[list[float]], float]] = {
    "sum": sum, "min": min, "max": max, "count": lambda v: float(len(v)), "avg": lambda v: sum(v) / len(v),
}


def aggregate(expr: VectorAgg, below: Series) -> Series:
    """A vector aggregation over already evaluated series (per evaluation time)."""
    if expr.op in ("topk", "bottomk"):
        assert expr.param is not None
        chosen: Series = {}
        stamps = sorted({t for values in below.values() for t in values})
        for t in stamps:
            groups: dict[Labels, list[tuple[float, Labels]]] = {}
            for labels, values in below.items():
                if t in values:
                    groups.setdefault(_key(labels, expr), []).append((values[t], labels))
            for members in groups.values():
                members.sort(key=lambda m: m[0], reverse=expr.op == "topk")
                for value, labels in members[:expr.param]:
                    chosen.setdefault(labels, {})[t] = value
        return chosen
    collected: dict[Labels, dict[int, list[float]]] = {}
    for labels, values in below.items():
        target = collected.setdefault(_key(labels, expr), {})
        for t, value in values.items():
            target.setdefault(t, []).append(value)
    reduce = _REDUCE[expr.op]
    return {labels: {t: reduce(vs) for t, vs in per_t.items()} for labels, per_t in collected.items()}


def constant_series(value: Constant, times: list[int]) -> Series:
    """A constant at every time (``vector(1)+vector(1)``)."""
    return {(): dict.fromkeys(times, value.value)}
