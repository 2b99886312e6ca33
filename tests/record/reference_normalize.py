"""FROZEN reference: ``record.normalize`` and the store-row encoding as they were before the
ingest fast path (commit 17805cb, 2026-11-25). Do not edit or "fix" this file: the differential
test (test_differential.py) holds the optimized path to exactly these rows and these errors,
quirks included (see the notes there). Copied verbatim from ``src/logharbor/record.py``, with
``encode_row`` from ``server/engine/store/rows.py`` and the line loop of ``server/ingest/native.py``
appended at the end.

Change 6 (dialects, issue #22) is written out plainly at the end of this file: numeric levels on
pino's scale, ``severity_number`` as OTel's, protobuf timestamp objects, Go slog level offsets,
winston's ``silly``/``http``, and the logger dialects recognised by their keys.

Change 11 (two values for one name, docs/record.md): a value that loses its name to another is
kept as ``<name>_attribute`` (``_attribute2`` … when taken by another value; an equal value once),
written out plainly at the end of this file (``_aside11``) and applied where each collision is.

Change 12 (exact epoch floats): a float epoch is read as the decimal its shortest repr writes
(``parse_timestamp6``, ``_exact_epoch12``). Change 13 (five more logger dialects: log4j2
JsonLayout, .NET's JSON console, Rust tracing, Caddy and Traefik access logs) is written out
plainly in ``_dialect_rewrite``.
"""
# ruff: noqa


from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "CANONICAL_FIELDS",
    "HTTP_FIELDS",
    "LEVELS",
    "TIMESTAMP_KEYS",
    "RecordError",
    "format_timestamp",
    "normalize",
    "normalize_level",
    "normalize_trace_id",
    "parse_timestamp",
    "severity_number",
    "to_wire",
]


class RecordError(ValueError):
    """A value cannot become part of a canonical record; the message says which and why."""


LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_SEVERITY_NUMBER = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}

#: Canonical top-level string fields besides timestamp/level/http, in storage order.
STRING_FIELDS = (
    "service", "source", "host", "instance", "env", "version", "message",
    "trace_id", "span_id", "request_id", "tenant",
)
#: Typed HTTP fields and their Python types (stored as ``http_<name>`` columns).
HTTP_FIELDS: dict[str, type] = {
    "method": str, "path": str, "status": int, "duration_ms": float, "client_ip": str,
    "user_agent": str, "bytes_sent": int, "referer": str,
}
CANONICAL_FIELDS = (
    "timestamp", "observed_timestamp", "level", "severity_number", *STRING_FIELDS, "http",
)

# Alias tables: the first key present wins; the canonical name is tried first.
TIMESTAMP_KEYS = _TIMESTAMP_KEYS = ("timestamp", "@timestamp", "time", "ts", "timeMillis", "datetime", "date")
_MESSAGE_KEYS = ("message", "msg", "short_message", "log", "event")
_LEVEL_KEYS = ("level", "severity", "lvl", "levelname", "log.level", "loglevel", "severity_text")
_TRACE_KEYS = ("trace_id", "traceId", "trace.id", "traceparent", "trace", "x_amzn_trace_id",
               "X-Amzn-Trace-Id")
_SPAN_KEYS = ("span_id", "spanId", "span.id")
_REQUEST_KEYS = ("request_id", "requestId", "request.id", "req_id", "x_request_id", "X-Request-ID")
_SERVICE_KEYS = ("service", "service.name", "service_name", "serviceName")
_HOST_KEYS = ("host", "hostname", "host.name")
_ENV_KEYS = ("env", "environment", "deployment.environment")
_VERSION_KEYS = ("version", "service.version")
_SIMPLE = {
    "source": ("source",), "instance": ("instance",), "tenant": ("tenant",),
    "host": _HOST_KEYS, "env": _ENV_KEYS, "version": _VERSION_KEYS,
}

# ---------------------------------------------------------------------------------------------
# timestamps

_NS = 1_000_000_000
#: DateTime64(9) holds 1900-01-01 .. 2262-04-11; we accept 1970 .. 2262 (negative epochs are
#: almost always a unit mistake in a log line).
_MAX_NS = 9_223_372_036_854_775_807
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9})\d*)?)?)?"
    r"\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,  # (fix applied on both sides, session 2: "²" in a time was a ValueError)
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _epoch_to_ns(value: float | int) -> int:
    """Epoch number in s, ms, µs or ns (told apart by magnitude, as Vector and Filebeat do)."""
    if value != value or value in (float("inf"), float("-inf")):
        raise RecordError(f"timestamp {value!r} is not a finite number")
    if value < 0:
        raise RecordError(f"timestamp {value!r} is before 1970")
    if value < 1e11:  # seconds: until year 5138
        ns = round(value * _NS) if isinstance(value, float) else value * _NS
    elif value < 1e14:  # milliseconds
        ns = round(value * 1_000_000) if isinstance(value, float) else value * 1_000_000
    elif value < 1e17:  # microseconds
        ns = round(value * 1_000) if isinstance(value, float) else value * 1_000
    else:
        ns = int(value)
    if ns > _MAX_NS:
        raise RecordError(f"timestamp {value!r} is after 2262")
    return int(ns)


