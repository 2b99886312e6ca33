"""The fields of a search's matches, each with its top values: ``GET /api/v1/fields``.

What the search page's field sidebar and the query box's suggestions show, cheap enough to run
on every search of 10M records:

- ``total``: the exact number of matches, with the cheap canonical columns (the
  ``LowCardinality`` ones: level, service, host, … and ``http.status``) counted over the **whole
  match** in the same single pass (``approx_top_count``, exact while a column has fewer distinct
  values than its counters, which it reports).
- every other field (message, ids, ``http.path``, numbers, every attribute path) from a
  **sample** of about :data:`SAMPLE` matches spread over the whole match: the records of short
  time slices picked by a hash (one slice in ``k``, ``k = total / SAMPLE``), so a field's share of
  the sample estimates its share of the whole match; counts are that share times ``total`` and
  say ``"exact": false``. A match of :data:`SAMPLE` records or fewer is read whole (exact).
- ``unknown``: field names of the query that resolve to attribute paths no record of the time
  range has (``servce:checkout`` silently matches nothing), each with the names it is closest
  to, so the UI can say "did you mean service".

The SQL here is what the query language cannot say (top-k, JSON paths, a sampling condition);
it is built from the table's own column names (quoted by ``sqlsafe``), the language's own filter
compiler and parameters, as ``loki/catalog.py`` does.
"""

# identifiers come from schema.sql through fields.py or sqlsafe; values are parameters
# ruff: noqa: S608
from __future__ import annotations

import difflib
import functools
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from logharbor import exactjson
from logharbor.record import HTTP_FIELDS
from logharbor.server.engine.store.base import Store
from logharbor.server.engine.store.sql.attributes import attribute_names_sql
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.engine.store.timebounds import before_end

from . import ast
from .errors import QueryError
from .fields import attributes_of, key_segment, resolve_field
from .filters import FilterCompiler, Params

__all__ = ["CHEAP_COLUMNS", "SAMPLE", "FieldsAnswer", "field_stats", "filter_part", "referenced_fields"]

#: records read to find the fields of a large match and their values
SAMPLE = 2000
#: records of the range whose attribute names are the candidates of a "did you mean"
NAMES_SAMPLE = 20_000
#: average records per sampled time slice: large enough to read few granules, small enough that
#: a sample holds many slices
SLICE_RECORDS = 50
#: columns counted exactly over the whole match (LowCardinality or small numbers: one cheap pass)
CHEAP_COLUMNS = ("level", "service", "source", "host", "instance", "env", "version", "tenant",
                 "pattern_id", "http_method", "http_status", "http_user_agent")
#: canonical fields listed from the sample (high cardinality, or numbers)
SAMPLED_COLUMNS = ("message", "trace_id", "span_id", "request_id")
#: how the canonical fields are ordered in the answer (the rest follow: http.*, then attributes)
_ORDER = ("level", "service", "source", "host", "instance", "env", "version", "tenant", "message",
          "trace_id", "span_id", "request_id", "pattern_id")
#: the counters approx_top_count keeps per column: counts are exact below this many distinct values
_COUNTERS = 300
_MAX_TOP = 100
_MAX_SUGGESTIONS = 3


def display_name(column: str) -> str:
    """The name a record shows a canonical column under (``http_status`` → ``http.status``)."""
    return f"http.{column[5:]}" if column.startswith("http_") and column[5:] in HTTP_FIELDS else column


@dataclass(frozen=True)
class FieldsAnswer:
    """The answer of ``GET /api/v1/fields`` (see :meth:`to_json`)."""

    total: int
    sampled: int
    fields: list[dict[str, Any]]
    unknown: list[dict[str, Any]]
    elapsed_ms: float

    def to_json(self) -> dict[str, Any]:
        """``{"total", "sampled", "exact", "fields", "unknown", "elapsed_ms"}``."""
        return {"total": self.total, "sampled": self.sampled, "exact": self.sampled >= self.total,
                "fields": self.fields, "unknown": self.unknown, "elapsed_ms": self.elapsed_ms}


def filter_part(query: ast.Query) -> ast.Query:
    """The records a query is made of: its filter and the ``where`` pipes that follow it directly
    (a ``stats`` or ``fields`` after them summarises those records; the sidebar shows them)."""
    pipes: list[ast.Pipe] = []
    for pipe in query.pipes:
        if not isinstance(pipe, ast.Where):
            break
        pipes.append(pipe)
    return ast.Query(query.filter, tuple(pipes))


