"""The words logharbor's parts share, as types (as Starlette's ``types.py``).

A record travels as a plain ``dict`` (cheap to build, copy and serialize; docs/record.md). These
names say which step of its way a ``dict`` is at, where a bare ``dict[str, Any]`` said nothing:

* :data:`RawRecord`: one decoded JSON object as a sender wrote it, before
  :func:`logharbor.record.normalize` (any keys, aliases not yet folded);
* :class:`Record`: the canonical record ``normalize`` returns, with exactly these keys;
* :data:`WireRecord`: the flat NDJSON form of DESIGN §2 (:func:`logharbor.record.to_wire`), also
  what the sdk builds and ships;
* :data:`StoreRow`: one row of a table, column name → value, as the store inserts it (a JSONEachRow
  line: the logs table's from a record, the patterns table's from the miner) or as reading the
  table gives it back;
* :data:`Row`: one row a query returns, column name → value.

Beside the record's way, the protocols share :data:`SqlParams` (the values bound to a statement's
named parameters), :data:`EngineSettings` (the engine settings it runs with), :class:`QueryStats`
(what a query read) and :data:`JsonObject` (free JSON: a request or response body, a state file,
an option table, a stats snapshot).

Type names only: nothing here runs, and this module imports nothing of logharbor.
"""

from __future__ import annotations

from typing import Any, TypeAlias, TypedDict

__all__ = ["Attributes", "EngineSettings", "HttpFields", "JsonObject", "QueryStats", "RawRecord", "Record",
           "Row", "SqlParams", "StoreRow", "WireRecord"]

#: a record as received: one JSON object, any keys (what normalize() reads)
RawRecord: TypeAlias = dict[str, Any]
#: a record's keys that are not canonical fields, each keeping its JSON type
Attributes: TypeAlias = dict[str, Any]
#: the typed HTTP fields of a record (``logharbor.record.HTTP_FIELDS``: method, path, status, …)
HttpFields: TypeAlias = dict[str, Any]
#: the flat NDJSON form: canonical fields, an ``http`` object, attributes inline
WireRecord: TypeAlias = dict[str, Any]
#: one row of a table as the store writes or reads it (the logs table's columns are
#: ``logharbor.server.engine.store.rows.COLUMNS``): an alias, not a TypedDict, because the
#: ``http_*`` columns are written and read by computed name
StoreRow: TypeAlias = dict[str, Any]
#: one row of a query's answer: column name → value
Row: TypeAlias = dict[str, Any]
#: the values bound to a statement's named parameters (``{name:Type}``): user values travel here,
#: never in SQL text
SqlParams: TypeAlias = dict[str, Any]
#: the engine settings a statement runs with (``max_execution_time``, an insert's dedup token, …)
EngineSettings: TypeAlias = dict[str, Any]
#: a JSON object that is not a record: a request or response body, a state file, options, stats
JsonObject: TypeAlias = dict[str, Any]


class QueryStats(TypedDict):
    """What the engine read to answer a query (``Store.query_with_stats``); None when not reported."""

    rows_read: int | None
    bytes_read: int | None
    elapsed: float | None


class Record(TypedDict):
    """The canonical record (DESIGN §2): every path into logharbor ends as one of these."""

    timestamp: int  # ns since the epoch, UTC
    observed_timestamp: int  # ns: when logharbor (or the shipper) received it
    message: str | None
    service: str  # "unknown" when the record named none
    source: str | None
    host: str | None
    instance: str | None
    env: str | None
    version: str | None
    tenant: str | None
    trace_id: str | None
    span_id: str | None
    request_id: str | None
    http: HttpFields
    level: str  # one of logharbor.record.LEVELS
    severity_number: int
    attributes: Attributes
