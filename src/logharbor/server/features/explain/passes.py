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


from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logharbor.server.engine.store import attributes as attrs
from logharbor.server.engine.store.base import Store
from logharbor.server.engine.store.sql import explain as sql
from logharbor.server.engine.store.sql.explain import SetsSql
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.fields import resolve_field

from .sets import Sets

__all__ = [
    "CHEAP_COLUMNS",
    "CHEAP_EXACT",
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
SAMPLE = 2000
#: records per set counted whole for the cheap columns; a larger set is counted on whole time
#: slices of about this many (so the pass costs about the same at 10M records as at 1M)
CHEAP_EXACT = 1_000_000
#: average records per sampled time slice
SLICE_RECORDS = 50


def _sets(sets: Sets) -> SetsSql:
    return sets.focus, sets.baseline, sets.where


def _run(store: Store, sql: str, params: Mapping[str, Any], settings: Mapping[str, Any]
         ) -> list[dict[str, Any]]:
    return list(store.query(sql, params, settings=settings))


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


def totals(store: Store, sets: Sets, settings: Mapping[str, Any]) -> Totals:
    """Pass 1."""
    rows = _run(store, sql.totals_sql(store.table, _sets(sets), NUMBER_COLUMNS), sets.params, settings)
    row = rows[0] if rows else {}
    numbers = {}
    for i, column in enumerate(NUMBER_COLUMNS):
        nf, nb = int(row.get(f"n{i}f") or 0), int(row.get(f"n{i}b") or 0)
        numbers[column] = (nf, _floats(row.get(f"q{i}f")) if nf else [],
                           nb, _floats(row.get(f"q{i}b")) if nb else [])
    return Totals(focus=int(row.get("nf") or 0), baseline=int(row.get("nb") or 0),
                  focus_span=(int(row.get("fa") or 0), int(row.get("fz") or 0)),
                  baseline_span=(int(row.get("ba") or 0), int(row.get("bz") or 0)), numbers=numbers)


def cheap_counts(store: Store, sets: Sets, settings: Mapping[str, Any], counts: Totals
                 ) -> tuple[dict[str, dict[str, tuple[int, int]]], tuple[int, int]]:
    """Pass 2: ``{column: {value: (focus count, baseline count)}}`` (absent values left out) and
    the (focus, baseline) records counted: every record while a set has at most
    :data:`CHEAP_EXACT` of them, else whole time slices of about that many (bounded cost)."""
    params = sets.params
    keep = ""
    if max(counts.focus, counts.baseline) > CHEAP_EXACT:
        keep = " OR ".join([
            _sampling(params, "f", sets.focus, counts.focus, counts.focus_span, CHEAP_EXACT),
            _sampling(params, "b", sets.baseline, counts.baseline, counts.baseline_span, CHEAP_EXACT)])
    names = [f"c{i}" for i in range(len(CHEAP_COLUMNS))]
    query = sql.cheap_counts_sql(store.table, _sets(sets), CHEAP_COLUMNS, keep)
    out: dict[str, dict[str, tuple[int, int]]] = {c: {} for c in CHEAP_COLUMNS}
    counted = (0, 0)
    width = len(CHEAP_COLUMNS)
    for row in _run(store, query, params, settings):
        mask = int(row["g"])
        # standard GROUPING: a 0 bit for the column the row is grouped by (first column = top bit)
        index = next((i for i in range(width) if not mask >> (width - 1 - i) & 1), None)
        if index is None:  # the () set: every record counted
            counted = (int(row["f"]), int(row["b"]))
            continue
        value = str(row[names[index]])
        if value == "":
            continue
        out[CHEAP_COLUMNS[index]][value] = (int(row["f"]), int(row["b"]))
    return out, counted


def _sampling(params: dict[str, Any], side: str, condition: str, total: int, span: tuple[int, int],
              size: int = 0) -> str:
    """The condition keeping about ``size`` (default :data:`SAMPLE`) of a set's ``total`` records
    (``condition``): whole time slices of about :data:`SLICE_RECORDS` records, one slice in ``k``
    chosen by a hash of the slice."""
    size = size or SAMPLE
    if total <= size:
        return f"({condition})"
    k = max(2, total // size)
    width = max(1, (span[1] - span[0] + 1) // max(1, total // SLICE_RECORDS))
    name = f"x_{side}{size}"
    params[f"{name}_w"] = width
    params[f"{name}_k"] = k
    return sql.slice_sample(condition, f"{{{name}_w:Int64}}", f"{{{name}_k:UInt64}}")


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


def sample(store: Store, sets: Sets, settings: Mapping[str, Any], counts: Totals
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pass 3: (focus rows, baseline rows), each ``{field name: value}`` of the sampled columns
    (``http.path``, …), the number columns and every attribute path (a scalar; arrays left out)."""
    params = sets.params
    keep = " OR ".join([_sampling(params, "f", sets.focus, counts.focus, counts.focus_span),
                        _sampling(params, "b", sets.baseline, counts.baseline, counts.baseline_span)])
    columns = ["`timestamp`", *(quote_identifier(c) for c in (*SAMPLED_COLUMNS, *NUMBER_COLUMNS)),
               quote_identifier("attributes"), quote_identifier(attrs.EXACT_COLUMN)]
    query = sql.sample_sql(store.table, _sets(sets), columns, keep, 2 * SAMPLE)
    focus: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    for row in _run(store, query, params, settings):
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


def conjunction_counts(store: Store, sets: Sets, settings: Mapping[str, Any], conditions: Sequence[str]
                       ) -> list[tuple[int, int]]:
    """Pass 4: (focus, baseline) counts of records matching the first 1, 2, … ``conditions``."""
    if not conditions:
        return []
    rows = _run(store, sql.conjunctions_sql(store.table, _sets(sets), conditions), sets.params, settings)
    row = rows[0] if rows else {}
    return [(int(row.get(f"f{i}") or 0), int(row.get(f"b{i}") or 0)) for i in range(len(conditions))]