def _filter_names(f: ast.Filter) -> Iterator[tuple[str, int | None]]:
    if isinstance(f, ast.Match) and f.field is not None:
        yield f.field, f.pos
    elif isinstance(f, ast.Exists):
        yield f.field, f.pos
    elif isinstance(f, ast.Not):
        yield from _filter_names(f.operand)
    elif isinstance(f, ast.And | ast.Or):
        for item in f.items:
            yield from _filter_names(item)


def referenced_fields(query: ast.Query, text: str) -> list[tuple[str, int | None]]:
    """Field names a query reads from records, with where each was written when known.

    The filter, the ``where`` pipes before any projection and the names the first projection
    (``stats``/``timechart`` by and arguments, ``top``, ``dedup``, ``sort``, ``fields``) reads;
    names after a projection are its output columns, which the compiler itself checks.
    """
    out = list(_filter_names(query.filter))
    for pipe in query.pipes:
        names: list[str] = []
        if isinstance(pipe, ast.Where):
            out.extend(_filter_names(pipe.filter))
            continue
        if isinstance(pipe, ast.Stats | ast.Timechart):
            names = [*pipe.by, *(a.arg for a in pipe.aggs if a.arg)]
        elif isinstance(pipe, ast.Top):
            names = [pipe.field]
        elif isinstance(pipe, ast.Dedup | ast.Fields):
            names = list(pipe.names)
        elif isinstance(pipe, ast.Sort):
            names = [k.name for k in pipe.keys]
        elif isinstance(pipe, ast.Limit):
            continue
        start = pipe.pos if pipe.pos is not None else 0
        for name in names:
            at = text.find(name, start)
            out.append((name, at if at >= 0 else None))
        break
    seen: dict[str, int | None] = {}
    for name, pos in out:
        seen.setdefault(name, pos)
    return list(seen.items())


class _Reader:
    """Runs SQL through the store with the request's settings."""

    def __init__(self, store: Store, settings: Mapping[str, Any]) -> None:
        self.store = store
        self.settings = settings

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return list(self.store.query(sql, params, settings=self.settings))


def _where(query: ast.Query, start: int | None, end: int | None, scope: tuple[str, dict[str, Any]] | None,
           now_ns: int) -> tuple[str, dict[str, Any]]:
    """The WHERE of the records of ``query`` (its filter and where pipes) in the range and scope."""
    params = Params()
    parts = []
    if start is not None:
        parts.append(f"`timestamp` >= fromUnixTimestamp64Nano({params.add(start, 'Int64')}, 'UTC')")
    if end is not None:
        parts.append(before_end("`timestamp`", params.add(end, "Int64"), end))
    compiler = FilterCompiler(params, resolve_field, now_ns)
    for f in (query.filter, *(p.filter for p in query.pipes if isinstance(p, ast.Where))):
        if not isinstance(f, ast.MatchAll):
            parts.append(compiler.compile(f))
    values = dict(params.values)
    if scope is not None:
        parts.append(f"({scope[0]})")
        values.update(scope[1])
    return (" AND ".join(parts) or "1"), values


def _cheap_pass(reader: _Reader, table: str, where: str, params: dict[str, Any], top: int
                ) -> tuple[int, int, int, dict[str, tuple[int, list[dict[str, Any]], bool]]]:
    """One pass over the whole match: total, time extent, and presence and top values of the
    cheap columns as ``{column: (present, [{value, count}], exact)}``."""
    select = ["count() AS `n`", "toUnixTimestamp64Nano(min(`timestamp`)) AS `a`",
              "toUnixTimestamp64Nano(max(`timestamp`)) AS `b`"]
    for i, column in enumerate(CHEAP_COLUMNS):
        ref = resolve_field(column)
        present = f"isNotNull({ref.sql})" if ref.nullable else f"{ref.sql} != ''"
        select.append(f"countIf({present}) AS `p{i}`")
        select.append(f"approx_top_count({min(top, _MAX_TOP)}, {_COUNTERS})({ref.sql}) AS `t{i}`")
    rows = reader.rows(f"SELECT {', '.join(select)} FROM {table} WHERE {where}", params)
    row = rows[0] if rows else {}
    total = int(row.get("n") or 0)
    out: dict[str, tuple[int, list[dict[str, Any]], bool]] = {}
    for i, column in enumerate(CHEAP_COLUMNS):
        present = int(row.get(f"p{i}") or 0)
        if not present:
            continue
        top_values = []
        exact = True
        for item in row.get(f"t{i}") or []:
            value = item.get("item")
            if value is None or value == "":
                continue
            exact = exact and not item.get("error")
            top_values.append({"value": value, "count": int(item.get("count") or 0)})
        out[column] = (present, top_values, exact)
    return total, int(row.get("a") or 0), int(row.get("b") or 0), out


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key_segment(key, first=False)}", inner, out)
    else:
        out[prefix] = value