def parse_timestamp(value: Any) -> int:
    """Parse a timestamp into integer nanoseconds since the epoch (UTC).

    Accepts RFC 3339 / ISO 8601 with any fraction (up to ns) and offset (no offset means UTC),
    and epoch seconds, milliseconds, microseconds or nanoseconds as numbers or digit strings.
    """
    if type(value) is str:
        fast = _fast_utc(value)
        if fast is not None:
            return fast
    if isinstance(value, bool):
        raise RecordError(f"timestamp {value!r} is not a time")
    if isinstance(value, int | float):
        return _epoch_to_ns(value)
    if not isinstance(value, str):
        raise RecordError(f"timestamp of type {type(value).__name__} is not a time")
    text = value.strip()
    if not text:
        raise RecordError("timestamp is empty")
    if text.isascii() and text[0].isdigit() and (text.isdigit() or _is_decimal(text)):
        if "." in text:
            whole, _, frac = text.partition(".")
            if len(whole) <= 11:  # seconds with a fraction: keep every digit, no float rounding
                ns = int(whole) * _NS + int((frac + "000000000")[:9])
                if ns > _MAX_NS:
                    raise RecordError(f"timestamp {value!r} is after 2262")
                return ns
            return _epoch_to_ns(float(text))
        return _epoch_to_ns(int(text))
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise RecordError(f"timestamp {value!r} is not RFC 3339 or an epoch number")
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    hour = int(m[4] or 0)
    minute = int(m[5] or 0)
    second = int(m[6] or 0)
    if not 1 <= month <= 12:
        raise RecordError(f"timestamp {value!r} has month {month}")
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS_IN_MONTH[month - 1] + leap:
        raise RecordError(f"timestamp {value!r} has day {day}")
    if hour > 23 or minute > 59 or second > 60:
        raise RecordError(f"timestamp {value!r} has a time of day out of range")
    second = min(second, 59)  # a leap second folds onto :59, as most stores do
    frac_ns = int((m[7] + "000000000")[:9]) if m[7] else 0
    offset = 0
    zone = m[8]
    if zone and zone not in ("Z", "z", "UTC"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    ns = seconds * _NS + frac_ns
    if ns < 0:
        raise RecordError(f"timestamp {value!r} is before 1970")
    if ns > _MAX_NS:
        raise RecordError(f"timestamp {value!r} is after 2262")
    return ns


_DAY_SECONDS: dict[str, int] = {}
_FAST_FRACTION = frozenset((20, *range(22, 31)))  # lengths of …SSZ and …SS.fZ to …SS.fffffffffZ


def _fast_utc(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.fraction]Z``, the form nearly every shipper sends, without the regex.

    Returns None for anything else (the general parser then decides).
    """
    n = len(text)
    if (n not in _FAST_FRACTION or text[-1] != "Z" or text[10] != "T" or text[13] != ":" or text[16] != ":"
            or not text.isascii()):
        return None
    day = _DAY_SECONDS.get(text[:10])
    if day is None:
        m = _RFC3339.fullmatch(text[:10])
        if m is None:
            return None
        year, month, dom = int(m[1]), int(m[2]), int(m[3])
        leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        if not (1 <= month <= 12 and 1 <= dom <= _DAYS_IN_MONTH[month - 1] + leap and year >= 1970):
            return None
        day = _days_from_civil(year, month, dom) * 86400
        if len(_DAY_SECONDS) > 4096:
            _DAY_SECONDS.clear()
        _DAY_SECONDS[text[:10]] = day
    clock = text[11:19]
    if not (clock[:2].isdigit() and clock[3:5].isdigit() and clock[6:8].isdigit()):
        return None
    hh, mm, ss = int(clock[:2]), int(clock[3:5]), int(clock[6:8])
    if hh > 23 or mm > 59 or ss > 59:
        return None
    frac = 0
    if n > 20:
        digits = text[20:-1]
        if text[19] != "." or not digits.isdigit():
            return None
        frac = int(digits) * _FRACTION_SCALE[len(digits)]
    ns = (day + hh * 3600 + mm * 60 + ss) * _NS + frac
    return ns if ns <= _MAX_NS else None


_FRACTION_SCALE = {k: 10 ** (9 - k) for k in range(1, 10)}


def _is_decimal(text: str) -> bool:
    whole, dot, frac = text.partition(".")
    return bool(dot) and whole.isdigit() and (frac.isdigit() or frac == "")


def format_timestamp(ns: int) -> str:
    """RFC 3339 in UTC with as many fraction digits as needed (µs, or ns when present)."""
    seconds, frac = divmod(ns, _NS)
    days, rem = divmod(seconds, 86400)
    y, mo, d = _civil_from_days(days)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    base = f"{y:04d}-{mo:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}"
    if frac % 1000:
        return f"{base}.{frac:09d}Z"
    return f"{base}.{frac // 1000:06d}Z"


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


# ---------------------------------------------------------------------------------------------
# levels

_LEVEL_ALIASES = {
    "trace": "TRACE", "trc": "TRACE", "verbose": "TRACE", "finest": "TRACE", "finer": "TRACE",
    "debug": "DEBUG", "dbg": "DEBUG", "fine": "DEBUG", "config": "DEBUG",
    "info": "INFO", "information": "INFO", "informational": "INFO", "inf": "INFO",
    "notice": "INFO", "log": "INFO",
    "warn": "WARN", "warning": "WARN", "wrn": "WARN",
    "error": "ERROR", "err": "ERROR", "eror": "ERROR", "severe": "ERROR", "exception": "ERROR",
    "fatal": "FATAL", "critical": "FATAL", "crit": "FATAL", "alert": "FATAL", "emerg": "FATAL",
    "emergency": "FATAL", "panic": "FATAL", "dpanic": "FATAL",
}
#: syslog severities 0..7 (RFC 5424 §6.2.1)
SYSLOG_SEVERITY_LEVEL = ("FATAL", "FATAL", "FATAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG")


def normalize_level(value: Any) -> str | None:
    """Map a level name or OTel severity number (1–24) to TRACE…FATAL; None if unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        n = int(value)
        if 1 <= n <= 24:
            return LEVELS[(n - 1) // 4]
        return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    upper = text.upper()
    if upper in _SEVERITY_NUMBER:
        return upper
    found = _LEVEL_ALIASES.get(text.lower())
    if found is None and text.isascii() and text.isdigit():
        return normalize_level(int(text))
    if found is None and text[:1].upper() in "TDIWEFC" and len(text) <= 12:
        # severity texts such as "ERROR2" or "INFO4" (OTel) fold to their stem
        stem = text.rstrip("0123456789").lower()
        found = _LEVEL_ALIASES.get(stem)
    return found


def severity_number(level: str) -> int:
    """The OTel severity number at the bottom of a level's range (INFO → 9)."""
    return _SEVERITY_NUMBER.get(level, 9)


# ---------------------------------------------------------------------------------------------
# trace ids

_HEX = frozenset("0123456789abcdefABCDEF")
_AMZN_ROOT = re.compile(r"(?:^|;)\s*Root=1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})(?:;|$)")
_AMZN_BARE = re.compile(r"1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-fA-F]{32})-([0-9a-fA-F]{16})-([0-9a-fA-F]{2})(?:-.*)?")


def normalize_trace_id(value: Any) -> str | None:
    """Normalize a trace id to 32 lowercase hex (W3C), or None when the value is not one.

    Accepts 32 hex, 16 hex (64-bit ids, left-padded as W3C allows), an ``X-Amzn-Trace-Id`` header
    (``Root=1-5759e988-bd86…``) or its bare Root, and a ``traceparent`` header. An all-zero id is
    invalid in W3C and gives None.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    n = len(text)
    if n == 32 and _HEX.issuperset(text):
        out = text.lower()
    elif n == 16 and _HEX.issuperset(text):
        out = "0" * 16 + text.lower()
    elif "Root=" in text:
        m = _AMZN_ROOT.search(text)
        if m is None:
            return None
        out = (m[1] + m[2]).lower()
    elif n == 35 and (m := _AMZN_BARE.fullmatch(text)):
        out = (m[1] + m[2]).lower()
    elif n >= 55 and (m := _TRACEPARENT.fullmatch(text)):
        out = m[2].lower()
    else:
        return None
    return None if out == "0" * 32 else out


def traceparent_span_id(value: Any) -> str | None:
    """The parent-id (span) of a ``traceparent`` header, or None."""
    if isinstance(value, str) and (m := _TRACEPARENT.fullmatch(value.strip())):
        return m[3].lower()
    return None


# ---------------------------------------------------------------------------------------------
# the record


def _alias_table() -> dict[str, tuple[str, int]]:
    """alias → (field, priority): one dict lookup per key of a record finds its field."""
    table: dict[str, tuple[str, int]] = {}
    groups = {
        "timestamp": _TIMESTAMP_KEYS, "message": _MESSAGE_KEYS, "level": _LEVEL_KEYS,
        "trace": _TRACE_KEYS, "span": _SPAN_KEYS, "request": _REQUEST_KEYS,
        "service": _SERVICE_KEYS, **_SIMPLE,
        "http": ("http",), "attributes": ("attributes",),
        "_derived": ("observed_timestamp",),  # set by us, never taken as given
        "otel_severity": ("severity_number",),  # change 6: OTel's number when no level key reads
    }
    for field, keys in groups.items():
        for priority, key in enumerate(keys):
            table.setdefault(key, (field, priority))
    for name in HTTP_FIELDS:
        table[f"http.{name}"] = ("http." + name, 0)
    return table


_ALIASES = _alias_table()
_ALIAS_KEYS = frozenset(_ALIASES)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return _dumps_big(value).decode()  # change 3: integers beyond 64 bits written as digits


_HTTP_MAX = {"status": 65535, "bytes_sent": 2**64 - 1, "duration_ms": 1.7976931348623157e308}


def _http_value(name: str, value: Any) -> Any:
    """Change 3: a number beyond its column (UInt16, UInt64, finite Float64) is the record's error."""
    out = _http_value_unbounded(name, value)
    if HTTP_FIELDS[name] is not str and out > _HTTP_MAX[name]:
        raise RecordError(f"http.{name} must be at most {_HTTP_MAX[name]!r}, got {value!r}")
    return out


_NUMERIC_TEXT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)


def _http_value_unbounded(name: str, value: Any) -> Any:
    kind = HTTP_FIELDS[name]
    if type(value) is kind and (kind is str or value >= 0):
        return value  # the common case: already the right type
    if kind is float and type(value) is int and 0 <= value <= 2**53:  # change 3: no OverflowError
        return float(value)
    if kind is str:
        return _as_text(value)
    if isinstance(value, bool):
        raise RecordError(f"http.{name} must be a number, got {value!r}")
    if isinstance(value, str) and not _NUMERIC_TEXT.fullmatch(value):
        # int() and float() also read "5_02", "٥٠٢" and "inf": those are not numbers in a log record
        raise RecordError(f"http.{name} must be a non-negative number, got {value!r}")
    try:
        if kind is int:
            out = int(value) if not isinstance(value, float) or value.is_integer() else None
            if out is None or out < 0:
                raise ValueError
            return out
        out_f = float(value)
        if out_f != out_f or out_f < 0:
            raise ValueError
        return out_f
    except (TypeError, ValueError, OverflowError):  # change 3: OverflowError (float of a huge int)
        raise RecordError(f"http.{name} must be a non-negative number, got {value!r}") from None


_CANONICAL_NAMES = frozenset(("timestamp", "observed_timestamp", "level", "severity_number", "service", "source",
                              "host", "instance", "env", "version", "message", "trace_id", "span_id",
                              "request_id", "tenant", "http", "attributes"))


def normalize(
    obj: Mapping[str, Any],
    *,
    received_ns: int | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn one decoded JSON object into a canonical record, or raise :class:`RecordError`.

    ``received_ns`` is used when the object has no timestamp (the receive time) and becomes
    ``observed_timestamp``; ``defaults`` fills canonical fields the object leaves empty (for
    example ``source`` or ``host`` known to the shipper). The input is not modified. When several
    aliases of one field are present, the canonical name wins, then the aliases in table order.
    """
    if not isinstance(obj, Mapping):
        raise RecordError(f"a record must be a JSON object, got {type(obj).__name__}")
    now = received_ns if received_ns is not None else time.time_ns()
    obj = _dialect_rewrite(_unnest8(_merge10(dict(obj))))  # change 6, change 8, change 10
    found: dict[str, Any] = {}
    rank: dict[str, int] = {}
    # the copy and the key intersection run in C; only the few alias keys are visited in Python
    attributes = dict(obj)
    chosen: dict[str, Any] = {}
    for key in obj.keys() & _ALIAS_KEYS:
        value = attributes.pop(key)
        if value is None or value == "":
            continue
        field, priority = _ALIASES[key]
        if field not in found or priority < rank[field]:
            found[field] = value
            rank[field] = priority
            chosen[field] = key
    # change 5: an alias key not used for its field (a later alias, a null or empty one) stays an
    # attribute as sent, unless it is a canonical name itself; appended field by field (fields in
    # the order their first key comes in the record), by alias priority within a field
    by_field: dict[str, list[Any]] = {}
    for key in obj:
        if key in _ALIAS_KEYS:
            by_field.setdefault(_ALIASES[key][0], []).append(key)
    for field, keys in by_field.items():
        for key in sorted(keys, key=lambda k: _ALIASES[k][1]):
            if chosen.get(field) != key and (key not in _CANONICAL_NAMES or key == "attributes"):  # change 11
                attributes[key] = obj[key]

    nested_attrs = found.pop("attributes", None)
    if nested_attrs is not None:
        if isinstance(nested_attrs, Mapping):
            attributes = _merge11(nested_attrs, attributes)  # change 11
        else:
            attributes["attributes"] = nested_attrs

    ts_value = found.get("timestamp")
    # change 6 (protobuf timestamp objects), change 7 (an alias that is not a time stays an attribute)
    timestamp = now if ts_value is None else _alias_time7(ts_value, chosen["timestamp"], attributes, now)
    record: dict[str, Any] = {"timestamp": timestamp, "observed_timestamp": now}

    message = found.get("message")
    record["message"] = "" if message is None else _as_text(message)
    for name in ("service", "source", "host", "instance", "env", "version", "tenant"):
        value = found.get(name)
        record[name] = None if value is None else _as_text(value)

    # trace / request ids: several header forms; keep the raw header when it carried more
    trace_raw = found.get("trace")
    request_raw = found.get("request")
    span_raw = found.get("span")
    trace_id = None
    span_id = _as_text(span_raw).lower() if span_raw is not None else None
    if trace_raw is not None:
        trace_id = normalize_trace_id(trace_raw)
        text = _as_text(trace_raw)
        if trace_id is None:
            # not a trace id we know: it still identifies the request
            if request_raw is None:
                request_raw = text
            else:
                _folded11(attributes, "trace_raw", text)  # change 11
        elif len(text) != 32:
            _folded11(attributes, "trace_header", text)  # change 11
            if span_id is None:
                span_id = traceparent_span_id(text)
    record["trace_id"] = trace_id
    record["span_id"] = span_id
    record["request_id"] = _as_text(request_raw) if request_raw is not None else None

    http: dict[str, Any] = {}
    nested = found.get("http")
    if nested is not None:
        if isinstance(nested, Mapping):
            for key, value in nested.items():
                if key not in HTTP_FIELDS:
                    name = f"http.{key}"  # change 5: a null one too
                    if name not in attributes:
                        attributes[name] = value
                    elif not _same11(attributes[name], value):  # change 11: the key sent keeps it
                        _aside11(attributes, name, value)
                elif value is not None:
                    http[key] = _http_value(key, value)
    if any(key.startswith("http.") for key in found):  # (fix on both sides, session 2)
        for name in HTTP_FIELDS:
            value = found.get("http." + name)
            if value is not None and name not in http:
                http[name] = _http_value(name, value)
            elif value is not None:
                attributes["http." + name] = value  # change 5: a flat key not used is kept
    if nested is not None and not isinstance(nested, Mapping):
        if http:  # change 11: the record's http object (from flat keys) has the name
            _aside11(attributes, "http", nested)
        else:
            attributes["http"] = nested
    record["http"] = http

    level_value = found.get("level")
    level = normalize_level6(level_value) if level_value is not None else None  # change 6
    if level is None:
        if level_value is not None:
            _folded11(attributes, "level_raw", level_value)  # change 11
        level = _otel6(found.get("otel_severity"))  # change 6
    if level is None:
        status = http.get("status")
        level = ("ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO") if status else "INFO"
    # change 11: the server's own names, in this order
    if found.get("_derived") is not None:
        _aside11(attributes, "observed_timestamp", found["_derived"])
    sent_number = found.get("otel_severity")
    if sent_number is not None and not _same11(sent_number, _SEVERITY_NUMBER[level]):
        _aside11(attributes, "severity_number", sent_number)
    if "pattern_id" in attributes:
        _aside11(attributes, "pattern_id", attributes.pop("pattern_id"))
    record["level"] = level
    record["severity_number"] = _SEVERITY_NUMBER[level]
    record["attributes"] = attributes

    if defaults:
        for key, value in defaults.items():
            if record.get(key) is None and key in STRING_FIELDS:
                record[key] = value
    if not record["service"]:
        record["service"] = "unknown"
    return record


def to_wire(record: Mapping[str, Any]) -> dict[str, Any]:
    """The flat NDJSON form of DESIGN §2: canonical fields, ``http`` object, attributes inline."""
    out: dict[str, Any] = {"timestamp": format_timestamp(record["timestamp"])}
    if record.get("observed_timestamp"):
        out["observed_timestamp"] = format_timestamp(record["observed_timestamp"])
    out["level"] = record["level"]
    for name in STRING_FIELDS:
        value = record.get(name)
        if value not in (None, ""):
            out[name] = value
    if record.get("http"):
        out["http"] = dict(record["http"])
    late = []
    for key, value in (record.get("attributes") or {}).items():
        if key in out or key == "pattern_id":  # change 11: never hidden by a field
            late.append((key, value))
        else:
            out[key] = value
    for key, value in late:
        if key not in out or not _same11(out[key], value):
            _aside11(out, key, value)
    return out


# ---------------------------------------------------------------------------------------------
# server/engine/store/rows.py at 17805cb: encode_row (pattern ids from logharbor.patterns, unchanged)

from logharbor.patterns import pattern_id as _pattern_id, pattern_key as _pattern_key, template_of as _template_of

_SIDS: dict = {}
_SIDS_MAX = 20_000


def _sid(tenant, service, message):
    key = (tenant, service, message)
    sid = _SIDS.get(key)
    if sid is None:
        sid = _pattern_id(_pattern_key(tenant, service), _template_of(message))
        if len(message) <= 512:
            if len(_SIDS) >= _SIDS_MAX:
                _SIDS.clear()
            _SIDS[key] = sid
    return sid


def _ts(ns):
    seconds, frac = divmod(ns, _NS)
    return f"{seconds:010d}.{frac:09d}"  # change 9: ten digits, or the engine reads a date


_HTTP_COLUMN = {name: "http_" + name for name in HTTP_FIELDS}


def encode_row(record, patterns=True):
    message = record.get("message")
    row = {"pattern_id": _sid(record.get("tenant"), record.get("service"), message)} \
        if patterns and message else {}
    row.update({
        "timestamp": _ts(record["timestamp"]),
        "observed_timestamp": _ts(record["observed_timestamp"]),
        "level": record["level"],
        "severity_number": record["severity_number"],
    })
    for name in STRING_FIELDS:
        value = record.get(name)
        if value is not None:
            row[name] = value
    for key, value in record["http"].items():
        row[_HTTP_COLUMN[key]] = value
    if record["attributes"]:
        _put_attributes(row, record["attributes"])  # change 4
    return _dumps_big(row)


# ---------------------------------------------------------------------------------------------
# Change 4 (fidelity, issue #20): the attributes column and the exact patch, written out plainly
# from the rules in server/engine/store/attributes.py (not imported: this is the reference).

import math
from fractions import Fraction


def _dumps_big(value, option=0):
    """orjson.dumps, with ints beyond 64 bits as raw digits (non-string keys as text)."""
    def fix(v):
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        if isinstance(v, int) and not isinstance(v, bool) and not (-2**63 <= v < 2**64):
            return orjson.Fragment(str(v).encode())
        return v
    return orjson.dumps(fix(value), option=option | orjson.OPT_NON_STR_KEYS)


def _key_as_text(key):
    if isinstance(key, str):
        return key
    try:
        return list(orjson.loads(orjson.dumps({key: 0}, option=orjson.OPT_NON_STR_KEYS)))[0]
    except TypeError:
        raise RecordError(f"a key of type {type(key).__name__} cannot be written as JSON") from None


def _keys_as_text(value):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            text = _key_as_text(k)
            if text in out:
                raise RecordError(f"two keys of one object are both {text!r} when written as JSON")
            out[text] = _keys_as_text(v)
        return out
    if isinstance(value, list):
        return [_keys_as_text(v) for v in value]
    return value


def _scalar_kept(v):
    if isinstance(v, bool) or isinstance(v, str):
        return True
    if isinstance(v, int):
        return -2**63 <= v <= 2**64 - 1
    if isinstance(v, float):
        return math.isfinite(v) and v != math.floor(v)
    return False


def _value_kept(v):
    """Whether the JSON column gives v back as it is (the list in store/attributes.py)."""
    if isinstance(v, dict):
        return len(v) > 0 and all("%" not in k and _value_kept(x) for k, x in v.items())
    if isinstance(v, list):
        leaf_kinds = set()
        saw_null = False
        stack = [v]
        while stack:
            level = stack.pop()
            kinds = {("list" if isinstance(x, list) else "dict" if isinstance(x, dict) else type(x).__name__)
                     for x in level if x is not None}
            nulls = any(x is None for x in level)
            saw_null = saw_null or nulls
            if len(kinds) > 1 or (nulls and kinds & {"list", "dict"}):
                return False
            for x in level:
                if isinstance(x, list):
                    stack.append(x)
                elif x is not None:
                    leaf_kinds.add("dict" if isinstance(x, dict) else type(x).__name__)
                    if isinstance(x, int) and not isinstance(x, bool) and abs(x) > 2**53:
                        return False
                    if not _value_kept(x):
                        return False
        if len(leaf_kinds) > 1:
            return False
        return not (saw_null and not leaf_kinds)
    return _scalar_kept(v)


def _has_percent(v):
    if isinstance(v, dict):
        return any("%" in k or _has_percent(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_has_percent(x) for x in v)
    return False


def _percent_keys(v):
    if isinstance(v, dict):
        return {k.replace("%", "%25"): _percent_keys(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_percent_keys(x) for x in v]
    return v


def _put_attributes(row, attributes):
    # change 7 (attrtext, issue #24): the column is the object's text as written; no patch, no
    # %25 keys (the engine stores the text byte for byte). Keys still become text, and two keys
    # alike as text are still the record's error.
    row["attributes"] = _keys_as_text(attributes)


def stamp_tenant(record, tenant):
    if tenant is not None:
        if record.get("tenant") is not None and record["tenant"] != tenant:  # change 11
            _aside11(record["attributes"], "tenant", record["tenant"])
        record["tenant"] = tenant
    return record


# ---------------------------------------------------------------------------------------------
# server/ingest/native.py at 17805cb: decode_ndjson, errors as (line, message) pairs


def decode_ndjson(body, *, received_ns, limits, defaults=None, tenant=None, patterns=True):
    rows = []
    errors = []
    max_line_bytes = limits.max_line_bytes
    for number, line in enumerate(body.split(b"\n"), start=1):
        if len(line) > max_line_bytes:
            errors.append((number, f"line is over the limit of {max_line_bytes} bytes"))
            continue
        line = line.strip()
        if not line:
            continue
        try:
            obj = _loads_exact(line) if _may_lose(line) else orjson.loads(line)  # change 4
        except (orjson.JSONDecodeError, ValueError) as exc:
            errors.append((number, f"invalid JSON: {exc}"))
            continue
        if not isinstance(obj, dict):
            errors.append((number, f"a record must be a JSON object, got {type(obj).__name__}"))
            continue
        problem = limits.check(obj, len(line))
        if problem is not None:
            errors.append((number, problem))
            continue
        try:
            record = normalize(obj, received_ns=received_ns, defaults=defaults)
            rows.append(encode_row(stamp_tenant(record, tenant), patterns))
        except RecordError as exc:
            errors.append((number, str(exc)))
        except (TypeError, orjson.JSONEncodeError) as exc:
            errors.append((number, f"record cannot be stored: {exc}"))
    return rows, errors


_DIGIT_RUN = re.compile(rb"(?<![0-9])[0-9]{19,}(?![0-9])")


def _may_lose(line):
    """Change 4: a digit run that could be an integer token outside [-2**63, 2**64)."""
    for m in _DIGIT_RUN.finditer(line):
        before = line[m.start() - 1:m.start()]
        after = line[m.end():m.end() + 1]
        if before == b"." or after in (b".", b"e", b"E"):
            continue
        digits = m.group()
        if len(digits) > 20:
            return True
        if before == b"-" and int(digits) > 2**63 or before != b"-" and int(digits) > 2**64 - 1:
            return True
    return False


class _Refused(ValueError):
    pass


def _loads_exact(line):
    import json

    def parse_int(text):
        if len(text) > 4300 + (text[0] == "-"):
            raise _Refused(f"an integer of {len(text)} digits is over the limit of 4300")
        return int(text)

    def parse_float(text):
        value = float(text)
        if not math.isfinite(value):
            raise _Refused(f"number {text[:40]} is infinity when read as a double")
        return value

    def parse_constant(name):
        raise _Refused(f"{name} is not JSON")

    try:
        return json.loads(line, parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant)
    except _Refused:
        raise
    except (ValueError, RecursionError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


# ---------------------------------------------------------------------------------------------
# Change 6 (dialects, issue #22), written out plainly from docs/record.md "Logger dialects".


def normalize_level6(value):
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        if math.isnan(value) or math.isinf(value) or value < 10:
            return None
        for bottom, name in ((60, "FATAL"), (50, "ERROR"), (40, "WARN"), (30, "INFO"), (20, "DEBUG")):
            if value >= bottom:
                return name
        return "TRACE"
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower() == "silly":
        return "TRACE"
    if text.lower() == "http":
        return "INFO"
    if text.isascii() and text.isdigit():
        return normalize_level6(int(text))
    found = normalize_level(text)  # names as before (numbers never reach it)
    if found is None and len(text) <= 12:
        m = re.fullmatch(r"(DEBUG|INFO|WARN|ERROR)([+-][0-9]{1,3})", text.upper())
        if m:
            n = {"DEBUG": -4, "INFO": 0, "WARN": 4, "ERROR": 8}[m[1]] + int(m[2])
            if n < -4:
                return "TRACE"
            if n < 0:
                return "DEBUG"
            if n < 4:
                return "INFO"
            if n < 8:
                return "WARN"
            return "ERROR"
    return found


def _otel6(value):
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 4:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 24:
        return None
    return LEVELS[(value - 1) // 4]


def _alias_time7(value, key, attributes, now):
    """change 7: under ``time``, ``ts``, ``date`` … (not ``timestamp``/``@timestamp``) a value that is
    not a time, or an epoch number before 2000, stays an attribute and the record gets ``now``."""
    if key in ("timestamp", "@timestamp"):
        return parse_timestamp6(value)
    try:
        ns = parse_timestamp6(value)
    except RecordError:
        ns = None
    text = value.strip() if isinstance(value, str) else None
    epoch_text = text is not None and text.isascii() and text[:1].isdigit() and \
        all(c.isdigit() or c == "." for c in text) and text.count(".") <= 1
    if ns is not None and (ns >= 946_684_800 * _NS or (text is not None and not epoch_text)):
        return ns
    attributes[key] = value
    return now


def parse_timestamp6(value):
    if isinstance(value, Mapping):
        seconds, nanos = value.get("seconds"), value.get("nanos", 0)
        text = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        if set(value) - {"seconds", "nanos"} or seconds is None:
            raise RecordError(f"timestamp object {text} is not {{seconds, nanos}}")
        if isinstance(seconds, str) and seconds.isascii() and seconds.isdigit():
            seconds = int(seconds)
        if type(seconds) is not int or type(nanos) is not int or seconds < 0 or not 0 <= nanos < _NS:
            raise RecordError(f"timestamp object {text} needs whole seconds >= 0 and nanos in 0..999999999")
        if seconds * _NS + nanos > _MAX_NS:
            raise RecordError(f"timestamp object {text} is after 2262")
        return seconds * _NS + nanos
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return _exact_epoch12(repr(value), value)
    if isinstance(value, str) and re.fullmatch(r"[0-9]{12,}\.[0-9]+", value.strip()):
        return _exact_epoch12(value.strip(), value)
    return parse_timestamp(value)


def _exact_epoch12(text, value):
    """change 12: an epoch float is the decimal its shortest repr writes (what the sender wrote),
    scaled exactly (a Fraction), half to even: 1764064800.125 is .125000000, not .124999936."""
    q = Fraction(text)
    unit = 10**9 if q < 10**11 else 10**6 if q < 10**14 else 10**3 if q < 10**17 else 1
    ns = round(q * unit)
    if ns > _MAX_NS:
        raise RecordError(f"timestamp {value!r} is after 2262")
    return ns


def _usable(v):
    return v is not None and v != ""


def _rename6(obj, pairs):
    """Each (key, name) in order: renamed when the key has a usable value and the name is free."""
    out = dict(obj)
    mapping = {}
    names = set(obj)
    for key, name in pairs:
        if key in obj and key not in mapping and name not in names and _usable(obj[key]):
            mapping[key] = name
            names.add(name)
    return {mapping.get(k, k): v for k, v in out.items()}


def _error6(obj, stack_key, type_key=None, message_key=None):
    parts = {}
    for part, key in (("type", type_key), ("message", message_key), ("stack", stack_key)):
        if key is not None and isinstance(obj.get(key), str) and obj[key] != "":
            parts[part] = key
    if "stack" not in parts:
        return obj
    if "error" not in obj:
        out = {k: v for k, v in obj.items() if k not in parts.values()}
        out["error"] = {part: obj[key] for part, key in parts.items()}
        return out
    rename = {key: "error." + part for part, key in parts.items() if "error." + part not in obj}
    return {rename.get(k, k): v for k, v in obj.items()}


def _has_time6(obj):
    return any(_usable(obj.get(k)) for k in _TIMESTAMP_KEYS)


def _render6(template, props, renderings):
    import orjson as _orjson
    rendered = list(renderings or [])
    out = []
    i = 0
    pos = 0
    for m in re.finditer(r"\{\{|\}\}|\{([@$]?)([A-Za-z0-9_.]+)(?:,(-?\d+))?(?::([^{}]*))?\}", template):
        out.append(template[pos:m.start()])
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            out.append(token[0])
            continue
        name, align, fmt = m[2], m[3], m[4]
        if name not in props:
            out.append(token)
            continue
        value = props[name]
        pre = None
        if fmt is not None:
            pre = rendered[i] if i < len(rendered) else None
            i += 1
        if pre is not None:
            text = str(pre)
        elif isinstance(value, str):
            text = value if fmt == "l" else '"' + value + '"'
        elif value is True:
            text = "True"
        elif value is False:
            text = "False"
        elif value is None:
            text = "null"
        elif isinstance(value, (int, float)):
            text = str(value)
        else:
            text = _orjson.dumps(value).decode()
        if align:
            width = int(align)
            text = text.ljust(-width) if width < 0 else text.rjust(width)
        out.append(text)
    out.append(template[pos:])
    return "".join(out)


def _merge10(obj):
    """change 10: an ``attributes`` object is read as the record's own keys before folding (a
    top-level key of the same name wins; change 11: the nested value is kept aside)."""
    if type(obj.get("attributes")) is not dict:
        return obj
    nested = obj["attributes"]
    rest = {k: v for k, v in obj.items() if k != "attributes"}
    return _merge11(nested, rest)


# ---------------------------------------------------------------------------------------------
# Change 11 (two values for one name), written out plainly from docs/record.md.


def _typed11(v):
    """A value as a tree that tells JSON types apart (1, 1.0 and true differ; -0.0 is not 0.0)."""
    if isinstance(v, dict):
        return ("object", tuple((type(k).__name__, k, _typed11(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_typed11(x) for x in v))
    if isinstance(v, float):
        return ("float", repr(v))
    return (type(v).__name__, repr(v))


def _same11(a, b):
    return _typed11(a) == _typed11(b)


def _aside11(target, name, value):
    """The value that lost ``name``: under name_attribute, name_attribute2, … (the first free or
    holding this very value)."""
    n = 1
    while True:
        kept = f"{name}_attribute" + ("" if n == 1 else str(n))
        if kept not in target or _same11(target[kept], value):
            target[kept] = value
            return
        n += 1


def _folded11(attributes, name, value):
    """A name the folding sets (level_raw, trace_raw, trace_header): a value sent under it moves aside."""
    if name in attributes and not _same11(attributes[name], value):
        sent = attributes[name]
        attributes[name] = value
        _aside11(attributes, name, sent)
    else:
        attributes[name] = value


def _merge11(nested, rest):
    out = {**nested, **rest}
    for key in nested:
        if key in rest and not _same11(nested[key], rest[key]):
            _aside11(out, key, nested[key])
    return out


def _unnest8(obj):
    """change 8: a non-empty object under service, host, trace, span, log or deployment is its
    members as dotted keys, where they were; unless a dotted key it makes is there already."""
    names = ("service", "host", "trace", "span", "log", "deployment")
    made = []
    for key, value in obj.items():
        if key in names and type(value) is dict and value:
            made += [key + "." + sub for sub in value]
    if not made or len(set(made)) != len(made) or any(k in obj for k in made):
        return obj
    out = {}
    for key, value in obj.items():
        if key in names and type(value) is dict and value:
            for sub, item in value.items():
                out[key + "." + sub] = item
        else:
            out[key] = value
    return out


def _dialect_rewrite(obj):
    keys = [k for k in obj]
    has = lambda k: k in keys  # noqa: E731
    if has("@t") and (has("@mt") or has("@m") or has("@l")):
        out = _rename6(obj, (("@t", "timestamp"), ("@m", "message"), ("@l", "level"), ("@tr", "trace_id"),
                             ("TraceId", "trace_id"), ("@sp", "span_id"), ("SpanId", "span_id"),
                             ("RequestId", "request_id"), ("Application", "service"), ("MachineName", "host")))
        if "message" not in out and isinstance(out.get("@mt"), str):
            r = out.get("@r")
            out["message"] = _render6(out["@mt"], out, r if isinstance(r, list) else None)
        at = [k for k in out if isinstance(k, str) and k.startswith("@@")]
        if at:
            out = _rename6(out, tuple((k, k[1:]) for k in at))
        return _error6(out, "@x")
    if has("httpRequest") or has("serviceContext") or has("timestampSeconds") or any(
            isinstance(k, str) and k.startswith("logging.googleapis.com/") for k in keys):
        out = _rename6(obj, (("logging.googleapis.com/spanId", "span_id"),))
        trace = out.get("logging.googleapis.com/trace")
        if "trace_id" not in out and isinstance(trace, str):
            m = re.fullmatch(r"projects/[^/]+/traces/([0-9a-fA-F]{32})", trace)
            if m:
                out["trace_id"] = m[1]
        sec = out.get("timestampSeconds")
        nanos = out.get("timestampNanos", 0)
        if (not _has_time6(out) and type(sec) is int and sec >= 0 and type(nanos) is int
                and 0 <= nanos < 10**9):
            out = {k: v for k, v in out.items() if k not in ("timestampSeconds", "timestampNanos")}
            out["timestamp"] = {"seconds": sec, "nanos": nanos}
        req = out.get("httpRequest")
        if isinstance(req, dict) and "http" not in out:
            http = {}
            rest = dict(req)
            for key, name in (("requestMethod", "method"), ("status", "status"), ("remoteIp", "client_ip"),
                              ("userAgent", "user_agent"), ("referer", "referer"), ("responseSize", "bytes_sent")):
                v = rest.get(key)
                if not _usable(v):
                    continue
                if name in ("status", "bytes_sent"):
                    n = int(v) if isinstance(v, str) and v.isascii() and v.isdigit() and len(v) < 21 else v
                    top = 65535 if name == "status" else 2**64 - 1
                    if type(n) is not int or not 0 <= n <= top:
                        continue
                http[name] = rest.pop(key)
            url = rest.get("requestUrl")
            if isinstance(url, str) and url:
                from urllib.parse import urlsplit
                parts = urlsplit(url)
                if parts.scheme:
                    http["path"] = (parts.path or "/") + ("?" + parts.query if parts.query else "")
                else:
                    http["path"] = url
                    del rest["requestUrl"]
            lat = rest.get("latency")
            if isinstance(lat, str) and re.fullmatch(r"\d+(\.\d+)?s", lat):
                http["duration_ms"] = float(lat[:-1]) * 1000
                del rest["latency"]
            if http:
                out["http"] = http
                if rest:
                    out["httpRequest"] = rest
                else:
                    del out["httpRequest"]
        ctx = out.get("serviceContext")
        if isinstance(ctx, dict):
            rest = dict(ctx)
            for key in ("service", "version"):
                if key not in out and isinstance(rest.get(key), str) and rest[key]:
                    out[key] = rest.pop(key)
            if rest != ctx:
                if rest:
                    out["serviceContext"] = rest
                else:
                    del out["serviceContext"]
        return _error6(out, "stack_trace")
    if has("levelname"):
        out = _rename6(obj, (("otelTraceID", "trace_id"), ("otelSpanID", "span_id"), ("otelServiceName", "service")))
        if not _has_time6(out):
            created, asctime = out.get("created"), out.get("asctime")
            if isinstance(created, (int, float)) and not isinstance(created, bool) and created >= 0:
                out = {("timestamp" if k == "created" else k): v for k, v in out.items()}
            elif isinstance(asctime, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}", asctime):
                stamp = asctime[:10] + "T" + asctime[11:19] + "." + asctime[20:] + "Z"
                out = {("timestamp" if k == "asctime" else k): (stamp if k == "asctime" else v)
                       for k, v in out.items()}
        return _error6(out, "exc_info")
    if has("MESSAGE") and (has("PROGRAM") or has("PRIORITY") or has("FACILITY")):
        pairs = [("MESSAGE", "message"), ("PROGRAM", "service"), ("SYSLOG_IDENTIFIER", "service"),
                 ("HOST", "host"), ("_HOSTNAME", "host"),
                 ("ISODATE", "timestamp"), ("PRIORITY", "level"), ("LEVEL", "level")]
        if _has_time6(obj):
            pairs.remove(("ISODATE", "timestamp"))
        out = _rename6(obj, tuple(pairs))
        # journald's export: __REALTIME_TIMESTAMP (µs digits) is the time when nothing else is
        rt = out.get("__REALTIME_TIMESTAMP")
        if isinstance(rt, str) and re.fullmatch(r"[0-9]+", rt) and not _has_time6(out):
            out = {("timestamp" if k == "__REALTIME_TIMESTAMP" else k): v for k, v in out.items()}
        names = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
        lv = out.get("level")
        if "level" not in obj:
            if isinstance(lv, str) and lv.isdigit() and int(lv) < 8:
                out["level"] = names[int(lv)]
            elif type(lv) is int and 0 <= lv < 8:
                out["level"] = names[lv]
        return out
    if has("level_value") and (has("logger_name") or has("@version")):
        out = _rename6(obj, (("HOSTNAME", "host"), ("app_name", "service"), ("appName", "service"),
                             ("application", "service"), ("springAppName", "service"),
                             ("spring.application.name", "service"), ("X-B3-TraceId", "trace_id"),
                             ("X-B3-SpanId", "span_id")))
        return _error6(out, "stack_trace")
    if has("ecs.version") or has("ecs"):
        err = obj.get("error")
        if isinstance(err, dict) and isinstance(err.get("stack_trace"), str) and "stack" not in err:
            out = dict(obj)
            out["error"] = {("stack" if k == "stack_trace" else k): v for k, v in err.items()}
            return out
        if isinstance(obj.get("error.stack_trace"), str) and "error.stack" not in obj:
            return {("error.stack" if k == "error.stack_trace" else k): v for k, v in obj.items()}
        return obj
    if has("pid") and has("hostname") and has("msg") and has("level"):
        out = _rename6(obj, (("name", "service"), ("reqId", "request_id")))
        if isinstance(out.get("err"), dict) and out["err"] and "error" not in out:
            out = {("error" if k == "err" else k): v for k, v in out.items()}
        return out
    if has("stacktrace") and (has("ts") or has("caller")):
        return _error6(obj, "stacktrace")
    if has("source") and has("msg") and has("time") and has("level"):
        if isinstance(obj.get("source"), dict) and "source_location" not in obj:
            return {("source_location" if k == "source" else k): v for k, v in obj.items()}
        return obj
    if has("text") and has("record") and isinstance(obj["record"], dict):
        # loguru serialize=True: copy record.message / level.name / time.timestamp / exception out
        rec, out = obj["record"], dict(obj)
        if "message" not in out and isinstance(rec.get("message"), str) and rec["message"] != "":
            out["message"] = rec["message"]
        lv = rec["level"].get("name") if isinstance(rec.get("level"), dict) else None
        if "level" not in out and isinstance(lv, str) and lv != "":
            out["level"] = lv
        ts = rec["time"].get("timestamp") if isinstance(rec.get("time"), dict) else None
        if isinstance(ts, (int, float)) and not isinstance(ts, bool) and ts >= 0 and not _has_time6(out):
            out["timestamp"] = ts
        exc = rec.get("exception")
        if isinstance(exc, dict) and "error" not in out:
            err = {}
            if isinstance(exc.get("type"), str) and exc["type"] != "":
                err["type"] = exc["type"]
            if isinstance(exc.get("value"), str) and exc["value"] != "":
                err["message"] = exc["value"]
            if err:
                out["error"] = err
        return out
    if has("short_message") and has("version"):
        # GELF: level is a syslog severity
        lv = obj.get("level")
        if isinstance(lv, int) and not isinstance(lv, bool) and lv in range(8):
            out = dict(obj)
            out["level"] = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")[lv]
            return out
    if has("loggerFqcn") or (has("loggerName") and (has("instant") or has("thrown"))):
        # change 13, log4j2 JsonLayout: instant {epochSecond, nanoOfSecond} is the time, thrown the error,
        # a source object (locationInfo) the code location
        out = dict(obj)
        if isinstance(out.get("source"), dict) and "source_location" not in out:
            out = {("source_location" if k == "source" else k): v for k, v in out.items()}
        inst = out.get("instant")
        if isinstance(inst, dict) and not _has_time6(out) and set(inst) <= {"epochSecond", "nanoOfSecond"}:
            sec, nano = inst.get("epochSecond"), inst.get("nanoOfSecond", 0)
            if type(sec) is int and type(nano) is int and 0 <= sec <= 9_223_372_035 and 0 <= nano < 10**9:
                out = {("timestamp" if k == "instant" else k): v for k, v in out.items()}
                out["timestamp"] = {"seconds": sec, "nanos": nano}
        thr = out.get("thrown")
        if isinstance(thr, dict) and thr and "error" not in out:
            err = {}
            for k, v in thr.items():
                if k == "name":
                    k = "type"
                elif k == "extendedStackTrace" and isinstance(v, str):
                    k = "stack"
                err[k] = v
            if len(err) == len(thr):
                out = {("error" if k == "thrown" else k): (err if k == "thrown" else v) for k, v in out.items()}
        return out
    if has("LogLevel") and (has("Category") or has("EventId")):
        # change 13, .NET JsonConsoleFormatter: Message, LogLevel, Timestamp (a lenient time), Exception
        out = dict(obj)
        for key, name in (("Message", "message"), ("LogLevel", "level"), ("Timestamp", "time")):
            if key in out and name not in out and out[key] is not None and out[key] != "":
                out = {(name if k == key else k): v for k, v in out.items()}
        exc = out.get("Exception")
        if isinstance(exc, str) and exc != "":
            if "error" not in out:
                out = {k: v for k, v in out.items() if k != "Exception"}
                out["error"] = {"stack": exc}
            elif "error.stack" not in out:
                out = {("error.stack" if k == "Exception" else k): v for k, v in out.items()}
        return out
    if has("fields") and has("target"):
        # change 13, rust tracing JSON: fields.message is the message
        f = obj.get("fields")
        if isinstance(f, dict) and "message" not in obj and isinstance(f.get("message"), str) and f["message"] != "":
            out = {}
            for k, v in obj.items():
                if k != "fields":
                    out[k] = v
                    continue
                out["message"] = f["message"]
                rest = {a: b for a, b in f.items() if a != "message"}
                if rest:
                    out["fields"] = rest
            return out
        return obj
    if has("resp_headers") or (has("request") and has("duration") and has("logger")):
        # change 13, caddy access log: request.{method, uri, client_ip|remote_ip, headers.User-Agent[0]},
        # status, size and duration (seconds) into http
        req = obj.get("request")
        if not isinstance(req, dict) or "http" in obj:
            return obj
        h, gone = {}, set()
        for name, v in (("method", req.get("method")), ("path", req.get("uri")),
                        ("client_ip", req.get("client_ip") or req.get("remote_ip"))):
            if isinstance(v, str) and v != "":
                h[name] = v
        hdrs = req.get("headers")
        ua = hdrs.get("User-Agent") if isinstance(hdrs, dict) else None
        if isinstance(ua, list) and ua and isinstance(ua[0], str):
            h["user_agent"] = ua[0]
        st, size, dur = obj.get("status"), obj.get("size"), obj.get("duration")
        if isinstance(st, str) and st.isascii() and st.isdigit() and len(st) < 21:
            st = int(st)
        if type(st) is int and 0 <= st <= 65535:
            h["status"], _ = obj["status"], gone.add("status")
        if isinstance(size, str) and size.isascii() and size.isdigit() and len(size) < 21:
            size = int(size)
        if type(size) is int and 0 <= size < 2**64:
            h["bytes_sent"], _ = obj["size"], gone.add("size")
        if type(dur) in (int, float) and math.isfinite(dur) and dur >= 0:
            h["duration_ms"], _ = float(Fraction(repr(dur)) * 1000), gone.add("duration")
        if not h:
            return obj
        out = {k: v for k, v in obj.items() if k not in gone}
        out["http"] = h
        return out
    if has("DownstreamStatus"):
        # change 13, traefik access log
        if "http" in obj:
            return obj
        h, gone = {}, set()
        for key, name in (("RequestMethod", "method"), ("RequestPath", "path"), ("DownstreamStatus", "status"),
                          ("ClientHost", "client_ip"), ("DownstreamContentSize", "bytes_sent"),
                          ("request_User-Agent", "user_agent"), ("request_Referer", "referer")):
            v = obj.get(key)
            if name in ("status", "bytes_sent"):
                n = int(v) if isinstance(v, str) and v.isascii() and v.isdigit() and len(v) < 21 else v
                ok = type(n) is int and 0 <= n <= (65535 if name == "status" else 2**64 - 1)
            else:
                ok = isinstance(v, str) and v != ""
            if ok:
                h[name] = v
                gone.add(key)
        d = obj.get("Duration")
        if type(d) is int and d >= 0:
            h["duration_ms"] = float(Fraction(d, 10**6))
            gone.add("Duration")
        if not h:
            return obj
        out = {k: v for k, v in obj.items() if k not in gone}
        out["http"] = h
        if not out.get("message") and not out.get("msg") and "method" in h and "path" in h:
            out = {k: v for k, v in out.items() if k != "msg"}
            out["message"] = h["method"] + " " + h["path"]
        return out
    return obj
