"""How a tail query runs: compiled once to a condition, evaluated per batch in the engine.

A batch is the JSONEachRow rows of recent durable writes; the engine reads it as a table through
``format(JSONEachRow, <structure>, <rows>)`` with both passed as parameters. All distinct filters
of one round share a single query (one flag column each), so a batch is parsed once however many
clients follow it. The conditions come from the query language's own filter compiler, so a tail
matches exactly what a search matches.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import orjson

from logharbor import exactjson
from logharbor.server.engine.store.base import Store
from logharbor.server.engine.store.rows import row_to_wire
from logharbor.server.engine.store.sql import tail as tail_sql
from logharbor.server.engine.store.sql.tail import BATCH_TABLE
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.errors import ApiError
from logharbor.server.features.query import QueryError, parse
from logharbor.server.features.query.ast import MatchAll, Query, Where
from logharbor.server.features.query.fields import resolve_field
from logharbor.server.features.query.filters import FilterCompiler, Params
from logharbor.server.features.query.service import query_error

__all__ = ["BATCH_TABLE", "BatchRunner", "BatchStructure", "Scope", "TailFilter", "compile_filter_only",
           "compile_tail_filter", "round_sql", "run_round", "split_batch"]

_MAX_QUERY_CHARS = 16 * 1024

@dataclass(frozen=True)
class TailFilter:
    """A compiled tail filter: a condition over one batch row (None: every row) and its parameters."""

    text: str
    condition: str | None
    params: dict[str, Any]


class _PrefixedParams(Params):
    """Parameter names unique to one filter, so many filters can share one query."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def add(self, value: object, sql_type: str) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{sql_type}}}"


def compile_filter_only(text: str, prefix: str = "p") -> tuple[str | None, dict[str, Any], Query]:
    """The WHERE condition (or None for everything) and parameters of a filter-only query.

    Stop-gap until the query package offers this itself: it uses that package's parser and
    :class:`FilterCompiler` (the same code a search runs), without the SELECT around it, so the
    tail can keep arrival order and combine filters. Raises :class:`QueryError`.
    """
    query = parse(text)
    params = _PrefixedParams(prefix)
    # a batch has the stored columns only: promoted attributes are read from the text
    filters = FilterCompiler(params, functools.partial(resolve_field, promoted=False), time.time_ns())
    parts = [] if isinstance(query.filter, MatchAll) else [filters.compile(query.filter)]
    parts += [filters.compile(pipe.filter) for pipe in query.pipes if isinstance(pipe, Where)]
    return (" AND ".join(f"({p})" for p in parts) or None), dict(params.values), query


def compile_tail_filter(text: str, prefix: str = "p") -> TailFilter:
    """Compile a tail query with the query language; 400 for errors and for non-filter pipes."""
    q = text.strip() or "*"
    if len(q) > _MAX_QUERY_CHARS:
        raise ApiError(400, "query_too_long", f"a tail query is at most {_MAX_QUERY_CHARS} characters")
    try:
        condition, params, query = compile_filter_only(q, prefix)
    except QueryError as exc:
        raise query_error(exc) from None
    if any(not isinstance(p, Where) for p in query.pipes):
        raise ApiError(400, "tail_filter_only",
                       "live tail takes a filter (and '| where …'); stats, fields, sort, limit and "
                       "the other pipes work in a search")
    return TailFilter(q, condition, params)


Scope = tuple[str, dict[str, Any]] | None


def round_sql(filters: list[TailFilter], scope: Scope) -> tuple[str, dict[str, Any]]:
    """One query over a batch (engine/store/sql/tail.py): rows matching any filter, a flag
    ``__tail_m<i>`` per filter, in arrival order, with the filters' and the scope's parameters."""
    sql, params = tail_sql.round_sql([filt.condition for filt in filters], scope)
    for filt in filters:
        params.update(filt.params)
    return sql, params