#: the sampled columns a sample row reads, with the name a record shows each under
_SAMPLE_COLUMNS = [(c, c) for c in SAMPLED_COLUMNS] + [
    (f"http_{n}", f"http.{n}") for n in HTTP_FIELDS if f"http_{n}" not in CHEAP_COLUMNS]


def _sample_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The sampled fields of one row: canonical ones by their record name (``http.path``),
    attribute paths flattened (``error.type``) behind a NUL, so the two never mix."""
    out: dict[str, Any] = {}
    for column, name in _SAMPLE_COLUMNS:
        value = row.get(column)
        if value is not None and value != "":
            out[name] = value
    for key, value in attributes_of(row.get("attributes")).items():
        _flatten("\0" + key_segment(key, first=True), value, out)
    return out


@functools.lru_cache(maxsize=4096)
def _field_name(name: str) -> str:
    """The name a query reaches a sampled field by: an attribute path that a query would read as
    a canonical column (``duration_ms``, ``status``) is written ``attributes.<path>``."""
    if not name.startswith("\0"):
        return name
    path = name[1:]
    try:
        column = resolve_field(path).kind != "dynamic"
    except QueryError:
        column = False
    return f"attributes.{path}" if column else path


#: a value as a counting key: text as itself, anything else as its JSON bytes (so 1, true and
#: "1" stay three values)
_Key = str | bytes


def _value(key: _Key) -> Any:
    return key if isinstance(key, str) else exactjson.loads(key)


def _type_of(values: dict[_Key, int]) -> str:
    kinds = {"string" if isinstance(k, str) else type(exactjson.loads(k)).__name__ for k in values}
    if kinds <= {"int", "float"}:
        return "number"
    if kinds == {"bool"}:
        return "boolean"
    if kinds == {"string"}:
        return "string"
    return "mixed"


def _sample_pass(reader: _Reader, table: str, where: str, params: dict[str, Any], limit: int
                 ) -> tuple[int, dict[str, dict[_Key, int]]]:
    """The sample's rows (only the columns it counts) → (rows, {field: {value: count}})."""
    columns = [quote_identifier(c) for c, _ in _SAMPLE_COLUMNS] + [quote_identifier("attributes")]
    rows = reader.rows(f"SELECT {', '.join(columns)} FROM {table} WHERE {where} LIMIT {int(limit)}", params)
    counts: dict[str, dict[_Key, int]] = {}
    dumps = exactjson.dumps  # an integer beyond 64 bits is a value too
    for row in rows:
        for name, value in _sample_fields(row).items():
            values = counts.get(name)
            if values is None:
                values = counts[name] = {}
            key = value if type(value) is str else dumps(value)
            values[key] = values.get(key, 0) + 1
    return len(rows), counts


