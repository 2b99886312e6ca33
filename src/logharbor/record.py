"""The canonical log record (DESIGN §2): every path into logharbor ends as one of these.

A normalized record is a plain ``dict`` so it is cheap to build, copy and serialize:

- canonical scalar fields at the top level (``timestamp`` as integer nanoseconds since the epoch,
  ``level`` one of :data:`LEVELS`, ``service``, ``message``, ``trace_id`` …),
- ``http``: a dict of the typed HTTP fields (:data:`HTTP_FIELDS`),
- ``attributes``: every other key, keeping its JSON type.

:func:`normalize` folds aliases and normalizes values; :func:`to_wire` turns a record back into
the flat NDJSON shape shown in DESIGN §2. The helpers (:func:`parse_timestamp`,
:func:`normalize_level`, :func:`normalize_trace_id`) are shared by the parsers, the sdk and the
ingest protocols, so a value means the same thing whichever way it came in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from logharbor import exactjson
from logharbor.dialects import Rewrite, dialect_of
from logharbor.types import Attributes, HttpFields, RawRecord, Record, WireRecord

__all__ = [
    "CANONICAL_FIELDS",
    "HTTP_FIELDS",
    "LEVELS",
    "TIMESTAMP_KEYS",
    "RecordError",
    "format_timestamp",
    "keep_aside",
    "level_of",
    "normalize",
    "normalize_level",
    "normalize_trace_id",
    "otel_level",
    "parse_timestamp",
    "same_value",
    "severity_number",
    "stamp_tenant",
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
#: the largest value each numeric HTTP field's column holds (UInt16, UInt64, a finite Float64):
#: a value beyond it would be wrapped or turned into null by the engine, so it is the record's error
HTTP_MAX: dict[str, int | float] = {"status": 65535, "bytes_sent": 2**64 - 1,
                                    "duration_ms": 1.7976931348623157e308}
CANONICAL_FIELDS = (
    "timestamp", "observed_timestamp", "level", "severity_number", *STRING_FIELDS, "http",
)
#: names that are canonical fields themselves (or the attributes object): a null or empty value
#: under one is the field left out, and one not used is dropped (it cannot be an attribute too)
CANONICAL_NAMES = frozenset((*CANONICAL_FIELDS, "attributes"))
#: canonical names whose null or "" is the field left out (``attributes`` is not a field: a null
#: there is kept as the attribute ``attributes``, as any other value that is not an object)
_ABSENT_WHEN_EMPTY = CANONICAL_NAMES - {"attributes"}
#: names that are the record's own but never taken from what was sent (the receive time, the
#: severity number of the stored level, the template id of the stored row): a value sent under
#: one is kept aside under :data:`KEPT_SUFFIX`, never dropped and never shown as the record's
_SERVER_NAMES = frozenset(("observed_timestamp", "severity_number", "pattern_id"))
#: what a value that lost its name to another gets appended to its name, then 2, 3 … (the same
#: rule as OTLP attributes, ``ingest/otlp.py``; Loki's are ``_label`` / ``_metadata``)
KEPT_SUFFIX = "_attribute"


def same_value(a: Any, b: Any) -> bool:
    """Whether two sent values are one value (kept once): equal with the same JSON types all the
    way down, so ``1``, ``1.0`` and ``true``, or ``0.0`` and ``-0.0``, are different values."""
    return a is b or (type(a) is type(b) and repr(a) == repr(b))  # repr: 1 ≠ True ≠ 1.0, nan = nan


def keep_aside(target: dict[Any, Any], name: Any, value: Any) -> Any:
    """Store ``value``, which lost ``name`` to another value, under ``<name>_attribute`` (or
    ``_attribute2``, ``_attribute3`` … when that name holds another value) and return the name.

    This is how no sent value is ever dropped or hidden by another one of the same name (the
    trust rule, docs/record.md "Two values for one name"): the loser lands under a documented,
    queryable name. A name already holding this very value is reused (equal values kept once).
    """
    base = f"{name}{KEPT_SUFFIX}"
    kept, n = base, 2
    while kept in target and not same_value(target[kept], value):
        kept, n = f"{base}{n}", n + 1
    target[kept] = value
    return kept


def _claim(attributes: Attributes, name: str, value: Any) -> None:
    """Set a name the folding owns (``level_raw``, ``trace_raw``, ``trace_header``): a value sent
    under it is kept aside, not replaced."""
    old = attributes.get(name, value)
    attributes[name] = value
    if not same_value(old, value):
        keep_aside(attributes, name, old)


def _add(attributes: Attributes, name: Any, value: Any) -> None:
    """Add an attribute the folding made (an ``http`` object's member as ``http.<key>``): a key
    sent under that very name keeps it, and the made one is kept aside."""
    if name not in attributes:
        attributes[name] = value
    elif not same_value(attributes[name], value):
        keep_aside(attributes, name, value)

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
    re.ASCII,  # \d is 0-9 only: "²" or "٣" in a time is an error of that record, not a crash
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
    if isinstance(value, float):
        # the shortest decimal that reads back as this float is the text the sender wrote (up to
        # 17 significant digits): scaled as decimal, 1796000000.123 is .123000000, where the
        # binary product gave .122999808 (shown at ms, a different millisecond)
        return _decimal_epoch_ns(repr(value), value)
    if value < 1e11:  # seconds: until year 5138
        ns = value * _NS
    elif value < 1e14:  # milliseconds
        ns = value * 1_000_000
    elif value < 1e17:  # microseconds
        ns = value * 1_000
    else:
        ns = value
    if ns > _MAX_NS:
        raise RecordError(f"timestamp {value!r} is after 2262")
    return int(ns)


def _decimal_epoch_ns(text: str, value: Any) -> int:
    """An epoch number's decimal text (``1796000000.123``, ``1.796e+18``) in nanoseconds, exactly:
    its unit told by magnitude as for integers, the scaling done in decimal, half to even."""
    number = Decimal(text)
    if number < 100_000_000_000:  # seconds
        scaled = number.scaleb(9)
    elif number < 100_000_000_000_000:  # milliseconds
        scaled = number.scaleb(6)
    elif number < 100_000_000_000_000_000:  # microseconds
        scaled = number.scaleb(3)
    else:
        scaled = number
    ns = int(scaled.to_integral_value(ROUND_HALF_EVEN))
    if ns > _MAX_NS:
        raise RecordError(f"timestamp {value!r} is after 2262")
    return ns


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
    if isinstance(value, Mapping):
        return _seconds_nanos(value)
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
            return _decimal_epoch_ns(text, value)  # ms/µs with a fraction: every digit as sent
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


#: keys that say "this is the record's time": a value there that is not one refuses the record
#: (as Elasticsearch refuses a document whose ``@timestamp`` does not parse)
_STRICT_TIME_KEYS = frozenset(("timestamp", "@timestamp"))
_YEAR_2000_NS = 946_684_800 * _NS


def _record_time(value: Any, alias_keys: tuple[Any, ...], fields: tuple[str, ...], values: list[Any],
                 attributes: Attributes, now: int) -> int:
    """The record's time from the alias that gave ``value``.

    ``time``, ``ts``, ``date`` … are common names for other things too (a time of day, a duration,
    a counter): under those keys a value is the record's time only when it reads as a time and, for
    an epoch number, lands in this century (``"time": 0.25`` is not 1970). Otherwise the key stays
    an attribute as sent and the record gets the receive time: never refused, never moved to 1970.
    """
    key = next(k for k, f, v in zip(alias_keys, fields, values, strict=True)
               if f == "timestamp" and v is not None and v != "")
    if key in _STRICT_TIME_KEYS:
        return parse_timestamp(value)
    try:
        ns = parse_timestamp(value)
    except RecordError:
        ns = None
    if ns is not None and (ns >= _YEAR_2000_NS or (type(value) is str and not _is_epoch_text(value))):
        return ns
    attributes[key] = value
    return now


def _is_epoch_text(text: str) -> bool:
    stripped = text.strip()
    return stripped.isascii() and stripped[:1].isdigit() and (stripped.isdigit() or _is_decimal(stripped))


def _seconds_nanos(value: Mapping[Any, Any]) -> int:
    """A protobuf ``Timestamp`` as JSON objects carry it (Google Cloud's structured logging):
    ``{"seconds": 1700000000, "nanos": 5}``, seconds as an integer or its digits."""
    seconds = value.get("seconds")
    nanos = value.get("nanos", 0)
    if set(value) - {"seconds", "nanos"} or seconds is None:
        raise RecordError(f"timestamp object {_short(value)} is not {{seconds, nanos}}")
    if type(seconds) is str and seconds.isascii() and seconds.isdigit():
        seconds = int(seconds)
    if type(seconds) is not int or type(nanos) is not int or seconds < 0 or not 0 <= nanos < _NS:
        raise RecordError(f"timestamp object {_short(value)} needs whole seconds >= 0 and nanos "
                          "in 0..999999999")
    ns = seconds * _NS + nanos
    if ns > _MAX_NS:
        raise RecordError(f"timestamp object {_short(value)} is after 2262")
    return ns


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_DAY_SECONDS: dict[str, int] = {}
_MINUTE_SECONDS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM" (checked) → its seconds since the epoch
_FAST_FRACTION = frozenset((20, *range(22, 31)))  # lengths of …SSZ and …SS.fZ to …SS.fffffffffZ


def _fast_utc(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.fraction]Z``, the form nearly every shipper sends, without the regex.

    Returns None for anything else (the general parser then decides). The date, hour and minute
    of the timestamps of one stream repeat, so they are looked up, checked once.
    """
    n = len(text)
    if n not in _FAST_FRACTION or text[-1] != "Z" or text[16] != ":" or not text.isascii():
        return None
    minute = _MINUTE_SECONDS.get(text[:16])
    if minute is None:
        return _fast_utc_first(text, n)
    sec = text[17:19]
    if not sec.isdigit():
        return None
    ss = int(sec)
    if ss > 59:
        return None
    frac = 0
    if n > 20:
        digits = text[20:-1]
        if text[19] != "." or not digits.isdigit():
            return None
        frac = int(digits) * _FRACTION_SCALE[len(digits)]
    ns = (minute + ss) * _NS + frac
    return ns if ns <= _MAX_NS else None


def _fast_utc_first(text: str, n: int) -> int | None:
    """:func:`_fast_utc` for a minute not seen yet: every check, then the minute is remembered."""
    if text[10] != "T" or text[13] != ":":
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
    if len(_MINUTE_SECONDS) > 4096:
        _MINUTE_SECONDS.clear()
    minute = _MINUTE_SECONDS[text[:16]] = day + hh * 3600 + mm * 60
    frac = 0
    if n > 20:
        digits = text[20:-1]
        if text[19] != "." or not digits.isdigit():
            return None
        frac = int(digits) * _FRACTION_SCALE[len(digits)]
    ns = (minute + ss) * _NS + frac
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
    "silly": "TRACE", "http": "INFO",  # winston's npm levels
}
#: Go slog's level names, which carry an offset when between two (``INFO+2``, ``DEBUG-4``)
_SLOG_BASE = {"DEBUG": -4, "INFO": 0, "WARN": 4, "ERROR": 8}
_SLOG_OFFSET = re.compile(r"(DEBUG|INFO|WARN|ERROR)([+-]\d{1,3})", re.ASCII)
#: syslog severities 0..7 (RFC 5424 §6.2.1)
SYSLOG_SEVERITY_LEVEL = ("FATAL", "FATAL", "FATAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG")


def normalize_level(value: Any) -> str | None:
    """Map a level name, or a number on pino's and bunyan's scale, to TRACE…FATAL; None if unknown.

    Numbers (and digit strings) in a ``level`` are pino/bunyan levels: 10 trace, 20 debug, 30 info,
    40 warn, 50 error, 60 fatal, a custom level in between taking the one below it (35 is INFO);
    below 10 is unknown. OTel severity numbers (1–24) are :func:`otel_level`'s, syslog
    severities (0–7) the syslog parser's: a record says which it carries by its key.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        n = int(value)
        if n < 10:
            return None
        return LEVELS[min(n // 10, 6) - 1]
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
        if found is None and (m := _SLOG_OFFSET.fullmatch(upper)):
            n = _SLOG_BASE[m[1]] + int(m[2])  # slog: DEBUG -4, INFO 0, WARN 4, ERROR 8
            found = ("TRACE" if n < -4 else "DEBUG" if n < 0 else "INFO" if n < 4
                     else "WARN" if n < 8 else "ERROR")
    return found


def otel_level(value: Any) -> str | None:
    """The level of an OTel severity number (1–24, as an integer or its digits); None otherwise."""
    if type(value) is str and value.isascii() and value.isdigit() and len(value) < 4:
        value = int(value)
    if type(value) is not int or not 1 <= value <= 24:
        return None
    return LEVELS[(value - 1) // 4]


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
        "otel_severity": ("severity_number",),  # read when no level key gives a level
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
    return exactjson.dumps(value).decode()


_NUMERIC_TEXT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)


def http_value(name: str, value: Any) -> Any:
    """``value`` as the ``http.<name>`` column holds it, or RecordError saying why it cannot be
    (parsers' ``guard`` asks the same question, so a parsed line always normalizes)."""
    kind = HTTP_FIELDS[name]
    if type(value) is kind and (kind is str or 0 <= value <= HTTP_MAX[name]):
        return value  # the common case: already the right type
    if kind is float and type(value) is int and 0 <= value <= 2**53:
        return float(value)  # exact; a larger int is converted (or refused) below
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
        else:
            out = float(value)
            if out != out or out < 0:
                raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise RecordError(f"http.{name} must be a non-negative number, got {value!r}") from None
    if out > HTTP_MAX[name]:
        raise RecordError(f"http.{name} must be at most {HTTP_MAX[name]!r}, got {value!r}")
    return out


#: A record's keys, in order, → what to take from it. Agents, SDKs and parsers send a few key
#: shapes over and over, so which keys are aliases of which field is worked out once per shape.
#: A plan is ``(keys, fields, simple, flat_http, dialect, server_names)``: the alias keys among
#: the record's keys, grouped by field and best first within a field, the field of each, whether
#: every field has just one of them, whether any ``http.<name>`` key is among them, the rewrite of
#: the logger dialect the keys are written in (:mod:`logharbor.dialects`) or None, and whether a
#: key is one of :data:`_SERVER_NAMES` (rare: the check costs nothing on the usual shapes).
_Plan = tuple[tuple[Any, ...], tuple[str, ...], bool, bool, Rewrite | None, bool]
_PLANS: dict[tuple[Any, ...], _Plan] = {}
_REWRITTEN: dict[tuple[Any, ...], _Plan] = {}  # plans of dialect rewrites (never rewritten again)
_PLANS_MAX = 1024  # distinct shapes kept; cleared when full (a flood of shapes only misses)
_PLAN_KEYS_MAX = 64  # records with more keys are planned each time, never cached


def _plan_of(keys: tuple[Any, ...], dialects: bool = True) -> _Plan:
    groups: dict[str, list[tuple[int, Any]]] = {}
    for key in keys:
        if key in _ALIAS_KEYS:
            field, priority = _ALIASES[key]
            groups.setdefault(field, []).append((priority, key))
    alias_keys: list[Any] = []
    fields: list[str] = []
    for field, cands in groups.items():
        for _, key in sorted(cands, key=_priority):
            alias_keys.append(key)
            fields.append(field)
    return (tuple(alias_keys), tuple(fields), len(fields) == len(groups),
            any(field.startswith("http.") for field in groups), dialect_of(keys) if dialects else None,
            not _SERVER_NAMES.isdisjoint(keys))


def _cached_plan(keys: tuple[Any, ...], plans: dict[tuple[Any, ...], _Plan], dialects: bool) -> _Plan:
    plan = _plan_of(keys, dialects)
    if len(keys) <= _PLAN_KEYS_MAX:
        if len(plans) >= _PLANS_MAX:
            plans.clear()
        plans[keys] = plan
    return plan


def _priority(pair: tuple[int, Any]) -> int:
    return pair[0]


_LEVEL_CACHE: dict[str, str] = {}  # level text → level: a source uses a few spellings
_LEVEL_CACHE_MAX = 256


def _merge_attributes(obj: RawRecord) -> RawRecord:
    """A record's ``attributes`` object read as its own keys, before anything is folded: its
    ``level``, ``service``, ``timestamp`` … count as the record's (they were dropped without a
    word). A top-level key of the same name wins the name; the nested value, when it is another
    value, is kept as ``<key>_attribute`` (it was dropped: ``service`` beside ``attributes.service``)."""
    return _merged(obj.pop("attributes"), obj)


def _merged(nested: Mapping[Any, Any], obj: RawRecord) -> RawRecord:
    out = {**nested, **obj}
    if len(out) != len(nested) + len(obj):  # a key in both: the nested value is kept aside
        for key, value in nested.items():
            if key in obj and not same_value(obj[key], value):
                keep_aside(out, key, value)
    return out


def _fold(obj: Mapping[str, Any], now: int) -> tuple[Any, ...]:
    """The canonical values of one record, in the order :func:`normalize` stores them:
    ``(timestamp, message, service, source, host, instance, env, version, tenant, trace_id,
    span_id, request_id, http, level, attributes)``, before ``defaults`` and the ``unknown`` service.

    Shared by :func:`normalize` and the store-row encoder (``store.rows.encode_record``), which
    builds its row from these values without the normalized dict in between. The order of the
    steps is the order in which values are checked, so the first bad value is the one reported.
    """
    # the copy runs in C; only the few alias keys are visited in Python, as the shape's plan says
    attributes = dict(obj)
    if type(attributes.get("attributes")) is dict:
        attributes = _merge_attributes(attributes)
    keys = tuple(attributes)
    plan = _PLANS.get(keys)
    if plan is None:
        plan = _cached_plan(keys, _PLANS, True)
    if plan[4] is not None:  # a logger dialect (keys renamed to canonical names), nested objects
        rewritten = plan[4](attributes)
        if rewritten is not attributes:  # the same object: nothing changed ("service" a string)
            attributes = rewritten
            keys = tuple(attributes)
            plan = _REWRITTEN.get(keys) or _cached_plan(keys, _REWRITTEN, False)
    alias_keys, fields, simple, flat_http, _, _ = plan
    # every alias key leaves the attributes; per field the first one with a value wins, and an
    # alias that is not used (a later one, or a null or empty one) goes back, as it was sent
    values = list(map(attributes.pop, alias_keys))
    if simple and None not in values and "" not in values:
        found: RawRecord = dict(zip(fields, values, strict=True))
    else:
        found = {}
        for key, field, value in zip(alias_keys, fields, values, strict=True):
            if value is None or value == "" or field in found:
                if key not in _ABSENT_WHEN_EMPTY:
                    attributes[key] = value
                continue
            found[field] = value

    nested_attrs = found.pop("attributes", None)
    if nested_attrs is not None:
        if isinstance(nested_attrs, Mapping):  # a Mapping that is not a dict (a dict was merged)
            attributes = _merged(nested_attrs, attributes)
        else:
            attributes["attributes"] = nested_attrs

    get = found.get
    value = get("timestamp")
    if value is None:
        timestamp = now
    else:
        timestamp = _fast_utc(value) if type(value) is str else None
        if timestamp is None:
            timestamp = _record_time(value, alias_keys, fields, values, attributes, now)

    message = get("message")
    if message is None:
        message = ""
    elif type(message) is not str:
        message = _as_text(message)
    service = get("service")
    if service is not None and type(service) is not str:
        service = _as_text(service)
    source = get("source")
    if source is not None and type(source) is not str:
        source = _as_text(source)
    host = get("host")
    if host is not None and type(host) is not str:
        host = _as_text(host)
    instance = get("instance")
    if instance is not None and type(instance) is not str:
        instance = _as_text(instance)
    env = get("env")
    if env is not None and type(env) is not str:
        env = _as_text(env)
    version = get("version")
    if version is not None and type(version) is not str:
        version = _as_text(version)
    tenant = get("tenant")
    if tenant is not None and type(tenant) is not str:
        tenant = _as_text(tenant)

    # trace / request ids: several header forms; keep the raw header when it carried more
    trace_raw = get("trace")
    request_raw = get("request")
    span_raw = get("span")
    trace_id = None
    span_id = _as_text(span_raw).lower() if span_raw is not None else None
    if trace_raw is not None:
        trace_id = normalize_trace_id(trace_raw)
        text = trace_raw if type(trace_raw) is str else _as_text(trace_raw)
        if trace_id is None:
            # not a trace id we know: it still identifies the request
            if request_raw is None:
                request_raw = text
            else:
                _claim(attributes, "trace_raw", text)
        elif len(text) != 32:
            _claim(attributes, "trace_header", text)
            if span_id is None:
                span_id = traceparent_span_id(text)
    if request_raw is not None and type(request_raw) is not str:
        request_raw = _as_text(request_raw)

    http: HttpFields = {}
    nested = get("http")
    if nested is not None:
        if type(nested) is dict or isinstance(nested, Mapping):
            for key, value in nested.items():
                kind = HTTP_FIELDS.get(key)
                if kind is None:
                    name = f"http.{key}"
                    if name in attributes:  # a flat key sent under that name keeps it
                        _add(attributes, name, value)
                    else:
                        attributes[name] = value
                elif value is None:
                    continue
                elif type(value) is kind and (kind is str or 0 <= value <= HTTP_MAX[key]):
                    http[key] = value  # the common case: already the right type
                else:
                    http[key] = http_value(key, value)
    if flat_http:  # flat `http.<name>` keys fill what the nested object did not give
        for name in HTTP_FIELDS:
            value = get("http." + name)
            if value is None:
                continue
            if name in http:
                attributes["http." + name] = value  # not used: kept as it was sent
            else:
                http[name] = http_value(name, value)
    if nested is not None and type(nested) is not dict and not isinstance(nested, Mapping):
        # an `http` that is no object stays the attribute `http`, unless the flat keys gave the
        # record an `http` object: the wire form shows that one under the name
        if http:
            keep_aside(attributes, "http", nested)
        else:
            attributes["http"] = nested

    value = get("level")
    level = None
    if value is not None:
        if type(value) is str:
            level = _LEVEL_CACHE.get(value)
            if level is None:
                level = normalize_level(value)
                if level is not None and len(_LEVEL_CACHE) < _LEVEL_CACHE_MAX:
                    _LEVEL_CACHE[value] = level
        else:
            level = normalize_level(value)
    if level is None:
        if value is not None:
            _claim(attributes, "level_raw", value)
        otel = get("otel_severity")
        level = otel_level(otel) if otel is not None else None
    if level is None:
        status = http.get("status")
        level = ("ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO") if status else "INFO"
    if plan[5]:
        _keep_server_names(found, attributes, level)
    return (timestamp, message, service, source, host, instance, env, version, tenant, trace_id,
            span_id, request_raw, http, level, attributes)


def _keep_server_names(found: RawRecord, attributes: Attributes, level: str) -> None:
    """Values sent under :data:`_SERVER_NAMES`, kept aside: ``observed_timestamp`` (the receive
    time is the record's), a ``severity_number`` that is not the stored level's (it was dropped),
    ``pattern_id`` (the stored row's template id would hide it in every answer)."""
    observed = found.get("_derived")
    if observed is not None:
        keep_aside(attributes, "observed_timestamp", observed)
    number = found.get("otel_severity")
    if number is not None and not same_value(number, _SEVERITY_NUMBER[level]):
        keep_aside(attributes, "severity_number", number)
    if "pattern_id" in attributes:
        keep_aside(attributes, "pattern_id", attributes.pop("pattern_id"))


def level_of(obj: Mapping[str, Any]) -> str | None:
    """The level :func:`normalize` reads from a record's own keys (its dialect's included), or None
    when none gives one (normalize would then use ``http.status`` or INFO): for the paths that
    only need the level, such as the agent's sampler, so they read it the same way."""
    attributes = dict(obj)
    if type(attributes.get("attributes")) is dict:
        attributes = _merge_attributes(attributes)
    keys = tuple(attributes)
    plan = _PLANS.get(keys) or _cached_plan(keys, _PLANS, True)
    if plan[4] is not None:
        rewritten = plan[4](attributes)
        if rewritten is not attributes:  # the same object: nothing changed ("service" a string)
            attributes = rewritten
            keys = tuple(attributes)
            plan = _REWRITTEN.get(keys) or _cached_plan(keys, _REWRITTEN, False)
    named = otel = None
    for key, field in zip(plan[0], plan[1], strict=True):
        value = attributes[key]
        if value is None or value == "":
            continue
        if field == "level" and named is None:
            named = value
        elif field == "otel_severity" and otel is None:
            otel = value
    level = normalize_level(named) if named is not None else None
    if level is None and otel is not None:
        level = otel_level(otel)
    return level


def normalize(
    obj: Mapping[str, Any],
    *,
    received_ns: int | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Record:
    """Turn one decoded JSON object into a canonical record, or raise :class:`RecordError`.

    ``received_ns`` is used when the object has no timestamp (the receive time) and becomes
    ``observed_timestamp``; ``defaults`` fills canonical fields the object leaves empty (for
    example ``source`` or ``host`` known to the shipper). The input is not modified. When several
    aliases of one field are present, the canonical name wins, then the aliases in table order.
    """
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise RecordError(f"a record must be a JSON object, got {type(obj).__name__}")
    now = received_ns if received_ns is not None else time.time_ns()
    (timestamp, message, service, source, host, instance, env, version, tenant, trace_id, span_id,
     request_id, http, level, attributes) = _fold(obj, now)
    record: Record = {
        "timestamp": timestamp, "observed_timestamp": now, "message": message, "service": service,
        "source": source, "host": host, "instance": instance, "env": env, "version": version,
        "tenant": tenant, "trace_id": trace_id, "span_id": span_id, "request_id": request_id,
        "http": http, "level": level, "severity_number": _SEVERITY_NUMBER[level],
        "attributes": attributes,
    }
    if defaults:
        for key, value in defaults.items():
            if record.get(key) is None and key in STRING_FIELDS:
                record[key] = value  # type: ignore[literal-required]  # a string field
    if not record["service"]:
        record["service"] = "unknown"
    return record


def stamp_tenant(record: Record, tenant: str | None) -> Record:
    """A scoped writer's records carry its tenant, whatever the body said; a ``tenant`` the
    record sent that is not the writer's is kept as the attribute ``tenant_attribute``."""
    if tenant is not None:
        own = record.get("tenant")
        if own is not None and own != tenant:
            keep_aside(record["attributes"], "tenant", own)
        record["tenant"] = tenant
    return record


def to_wire(record: Mapping[str, Any]) -> WireRecord:
    """The flat NDJSON form of DESIGN §2: canonical fields, ``http`` object, attributes inline.

    Attributes share the top level with the canonical fields, so an attribute named as one that
    the record shows (or ``pattern_id``, which the query answer adds) is shown as
    ``<name>_attribute`` (:func:`keep_aside`) instead of being hidden by it. Normalized records
    never hold one; rows stored by older releases or other writers may.
    """
    out: WireRecord = {"timestamp": format_timestamp(record["timestamp"])}
    if record.get("observed_timestamp"):
        out["observed_timestamp"] = format_timestamp(record["observed_timestamp"])
    out["level"] = record["level"]
    for name in STRING_FIELDS:
        value = record.get(name)
        if value not in (None, ""):
            out[name] = value
    if record.get("http"):
        out["http"] = dict(record["http"])
    shadowed = None
    for key, value in (record.get("attributes") or {}).items():
        if key in out or key == "pattern_id":
            shadowed = [] if shadowed is None else shadowed
            shadowed.append((key, value))
        else:
            out[key] = value  # type: ignore[literal-required]  # any attribute name
    if shadowed:  # after every attribute is placed, so a suffix never takes a name sent as such
        for key, value in shadowed:
            if not same_value(out.get(key), value):
                keep_aside(out, key, value)  # type: ignore[arg-type]  # a WireRecord is a dict
    return out