@dataclass(frozen=True)
class BatchStructure:
    """The table's columns as the engine reads a batch, in two forms.

    ``full`` types the JSON columns; ``light`` reads them as String, which makes parsing a batch
    two to three times cheaper, so a round uses it whenever no filter looks inside them (the
    value is then the JSON text as written, decoded here; only its key order can differ from a
    search's answer).
    """

    full: str
    light: str
    json_columns: tuple[str, ...]

    @classmethod
    def from_columns(cls, columns: list[dict[str, Any]]) -> BatchStructure:
        """From ``DESCRIBE TABLE`` rows: names and types as the engine itself reports them. The
        computed columns (MATERIALIZED, ALIAS: the promoted attributes) are not in a batch's
        rows; typed here they would read as NULL, so they are left out (a filter never names
        them: tail filters read attributes from the text)."""
        full, light, json_columns = [], [], []
        for col in columns:
            if col.get("default_type") in ("MATERIALIZED", "ALIAS"):
                continue
            name = quote_identifier(col["name"])
            full.append(f"{name} {col['type']}")
            if col["type"].startswith("JSON"):
                json_columns.append(col["name"])
                light.append(f"{name} String")
            else:
                light.append(f"{name} {col['type']}")
        return cls(", ".join(full), ", ".join(light), tuple(json_columns))

    def needs_full(self, filters: list[TailFilter], scope: Scope) -> bool:
        texts = [f.condition or "" for f in filters] + [scope[0] if scope else ""]
        return any(quote_identifier(c) in text for c in self.json_columns for text in texts)

    def decode(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row read with ``light``: its JSON columns as objects again."""
        for name in self.json_columns:
            value = row.get(name)
            if isinstance(value, str):
                row[name] = orjson.loads(value) if value else {}
        return row


class BatchRunner:
    """Runs filter SQL over a batch through :meth:`Store.run_on_rows`, with the round's time limit.

    A store may cap the rows one call carries (:attr:`Store.rows_batch_limit`: a remote store
    sends them as a form field, which ClickHouse caps), so there a round is cut into pieces of
    at most :attr:`max_batch_bytes`.
    """

    def __init__(self, store: Store, *, timeout_s: float | None = None) -> None:
        self.store = store
        #: the engine stops a round that runs longer (query_timeout_s): one costly filter must not
        #: hold every tail client of the server
        self.settings: dict[str, Any] = {"max_execution_time": timeout_s} if timeout_s else {}
        self.max_batch_bytes: int | None = store.rows_batch_limit

    def query(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.store.run_on_rows(sql, params, settings=self.settings)

    def close(self) -> None:
        """Nothing to release: the store owns the connection a round runs on."""


#: per filter of a round, its matching rows as (row number in the batch, wire JSON or None)
Matches = list[list[tuple[int, bytes | None]]]


def run_round(runner: BatchRunner, structure: BatchStructure, payload: bytes,
              work: list[tuple[list[TailFilter], Scope, list[bool]]]) -> list[Matches]:
    """One round (blocking: the tail thread runs it): one query per scope over the batch.

    Returns, per scope and per filter, the matching rows as (row number, wire JSON); a row is
    serialized once however many filters it matches, and not at all (None) when no filter it
    matches is ``wanted`` (every client behind it is full, so it only counts as dropped).
    """
    # plain text: the runner (or the store behind it) escapes parameters the one way the engine reads them
    pieces = [(chunk.decode(), first) for chunk, first in split_batch(payload, runner.max_batch_bytes)]
    out = []
    for filters, scope, wanted in work:
        sql, params = round_sql(filters, scope)
        full = structure.needs_full(filters, scope)
        params["tail_structure"] = structure.full if full else structure.light
        per_filter: Matches = [[] for _ in filters]
        flags = [(i, f"__tail_m{i}") for i in range(len(filters))]
        for data, first in pieces:
            params["tail_rows"] = data
            for row in runner.query(sql, params):
                if not full:
                    structure.decode(row)
                hits = [i for i, flag in flags if row[flag]]
                line = None
                if any(wanted[i] for i in hits):
                    line = exactjson.dumps(row_to_wire(row), option=orjson.OPT_NON_STR_KEYS)
                for i in hits:
                    per_filter[i].append((row["__tail_row"] + first, line))
        out.append(per_filter)
    return out


def split_batch(payload: bytes, limit: int | None) -> list[tuple[bytes, int]]:
    """Whole rows in pieces of at most ``limit`` bytes (a longer row alone), with each piece's first row."""
    if limit is None or len(payload) <= limit:
        return [(payload, 0)]
    pieces: list[tuple[bytes, int]] = []
    rows: list[bytes] = []
    size = first = 0
    for number, line in enumerate(payload.split(b"\n")):
        if rows and size + len(line) + 1 > limit:
            pieces.append((b"\n".join(rows), first))
            rows, size, first = [], 0, number
        rows.append(line)
        size += len(line) + 1
    pieces.append((b"\n".join(rows), first))
    return pieces
