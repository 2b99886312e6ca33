"""The words logharbor's parts share, as types (as Starlette's ``types.py``).

A record travels as a plain ``dict`` (cheap to build, copy and serialize; docs/record.md). These
names say which step of its way a ``dict`` is at, where a bare ``dict[str, Any]`` said nothing:

* :data:`RawRecord`: one decoded JSON object as a sender wrote it, before
  :func:`logharbor.record.normalize` (any keys, aliases not yet folded);
* :class:`Record`: the canonical record ``normalize`` returns, with exactly these keys;
* :data:`WireRecord`: the flat NDJSON form of DESIGN §2 (:func:`logharbor.record.to_wire`);
* :data:`Row`: one row a query returns, column name → value.

Type names only: nothing here runs, and this module imports nothing of logharbor.
"""

from __future__ import annotations

from typing import Any, TypeAlias, TypedDict

__all__ = ["Attributes", "HttpFields", "RawRecord", "Record", "Row", "WireRecord"]

#: a record as received: one JSON object, any keys (what normalize() reads)
RawRecord: TypeAlias = dict[str, Any]
#: a record's keys that are not canonical fields, each keeping its JSON type
Attributes: TypeAlias = dict[str, Any]
#: the typed HTTP fields of a record (``logharbor.record.HTTP_FIELDS``: method, path, status, …)
HttpFields: TypeAlias = dict[str, Any]
#: the flat NDJSON form: canonical fields, an ``http`` object, attributes inline
WireRecord: TypeAlias = dict[str, Any]
#: one row of a query's answer: column name → value
Row: TypeAlias = dict[str, Any]


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
