"""The reads ``explain`` makes: a few passes over the two sets, each one SELECT.

1. :func:`totals`: how many records each set has, their time extent, and the exact p50/p95 of
   the typed number columns (``http.duration_ms``, ``http.bytes_sent``).
2. :func:`cheap_counts`: every value of the ``LowCardinality`` columns (level, service, host,
   version, pattern_id, http.status, …) counted in both sets, exactly, in one pass
   (``GROUPING SETS``: one small hash table per column).
3. :func:`sample`: a sample of each set (whole short time slices picked by a hash, as the fields
   sidebar samples) for what is too costly to count whole: attributes, ``http.path``, client ips,
   and the number columns' values for the rank test.
4. :func:`conjunction_counts`: how many records of each set have several found values at once.

SQL text holds only column names from the schema (quoted by ``sqlsafe``), the conditions
:mod:`.sets` compiled (placeholders) and integers computed here; every value is a parameter.
"""

# ruff: noqa: S608 -- identifiers from the schema via sqlsafe, values as {name:Type} placeholders
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logharbor.server.engine.store import attributes as attrs
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.fields import resolve_field

from .sets import Sets

__all__ = [
    "CHEAP_COLUMNS",
    "NUMBER_COLUMNS",
    "SAMPLE",
    "SAMPLED_COLUMNS",
    "Totals",
    "attribute_name",
    "cheap_counts",
    "conjunction_counts",
    "flatten_attributes",
    "sample",
    "totals",
]

#: columns counted exactly over both whole sets (few distinct values, one cheap pass)
CHEAP_COLUMNS = ("level", "service", "source", "host", "instance", "env", "version", "tenant",
                 "pattern_id", "http_method", "http_status", "http_user_agent")
#: typed number columns: exact quantiles over the whole sets, a rank test on the sample
NUMBER_COLUMNS = ("http_duration_ms", "http_bytes_sent")
#: text columns read from the sample (with the attributes)
SAMPLED_COLUMNS = ("http_path", "http_client_ip", "http_referer")
#: records sampled per set for the sampled fields
SAMPLE = 4000
#: average records per sampled time slice
SLICE_RECORDS = 50


def _inner(sets: Sets, columns: Sequence[str]) -> str:
    cols = "".join(f"{c}, " for c in columns)
    return (f"SELECT {cols}({sets.focus}) AS __f, ({sets.baseline}) AS __b "
            f"FROM {{table}} WHERE {sets.where}")


def _run(store: Any, sql: str, params: Mapping[str, Any], settings: Mapping[str, Any]
         ) -> list[dict[str, Any]]:
    return list(store.query(sql.replace("{table}", store.table), params, settings=settings))


@dataclass(frozen=True)
class Totals:
    """Records in each set, their time extents (ns) and the number columns' quantiles."""

    focus: int
    baseline: int
    focus_span: tuple[int, int]
    baseline_span: tuple[int, int]
    #: column → (focus count, focus [p50, p95], baseline count, baseline [p50, p95])
    numbers: dict[str, tuple[int, list[float], int, list[float]]]


def _floats(values: Any) -> list[float]:
    return [float(x) for x in values or [] if x is not None]


def totals(store: Any, sets: Sets, settings: Mapping[str, Any]) -> Totals:
    """Pass 1."""
    select = ["countIf(__f) AS nf", "countIf(__b) AS nb",
              "toUnixTimestamp64Nano(minIf(`timestamp`, __f)) AS fa",
              "toUnixTimestamp64Nano(maxIf(`timestamp`, __f)) AS fz",
              "toUnixTimestamp64Nano(minIf(`timestamp`, __b)) AS ba",
              "toUnixTimestamp64Nano(maxIf(`timestamp`, __b)) AS bz"]
    for i, column in enumerate(NUMBER_COLUMNS):
        ref = quote_identifier(column)
        select += [f"countIf(__f AND isNotNull({ref})) AS n{i}f",
                   f"countIf(__b AND isNotNull({ref})) AS n{i}b",
                   f"quantilesIf(0.5, 0.95)({ref}, __f) AS q{i}f",
                   f"quantilesIf(0.5, 0.95)({ref}, __b) AS q{i}b"]
    columns = ["`timestamp`", *(quote_identifier(c) for c in NUMBER_COLUMNS)]
    rows = _run(store, f"SELECT {', '.join(select)} FROM ({_inner(sets, columns)})", sets.params, settings)
    row = rows[0] if rows else {}
    numbers = {}
    for i, column in enumerate(NUMBER_COLUMNS):
        nf, nb = int(row.get(f"n{i}f") or 0), int(row.get(f"n{i}b") or 0)
        numbers[column] = (nf, _floats(row.get(f"q{i}f")) if nf else [],
                           nb, _floats(row.get(f"q{i}b")) if nb else [])
    return Totals(focus=int(row.get("nf") or 0), baseline=int(row.get("nb") or 0),
                  focus_span=(int(row.get("fa") or 0), int(row.get("fz") or 0)),
                  baseline_span=(int(row.get("ba") or 0), int(row.get("bz") or 0)), numbers=numbers)


