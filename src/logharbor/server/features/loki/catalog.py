"""What Grafana's label browser, autocomplete and query hints ask: label names and values, series,
index stats and detected fields.

Why their own module: these are questions about which fields hold values, not log queries; label
values, series and entry counts still go through the query compiler (``stats … by``); only the
list of attribute paths and the byte total need a SELECT the language cannot say, built here with
the same filter compiler, parameters and key scope.
"""

from __future__ import annotations

import time
from typing import Any

from logharbor.record import HTTP_FIELDS
from logharbor.server.engine.store.rows import row_to_record
from logharbor.server.engine.store.sql.attributes import attribute_names_sql
from logharbor.server.errors import ApiError
from logharbor.server.features.query import ast
from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.fields import resolve_field
from logharbor.server.features.query.filters import FilterCompiler, Params

from .execute import NS, Series, bytes_rows, default_group, eval_metric
from .logql import LogQuery, RangeAgg, VectorAgg, field_name
from .streams import STREAM_LABELS, Context, label_text, series_label_text, value_of

__all__ = ["NAMES_SAMPLE", "attribute_names", "detected_fields", "detected_labels", "index_stats",
           "label_names", "label_values", "series", "volume"]

#: columns offered as labels (message and the timestamps are not labels)
LABEL_COLUMNS = ("service", "level", "source", "host", "instance", "env", "version", "tenant",
                 "trace_id", "span_id", "request_id", *(f"http_{n}" for n in HTTP_FIELDS))
MAX_VALUES = 1000
#: records whose attribute names a label list reads at most (about 0.2 s of parsing on 2 cores)
NAMES_SAMPLE = 100_000


def _where(ctx: Context, flt: ast.Filter, start: int, end: int) -> tuple[str, dict[str, object]]:
    params = Params()
    parts = [f"`timestamp` >= fromUnixTimestamp64Nano({params.add(start, 'Int64')}, 'UTC')",
             f"`timestamp` < fromUnixTimestamp64Nano({params.add(end, 'Int64')}, 'UTC')"]
    if ctx.extra is not None:
        flt = ast.And((ctx.extra, flt))
    if not isinstance(flt, ast.MatchAll):
        try:
            parts.append(FilterCompiler(params, resolve_field, time.time_ns()).compile(flt))
        except QueryError as exc:
            raise ApiError(400, exc.code, exc.message, detail=exc.detail) from None
    values = dict(params.values)
    if ctx.scope is not None:
        parts.append(f"({ctx.scope[0]})")
        values.update(ctx.scope[1])
    return " AND ".join(parts), values


def label_names(ctx: Context, flt: ast.Filter, start: int, end: int) -> list[str]:
    """Columns holding a value in the range, and the attribute paths present there."""
    where, params = _where(ctx, flt, start, end)
    checks = []
    for i, name in enumerate(LABEL_COLUMNS):
        ref = resolve_field(name)
        present = f"{ref.sql} IS NOT NULL" if ref.nullable else f"{ref.sql} != ''"
        checks.append(f"max({present}) AS `c{i}`")
    table = ctx.store.table
    rows = ctx.run(f"SELECT {', '.join(checks)} FROM {table} WHERE {where}", params)  # noqa: S608
    names = [name for i, name in enumerate(LABEL_COLUMNS) if rows and rows[0].get(f"c{i}")]
    return sorted({*names, *attribute_names(ctx, where, params)})


def attribute_names(ctx: Context, where: str, params: dict[str, object]) -> set[str]:
    """The attribute names (query form: ``a.b`` for a nested or a literal dotted key) of at most
    :data:`NAMES_SAMPLE` records matching ``where``: the text is parsed per row, so the list is
    bounded like any other read (the JSON column listed its paths per part, every record)."""
    rows = ctx.run(attribute_names_sql(ctx.store.table, where), {**params, "names_sample": NAMES_SAMPLE})
    return {str(name) for row in rows for name in (row.get("k") or [])} - {""}  # "" names no label


def label_values(ctx: Context, name: str, flt: ast.Filter, start: int, end: int) -> list[str]:
    """Distinct values of one field in the range (through ``stats count() by <field>``)."""
    field = field_name(name)
    stats = ast.Stats((ast.Agg("count", None, "__n"),), (field,))
    rows, _ = ctx.query(ast.Query(flt, (stats, ast.Limit(MAX_VALUES))), start, end, MAX_VALUES)
    return sorted({series_label_text(name, label_text(r.get(field))) for r in rows} - {""})


