"""Conversion between canonical records and the rows of the logs table.

Ingest encodes each normalized record to one JSONEachRow line once, at the edge; the WAL keeps
those bytes and the batcher hands them to the store unchanged. Reads go the other way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from logharbor import exactjson
from logharbor.patterns import pattern_id, pattern_key, template_of
from logharbor.record import (
    _SEVERITY_NUMBER,
    HTTP_FIELDS,
    STRING_FIELDS,
    RecordError,
    _fold,
    keep_aside,
    normalize,
    parse_timestamp,
    stamp_tenant,
    to_wire,
)
from logharbor.server.engine.store import attributes as attrs
from logharbor.types import HttpFields, Record, StoreRow, WireRecord

__all__ = ["COLUMNS", "PATTERN_PREFIX", "encode_record", "encode_row", "row_to_record", "row_to_wire",
           "set_patterns", "stored_row_to_wire"]

_NS = 1_000_000_000
_STRING_COLUMNS = STRING_FIELDS
_HTTP_COLUMNS = tuple(f"http_{name}" for name in HTTP_FIELDS)
#: every column of the logs table, in schema order
COLUMNS = (
    "tenant", "timestamp", "observed_timestamp", "level", "severity_number", "service", "source",
    "host", "instance", "env", "version", "message", "trace_id", "span_id", "request_id",
    *_HTTP_COLUMNS, "attributes", "pattern_id",
)
#: how a row with a pattern starts: the per-message id (16 hex digits) follows at once, so the
#: batcher finds and rewrites ids with byte searches, without decoding rows (server/engine/mining.py)
PATTERN_PREFIX = b'{"pattern_id":"'
_patterns = True


_SIDS: dict[tuple[str | None, str | None, str], str] = {}  # repeated messages are the common case
_SIDS_MAX = 20_000


def _sid(tenant: str | None, service: str | None, message: str) -> str:
    """The masked-template id of a message (tenant and service included), cached."""
    key = (tenant, service, message)
    sid = _SIDS.get(key)
    if sid is None:
        sid = pattern_id(pattern_key(tenant, service), template_of(message))
        if len(message) <= 512:
            if len(_SIDS) >= _SIDS_MAX:
                _SIDS.clear()
            _SIDS[key] = sid
    return sid


def set_patterns(enabled: bool) -> None:
    """Turn the per-message pattern id at encoding on or off (``--no-patterns``; worker processes
    are started with the server's choice)."""
    global _patterns
    _patterns = enabled


def _ts(ns: int) -> str:
    """DateTime64(9) input: ClickHouse reads 'seconds.fraction' text without rounding.

    The seconds are written with 10 digits: the engine reads fewer (any time before 1973-03-03)
    as a date ('0.500000000' failed the whole batch, forever; '500000000' became 1985)."""
    seconds, frac = divmod(ns, _NS)
    return f"{seconds:010d}.{frac:09d}"


_last_observed: tuple[int, str] = (-1, "")  # every record of one request shares its receive time


def _observed(ns: int) -> str:
    global _last_observed
    cached = _last_observed  # one read of one tuple: safe when threads race
    if cached[0] != ns:
        cached = (ns, _ts(ns))
        _last_observed = cached
    return cached[1]


_HTTP_COLUMN = {name: "http_" + name for name in HTTP_FIELDS}


def encode_row(record: Record) -> bytes:
    """One normalized record as one JSONEachRow line (without the newline)."""
    message = record.get("message")
    row: StoreRow = {"pattern_id": _sid(record.get("tenant"), record.get("service"), message)} \
        if _patterns and message else {}
    row["timestamp"] = _ts(record["timestamp"])
    row["observed_timestamp"] = _observed(record["observed_timestamp"])
    row["level"] = record["level"]
    row["severity_number"] = record["severity_number"]
    get = record.get
    for name in _STRING_COLUMNS:
        value = get(name)
        if value is not None:
            row[name] = value
    for key, value in record["http"].items():
        row[_HTTP_COLUMN[key]] = value
    attributes = record["attributes"]
    if attributes:
        row["attributes"] = attributes
    return _dumps(row, attributes)


def _dumps(row: StoreRow, attributes: Mapping[Any, Any]) -> bytes:
    """The row's line. The attributes object goes in as it is: the engine stores its text byte
    for byte (store/attributes.py), so what orjson writes here is what a read gives back."""
    try:
        return orjson.dumps(row)
    except TypeError:
        pass
    # an int beyond 64 bits, a key that is not a string (msgpack), or a value that is not JSON
    # at all (then this raises TypeError, the caller's per-record error)
    if attributes:
        row["attributes"] = attrs.text_keys(attributes)
    return exactjson.dumps(row)


def encode_record(obj: Mapping[str, Any], *, received_ns: int | None = None,
                  defaults: Mapping[str, Any] | None = None, tenant: str | None = None) -> bytes:
    """``encode_row`` of the normalized ``obj`` (with ``tenant`` stamped when not None) in one pass.

    The same bytes and the same errors as ``encode_row(stamp_tenant(normalize(obj, …), tenant))``
    (tests/record/test_differential.py holds the two side by side), without building the
    normalized dict first: ingest calls this once per record.
    """
    if defaults:  # rare (syslog, forward): the two-step path
        return encode_row(stamp_tenant(normalize(obj, received_ns=received_ns, defaults=defaults), tenant))
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise RecordError(f"a record must be a JSON object, got {type(obj).__name__}")
    now = received_ns if received_ns is not None else time.time_ns()
    (timestamp, message, service, source, host, instance, env, version, own_tenant, trace_id, span_id,
     request_id, http, level, attributes) = _fold(obj, now)
    if not service:
        service = "unknown"
    if tenant is None:
        tenant = own_tenant
    elif own_tenant is not None and own_tenant != tenant:  # the writer's wins; the sent one is kept
        keep_aside(attributes, "tenant", own_tenant)
    row: StoreRow = {"pattern_id": _sid(tenant, service, message)} if _patterns and message else {}
    row["timestamp"] = _ts(timestamp)
    row["observed_timestamp"] = _observed(now)
    row["level"] = level
    row["severity_number"] = _SEVERITY_NUMBER[level]
    row["service"] = service
    if source is not None:
        row["source"] = source
    if host is not None:
        row["host"] = host
    if instance is not None:
        row["instance"] = instance
    if env is not None:
        row["env"] = env
    if version is not None:
        row["version"] = version
    row["message"] = message
    if trace_id is not None:
        row["trace_id"] = trace_id
    if span_id is not None:
        row["span_id"] = span_id
    if request_id is not None:
        row["request_id"] = request_id
    if tenant is not None:
        row["tenant"] = tenant
    if http:
        for key, value in http.items():
            row[_HTTP_COLUMN[key]] = value
    if attributes:
        row["attributes"] = attributes
    return _dumps(row, attributes)


def _parse_ch_time(text: str) -> int:
    """'2026-11-01 12:34:56.789123456' (UTC, as the engine prints DateTime64(9)) to ns."""
    return parse_timestamp(text)


def row_to_record(row: StoreRow) -> Record:
    """A row of the logs table as a canonical record (timestamps in ns, empty strings absent)."""
    record: Record = {  # type: ignore[typeddict-item]  # the string fields are set below, by name
        "timestamp": _parse_ch_time(row["timestamp"]),
        "observed_timestamp": _parse_ch_time(row["observed_timestamp"])
        if row.get("observed_timestamp") else 0,
        "level": row.get("level") or "INFO",
        "severity_number": row.get("severity_number") or 9,
    }
    for name in _STRING_COLUMNS:
        value = row.get(name)
        record[name] = value if value not in ("", None) else None  # type: ignore[literal-required]
    http: HttpFields = {}
    for name in HTTP_FIELDS:
        value = row.get("http_" + name)
        if value not in ("", None):
            http[name] = value
    record["http"] = http
    # text in tables made by this release; an old cold file's JSON text with its patch
    record["attributes"] = attrs.read(row.get("attributes"), row.get(attrs.EXACT_COLUMN))
    return record


def row_to_wire(row: StoreRow) -> WireRecord:
    """A row of the logs table in the flat NDJSON form users see (DESIGN §2)."""
    return to_wire(row_to_record(row))


def stored_row_to_wire(row: StoreRow) -> WireRecord:
    """A row read back from the store in wire form, with its ``pattern_id`` when it has one.

    Only stored rows carry their final id (the batcher may have merged it into an older
    template); rows on their way (live tail) carry the per-message one, so they leave it out.
    """
    out = to_wire(row_to_record(row))
    if row.get("pattern_id"):
        out["pattern_id"] = row["pattern_id"]
    return out