def cheap_counts(store: Any, sets: Sets, settings: Mapping[str, Any]
                 ) -> dict[str, dict[str, tuple[int, int]]]:
    """Pass 2: ``{column: {value: (focus count, baseline count)}}`` (absent values left out)."""
    names = [f"c{i}" for i in range(len(CHEAP_COLUMNS))]
    exprs = []
    for column, name in zip(CHEAP_COLUMNS, names, strict=True):
        ref = quote_identifier(column)
        value = f"ifNull(toString({ref}), '')" if column == "http_status" else f"toString({ref})"
        exprs.append(f"{value} AS {name}")
    sets_sql = ", ".join(f"({n})" for n in names)
    listed = ", ".join(names)
    sql = (f"SELECT {listed}, countIf(__f) AS f, countIf(__b) AS b, grouping({listed}) AS g "
           f"FROM ({_inner(sets, exprs)}) GROUP BY GROUPING SETS ({sets_sql})")
    out: dict[str, dict[str, tuple[int, int]]] = {c: {} for c in CHEAP_COLUMNS}
    width = len(CHEAP_COLUMNS)
    for row in _run(store, sql, sets.params, settings):
        mask = int(row["g"])
        # standard GROUPING: a 0 bit for the column the row is grouped by (first column = top bit)
        index = next((i for i in range(width) if not mask >> (width - 1 - i) & 1), None)
        if index is None:
            continue
        value = str(row[names[index]])
        if value == "":
            continue
        out[CHEAP_COLUMNS[index]][value] = (int(row["f"]), int(row["b"]))
    return out


def _sampling(params: dict[str, Any], side: str, total: int, span: tuple[int, int]) -> str:
    """The condition keeping about :data:`SAMPLE` of a set's ``total`` records: whole time slices
    of about :data:`SLICE_RECORDS` records, one slice in ``k`` chosen by a hash of the slice."""
    if total <= SAMPLE:
        return f"__{side}"
    k = max(2, total // SAMPLE)
    width = max(1, (span[1] - span[0] + 1) // max(1, total // SLICE_RECORDS))
    params[f"x_{side}_w"] = width
    params[f"x_{side}_k"] = k
    return (f"(__{side} AND cityHash64(intDiv(toUnixTimestamp64Nano(`timestamp`), {{x_{side}_w:Int64}})) "
            f"% {{x_{side}_k:UInt64}} = 0)")


@functools.lru_cache(maxsize=4096)
def attribute_name(path: str) -> str:
    """The name a query reaches an attribute path by: one a query would read as a canonical column
    (``status``, ``service``) is written ``attributes.<path>``."""
    try:
        dynamic = resolve_field(path).kind == "dynamic"
    except QueryError:
        dynamic = True
    return path if dynamic else f"attributes.{path}"


def flatten_attributes(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Nested attribute objects as dotted names (``error.type``), as a query names them."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            flatten_attributes(inner, f"{prefix}.{key}" if prefix else str(key), out)
    elif not isinstance(value, dict | list) and value is not None:
        out[prefix] = value


def sample(store: Any, sets: Sets, settings: Mapping[str, Any], counts: Totals
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pass 3: (focus rows, baseline rows), each ``{field name: value}`` of the sampled columns
    (``http.path``, …), the number columns and every attribute path (a scalar; arrays left out)."""
    params = sets.params
    keep = " OR ".join([_sampling(params, "f", counts.focus, counts.focus_span),
                        _sampling(params, "b", counts.baseline, counts.baseline_span)])
    columns = ["`timestamp`", *(quote_identifier(c) for c in (*SAMPLED_COLUMNS, *NUMBER_COLUMNS)),
               quote_identifier("attributes"), quote_identifier(attrs.EXACT_COLUMN)]
    sql = f"SELECT * FROM ({_inner(sets, columns)}) WHERE {keep} LIMIT {2 * SAMPLE} BY __f"
    focus: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    for row in _run(store, sql, params, settings):
        fields: dict[str, Any] = {}
        for column in (*SAMPLED_COLUMNS, *NUMBER_COLUMNS):
            value = row.get(column)
            if value is not None and value != "":
                fields["http." + column[5:]] = value
        attributes: dict[str, Any] = {}
        flatten_attributes(attrs.read(row.get("attributes"), row.get(attrs.EXACT_COLUMN)), "", attributes)
        for name, value in attributes.items():
            fields[attribute_name(name)] = value
        (focus if row.get("__f") else baseline).append(fields)
    return focus, baseline


def conjunction_counts(store: Any, sets: Sets, settings: Mapping[str, Any], conditions: Sequence[str]
                       ) -> list[tuple[int, int]]:
    """Pass 4: (focus, baseline) counts of records matching the first 1, 2, … ``conditions``."""
    if not conditions:
        return []
    exprs = [f"ifNull({c}, 0) AS k{i}" for i, c in enumerate(conditions)]
    select = []
    for i in range(len(conditions)):
        both = " AND ".join(f"k{j}" for j in range(i + 1))
        select += [f"countIf(__f AND {both}) AS f{i}", f"countIf(__b AND {both}) AS b{i}"]
    rows = _run(store, f"SELECT {', '.join(select)} FROM ({_inner(sets, exprs)})", sets.params, settings)
    row = rows[0] if rows else {}
    return [(int(row.get(f"f{i}") or 0), int(row.get(f"b{i}") or 0)) for i in range(len(conditions))]