def volume(ctx: Context, lq: LogQuery, times: list[int], range_ns: int, step: int | None,
           limit: int, target: list[str]) -> Series:
    """``/index/volume``: bytes per series of the selector's labels (or ``targetLabels``), the
    ``limit`` largest; it is ``sum by (…) (bytes_over_time(…))`` through the metric path."""
    labels = tuple(target) or lq.selector
    expr = VectorAgg("sum", RangeAgg("bytes_over_time", lq, max(NS, range_ns)), by=labels)
    series = eval_metric(ctx, expr, times, step)
    ranked = sorted(series.items(), key=lambda kv: -sum(kv[1].values()))
    return dict(ranked[:limit])


def series(ctx: Context, queries: list[LogQuery], start: int, end: int) -> list[dict[str, str]]:
    """The label sets of the streams each selector matches."""
    seen: dict[tuple[tuple[str, str], ...], None] = {}
    for lq in queries:
        group = default_group(lq)
        fields = tuple(dict.fromkeys(group.fields))
        stats = ast.Stats((ast.Agg("count", None, "__n"),), fields)
        rows, _ = ctx.query(ast.Query(lq.query.filter, (stats,)), start, end, None)
        for row in rows:
            labels = {n: series_label_text(n, label_text(row.get(f)))
                      for n, f in zip(group.labels, group.fields, strict=True)}
            seen[tuple(sorted((k, v) for k, v in labels.items() if v))] = None
    return [dict(key) for key in seen]


def index_stats(ctx: Context, lq: LogQuery, start: int, end: int) -> dict[str, int]:
    """Loki's ``{streams, chunks, bytes, entries}``; logharbor has no chunks, so chunks = streams."""
    fields = tuple(dict.fromkeys(default_group(lq).fields))
    stats = ast.Stats((ast.Agg("count", None, "__n"),), fields)
    rows, _ = ctx.query(ast.Query(lq.query.filter, (stats,)), start, end, None)
    entries = sum(int(r["__n"]) for r in rows)
    size = bytes_rows(ctx, lq.query.filter, (), start, end, None, time.time_ns())
    total = int(size[0]["s"] or 0) if size else 0
    return {"streams": len(rows), "chunks": len(rows), "bytes": total, "entries": entries}


def detected_labels(ctx: Context, lq: LogQuery | None, start: int, end: int) -> list[dict[str, Any]]:
    """The stream labels present in the range with their distinct-value counts (Grafana 11's
    ``/detected_labels``), in one ``stats count(), count_uniq(f), count(f) …`` query."""
    names = tuple(dict.fromkeys((*STREAM_LABELS, *(lq.selector if lq else ()))))
    fields = [field_name(n) for n in names]
    aggs = [ast.Agg("count", None, "__total")]
    for i, f in enumerate(fields):
        aggs += [ast.Agg("count_uniq", f, f"__u{i}"), ast.Agg("count", f, f"__p{i}")]
    flt = lq.query.filter if lq else ast.MatchAll()
    rows, _ = ctx.query(ast.Query(flt, (ast.Stats(tuple(aggs)),)), start, end, None)
    row = rows[0] if rows else {}
    total = int(row.get("__total") or 0)
    out = []
    for i, name in enumerate(names):
        present = int(row.get(f"__p{i}") or 0)
        if present:  # count_uniq also counts the empty value when some records lack the field
            distinct = int(row.get(f"__u{i}") or 0) - (1 if present < total else 0)
            out.append({"label": name, "cardinality": max(distinct, 1)})
    return out


def _type_of(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float"
    return "string"


def _column_type(name: str) -> str | None:
    """The type of a canonical numeric column (a float column may hold only whole numbers)."""
    if name in STREAM_LABELS or not name.startswith("http_"):
        return None
    kind = resolve_field(name).kind
    return {"int": "int", "float": "float"}.get(kind)


def detected_fields(ctx: Context, lq: LogQuery, start: int, end: int, limit: int) -> list[dict[str, Any]]:
    """Fields of the newest ``limit`` records with their type and cardinality (Grafana 11's
    ``/detected_fields``); canonical fields have no parser, attributes say ``json``."""
    rows, _ = ctx.query(ast.Query(lq.query.filter), start, end, min(limit, 5000))
    seen: dict[str, list[Any]] = {}
    for row in rows:
        record = row_to_record(row)
        for name in (*STREAM_LABELS, "version", "trace_id", "span_id", "request_id"):
            if record.get(name) not in (None, ""):
                seen.setdefault(name, []).append(record[name])
        for key, value in (record.get("http") or {}).items():
            seen.setdefault(f"http_{key}", []).append(value)
        for key in record.get("attributes") or {}:
            value = value_of(record, key)
            if value is not None and not isinstance(value, dict | list):
                seen.setdefault(key, []).append(value)
    attributes = {k for row in rows for k in (row_to_record(row).get("attributes") or {})}
    return [{"label": name, "type": _column_type(name) or _type_of(values),
             "cardinality": len({label_text(v) for v in values}),
             "parsers": ["json"] if name in attributes else None, "jsonPath": [name]}
            for name, values in sorted(seen.items())]