def _sampling(total: int, first_ns: int, last_ns: int) -> tuple[str, dict[str, Any]] | None:
    """The condition keeping about :data:`SAMPLE` of ``total`` matches: whole time slices of about
    :data:`SLICE_RECORDS` records each, one in ``k`` chosen by a hash of the slice."""
    if total <= SAMPLE:
        return None
    k = max(2, total // SAMPLE)
    slices = max(1, total // SLICE_RECORDS)
    width = max(1, (last_ns - first_ns + 1) // slices)
    condition = ("cityHash64(intDiv(toUnixTimestamp64Nano(`timestamp`), {fs_width:Int64})) "
                 "% {fs_k:UInt64} = 0")
    return condition, {"fs_width": width, "fs_k": k}


def _attribute_paths(reader: _Reader, table: str, start: int | None, end: int | None,
                     scope: tuple[str, dict[str, Any]] | None, now_ns: int) -> set[str]:
    """The attribute names (dotted, as a query writes them) of a bounded sample of the range's
    records: the candidates of a "did you mean" (the store's one field-list builder)."""
    where, params = _where(ast.Query(ast.MatchAll()), start, end, scope, now_ns)
    rows = reader.rows(attribute_names_sql(table, where), {**params, "names_sample": NAMES_SAMPLE})
    return {str(p) for row in rows for p in (row.get("k") or [])}


def _in_range(reader: _Reader, table: str, name: str, start: int | None, end: int | None,
              scope: tuple[str, dict[str, Any]] | None, now_ns: int) -> bool:
    """Whether any record of the range has ``name``: exact, where the sample of names is not (a
    rare name must not be called a typo). The query's own ``_exists_`` (guarded by the key's text,
    so only rows that hold it are parsed), stopping at the first record."""
    where, params = _where(ast.Query(ast.Exists(name)), start, end, scope, now_ns)
    return bool(reader.rows(f"SELECT 1 AS k FROM {table} WHERE {where} LIMIT 1", params))


def _known(name: str, paths: set[str]) -> bool:
    bare = name.removeprefix("attributes.")
    return bare in paths or any(p.startswith(bare + ".") for p in paths)


def _unknown_fields(reader: _Reader, table: str, query: ast.Query, text: str, start: int | None,
                    end: int | None, scope: tuple[str, dict[str, Any]] | None, now_ns: int,
                    seen: set[str]) -> list[dict[str, Any]]:
    """Referenced attribute names that no record of the range has, with the closest known names."""
    attributes = []
    for name, pos in referenced_fields(query, text):
        try:
            ref = resolve_field(name, pos)
        except QueryError:
            continue
        if ref.kind == "dynamic" and not _known(name, seen):
            attributes.append((name, pos))
    if not attributes:
        return []
    paths = _attribute_paths(reader, table, start, end, scope, now_ns)
    canonical = [display_name(c) for c in CHEAP_COLUMNS] + list(SAMPLED_COLUMNS) + ["timestamp", *HTTP_FIELDS]
    candidates = sorted({*canonical, *paths})
    out = []
    for name, pos in attributes:
        if _known(name, paths) or _in_range(reader, table, name, start, end, scope, now_ns):
            continue
        close = difflib.get_close_matches(name, candidates, n=_MAX_SUGGESTIONS, cutoff=0.6)
        lowered = [c for c in candidates if c.lower() == name.lower() and c not in close]
        out.append({"field": name, "position": pos, "suggestions": lowered + close})
    return out


def field_stats(store: Store, text: str, *, start: int | None, end: int | None,
                scope: tuple[str, dict[str, Any]] | None, settings: Mapping[str, Any],
                top: int = 5, only: str | None = None, now_ns: int | None = None,
                max_limit: int = 10_000) -> FieldsAnswer:
    """Fields of the records ``text`` matches in ``[start, end)`` within ``scope``; ``only`` keeps
    one field (for its longer list of values). Raises :class:`QueryError` for a bad query."""
    from .parser import parse

    began = time.perf_counter()
    now = time.time_ns() if now_ns is None else now_ns
    query = parse(text)
    records = filter_part(query)
    reader = _Reader(store, settings)
    table = store.table
    where, params = _where(records, start, end, scope, now)
    total, first_ns, last_ns, cheap = _cheap_pass(reader, table, where, params, top)
    fields: list[dict[str, Any]] = []
    for column, (present, values, exact) in cheap.items():
        kind = "number" if column == "http_status" else "string"
        fields.append({"name": display_name(column), "type": kind, "count": present, "exact": exact,
                       "top": values[:top]})
    sampled = 0
    if total:
        sampling = _sampling(total, first_ns, last_ns)
        sample_where, sample_params = where, params
        if sampling is not None:
            sample_where = f"{where} AND {sampling[0]}"
            sample_params = {**params, **sampling[1]}
        sampled, counts = _sample_pass(reader, table, sample_where, sample_params, min(2 * SAMPLE, max_limit))
        scale = total / sampled if sampled else 0.0
        exact = sampling is None
        for name, counter in counts.items():
            present = sum(counter.values())
            ranked = sorted(counter.items(), key=lambda kv: -kv[1])[:top]
            fields.append({"name": _field_name(name), "type": _type_of(counter),
                           "count": present if exact else min(total, round(present * scale)),
                           "exact": exact,
                           "top": [{"value": _value(k), "count": n if exact else round(n * scale)}
                                   for k, n in ranked]})
    order = {name: i for i, name in enumerate(_ORDER)}
    fields.sort(key=lambda f: (order.get(f["name"], len(order)), not f["name"].startswith("http."),
                               f["name"]))
    names = {f["name"] for f in fields}
    if only is not None:
        wanted = {only, display_name(only), f"http.{only}" if only in HTTP_FIELDS else only}
        fields = [f for f in fields if f["name"] in wanted]
    unknown = _unknown_fields(reader, table, query, text, start, end, scope, now, names)
    return FieldsAnswer(total=total, sampled=min(sampled, total) if total else 0, fields=fields,
                        unknown=unknown, elapsed_ms=round((time.perf_counter() - began) * 1000, 3))
