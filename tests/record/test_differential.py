"""The ingest fast path against the frozen reference (reference_normalize.py): identical rows,
identical records, identical errors.

``normalize`` (alias plan per key shape, timestamp minute cache, level cache) and
``store.rows.encode_record`` (the row built straight from the folded values) must give, for any
input, exactly what the reference gives: the same normalized dict (same keys in the same order,
same types), the same JSONEachRow bytes, and the same exception type and message when a record is
refused. Hypothesis generates records of aliases, odd timestamps, nested attributes, unicode and
wrong types; the demo mix (ALB, NGINX and app records as the agent sends them) is checked line by
line through the native decoder.

Two deliberate changes were applied to both sides afterwards:
- a flattened ``http.<name>`` key was only read when more alias fields were found than the nested
  ``http`` object gave (``len(found) > len(http)``), so ``{"http": {3 fields}, "http.referer": …}``
  lost the referer; flat keys now always fill what the nested object did not give;
- a non-ASCII digit (``"²"``, ``"٣"``) in a timestamp or level raised ``ValueError`` (the whole
  request failed); it is now the record's ``RecordError`` (test_a_non_ascii_digit_rejects_only_its_record).

And two for exactness (issue #20, docs/record.md):
- change 3: a numeric ``http.*`` value beyond its column (``status`` > 65535 was stored wrapped,
  70000 as 4464; ``bytes_sent`` ≥ 2**64; an infinite ``duration_ms`` was stored as null) is the
  record's error; a huge int for ``duration_ms`` is that error too, not an ``OverflowError``; an
  integer beyond 64 bits inside a non-string canonical value is written as its digits;
- change 4: attributes the JSON column would alter go, exactly, into ``attributes_exact`` (the
  rules of ``server/engine/store/attributes.py``, written out independently in the reference), keys with
  ``%`` reach the JSON column with ``%`` as ``%25``, two keys alike once written as text are the
  record's error, and a line that may hold an integer beyond 64 bits is read by the exact decoder;
- change 5: an alias key not used for its field (``msg`` beside ``message``, a null ``severity``, a
  flat ``http.status`` beside the nested one, an unknown ``http`` key with null) stays an attribute
  as it was sent; it was dropped. Canonical names themselves (``message``: null) are still the
  field left out;
- change 7 (attribute text, issue #24): change 4's patch and ``%25`` keys are gone: the
  attributes object is written as it is (keys as text, collisions the record's error) and the
  engine stores its text byte for byte (``attributes String``, server/engine/store/attributes.py);
- change 6 (dialects, issue #22): a number in ``level`` is on pino's and bunyan's scale (it was
  OTel's), ``severity_number`` is read as OTel's when no level key gives a level, a protobuf
  timestamp object ``{seconds, nanos}`` is a time, Go slog's ``INFO+2`` and winston's ``silly`` and
  ``http`` are levels, and the logger dialects of ``logharbor/dialects.py`` (Serilog CLEF, GCP,
  python logging, syslog-ng, Logback, ECS, pino/bunyan, zap, slog) are recognised by their keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.record import reference_normalize as ref

from logharbor import exactjson
from logharbor.record import _ALIASES, HTTP_FIELDS, level_of, normalize, parse_timestamp, stamp_tenant
from logharbor.server.engine.store import rows as rows_module
from logharbor.server.engine.store.rows import encode_record, encode_row
from logharbor.server.ingest import decoder
from logharbor.server.ingest.base import RecordLimits
from logharbor.server.ingest.native import decode_ndjson
from logharbor.server.ingest.ndjson import decode_ndjson_payload

pytestmark = pytest.mark.slow  # differential property runs against the reference (seconds each)

RECEIVED = 1_764_043_200_123_456_789  # 2025-11-25T04:00:00.123456789Z

#: every path a record can take, each held to the reference: the Python modules, and the compiled
#: copy of them (logharbor._native, scripts/build_native.py) when it is built from these sources
PATHS: dict[str, tuple[Callable[..., Any], ...]] = {
    "python": (normalize, encode_record, encode_row, decode_ndjson_payload)}
if decoder.COMPILED is not None:
    PATHS["compiled"] = (decoder.COMPILED["record"].normalize, decoder.COMPILED["rows"].encode_record,
                         decoder.COMPILED["rows"].encode_row, decoder.COMPILED["ndjson"].decode_ndjson_payload)
PAYLOADS = [path[3] for path in PATHS.values()]
if decoder.ROWC is not None:  # the C normaliser, with the compiled loop for the lines it hands back
    PAYLOADS.append(decoder.ROWC.decode)


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """What a call gives: ``("ok", repr of the value)`` or ``("error", type and message)``.

    ``repr`` tells 1 from 1.0 from True and shows key order; NaN compares equal through it.
    """
    try:
        value = fn()
    except Exception as exc:  # every kind: a changed exception type is a difference too
        return "error", (type(exc).__name__, str(exc))
    return "ok", repr(value)


def check(obj: Any, *, received_ns: int | None = RECEIVED, defaults: dict[str, Any] | None = None,
          tenant: str | None = None) -> None:
    """The optimized paths and the reference agree on ``obj``; twice, so the caches are warm."""
    expected_record = outcome(lambda: ref.normalize(obj, received_ns=received_ns, defaults=defaults))
    expected_row = outcome(lambda: ref.encode_row(ref.stamp_tenant(
        ref.normalize(obj, received_ns=received_ns, defaults=defaults), tenant)))
    for normalize_, encode_record_, encode_row_, _ in PATHS.values():
        for _ in range(2):
            assert outcome(partial(normalize_, obj, received_ns=received_ns, defaults=defaults)) == expected_record
            assert outcome(partial(encode_record_, obj, received_ns=received_ns, defaults=defaults,
                                   tenant=tenant)) == expected_row
            if expected_record[0] == "ok":
                record = stamp_tenant(normalize_(obj, received_ns=received_ns, defaults=defaults), tenant)
                assert outcome(partial(encode_row_, record)) == expected_row


# -- generated records ------------------------------------------------------------------------

ALIAS_KEYS = sorted(k for k in _ALIASES if isinstance(k, str))
unicode_digits = st.sampled_from(["²", "٣", "５", "߂", "〇", "Ⅻ"])
texts = st.text(max_size=12) | st.sampled_from(["", " ", "x", "ERROR2", "INFO4", "warning", " Err ", "12",
                                                   "25", "0", "-1", "null", "true"])
ints = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([0, 1, 9, 13, 24, 25, 200, 404,
                                                                            503, 10**11, 10**14, 10**17])
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.5, 404.0, 1e11, 1e300])
scalars = st.none() | st.booleans() | ints | floats | texts | st.binary(max_size=3)  # bytes: msgpack (forward)


def _nested(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6) | st.sampled_from(
        ["status", "method", "path", "duration_ms", "bytes_sent", "client_ip", "route", "host"]),
        children, max_size=4)


json_values = st.recursive(scalars, _nested, max_leaves=8)


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    """RFC 3339 in and out of range (minutes repeat, so the minute cache is hit), epochs, junk."""
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return draw(json_values)
    if kind == 1:
        return draw(ints | floats | st.sampled_from(["1764043200", "1764043200.5", "1764043200123", " 17 ",
                                                     "1764043200.", "99999999999999999999"]))
    date = draw(st.sampled_from(["2026-11-25", "2024-02-29", "2023-02-29", "1969-12-31", "2262-04-11",
                                 "2262-04-12", "2026-13-01", "2026-00-10", "0000-01-01", "٢٠٢٦-11-25"]))
    sep = draw(st.sampled_from(["T", "T", "t", " ", "X"]))
    hh = draw(st.sampled_from(["00", "03", "23", "24", "99", "²3", "0"]))
    mm = draw(st.sampled_from(["00", "51", "59", "60", "5٣"]))
    ss = draw(st.sampled_from(["00", "07", "59", "60", "61", "²", "5", "0٣", "ab"]))
    frac = draw(st.sampled_from(["", ".", ".1", ".123456", ".123456789", ".1234567891", ",5", ".12a",
                                 ".²", ".٣٣"]))
    zone = draw(st.sampled_from(["Z", "Z", "z", "", "+02:00", "-0530", "UTC", "ZZ", " Z"]))
    text = f"{date}{sep}{hh}:{mm}:{ss}{frac}{zone}"
    if kind == 5:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=2)) + text[cut:]
    elif kind == 6:  # one character replaced
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from([":", "-", "T", "Z", ".", "0", "9", "x", " ", "²"])) + text[at + 1:]
    return text


levels = st.sampled_from(["INFO", "info", "Info", " warning ", "WARN", "err", "CRITICAL", "fatal", "trace",
                          "notice", "ERROR2", "INFO4", "7", "17", "²", "bogus", "", "E"]) | json_values
trace_ids = st.sampled_from([
    "5759e988bd862e3fe1be46a994272793", "5759E988BD862E3FE1BE46A994272793", "00000000000000000000000000000000",
    "bd862e3fe1be46a9", "Root=1-5759e988-bd862e3fe1be46a994272793",
    "Self=1-abc;Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", "1-5759e988-bd862e3fe1be46a994272793",
    "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01", "req-42", " 5759e988bd862e3fe1be46a994272793 ",
]) | json_values


def value_for(key: str) -> st.SearchStrategy[Any]:
    field = _ALIASES.get(key, ("", 0))[0]
    if field == "timestamp":
        return timestamps()
    if field == "level":
        return levels
    if field == "trace":
        return trace_ids
    if field == "http":
        return st.dictionaries(st.sampled_from([*HTTP_FIELDS, "route", "x"]), json_values, max_size=6) | json_values
    if field.startswith("http."):
        return json_values | st.sampled_from(["200", "12.5", "GET", "-3"])
    if field == "attributes":
        return st.dictionaries(st.sampled_from(["user_id", "message", "a.b", "trace_header", "level_raw"]) |
                               st.text(max_size=5), json_values, max_size=4) | json_values
    return json_values


#: keys the logger dialects read (logharbor/dialects.py), and the sets of them that make one
DIALECT_KEYS = ["@t", "@m", "@mt", "@l", "@x", "@r", "@tr", "@sp", "TraceId", "SpanId", "RequestId", "Application",
                "MachineName", "@@x", "@@t", "httpRequest", "serviceContext", "timestampSeconds", "timestampNanos",
                "logging.googleapis.com/trace", "logging.googleapis.com/spanId", "stack_trace", "levelname",
                "asctime", "created", "exc_info", "otelTraceID", "otelSpanID", "otelServiceName", "MESSAGE",
                "PROGRAM", "PRIORITY", "HOST", "ISODATE", "FACILITY", "LEVEL", "level_value", "logger_name",
                "@version", "HOSTNAME", "app_name", "appName", "X-B3-TraceId", "ecs.version", "ecs",
                "error.stack_trace", "error.stack", "pid", "hostname", "msg", "name", "reqId", "err", "stacktrace",
                "caller", "source", "source_location", "severity_number", "error", "time", "level", "ts"]
DIALECT_TRIGGERS = [("@t", "@mt"), ("@t", "@m"), ("@t", "@l"), ("httpRequest",), ("serviceContext",),
                    ("timestampSeconds",), ("logging.googleapis.com/trace",), ("levelname",),
                    ("MESSAGE", "PRIORITY"), ("MESSAGE", "PROGRAM"), ("level_value", "logger_name"),
                    ("ecs.version",), ("ecs",), ("pid", "hostname", "msg", "level"), ("stacktrace", "ts"),
                    ("source", "msg", "time", "level")]
dialect_values = st.sampled_from([
    "2026-11-25 10:00:00,123", "2026-11-25T10:00:00.5Z", "Hello, {User} {N:x8} {{x}} {Missing,5}", "User", "err",
    "3", "9", 3, 17, 30, 1764043200.25, "projects/p/traces/5759e988bd862e3fe1be46a994272793", "0.25s",
    "Traceback (most recent call last):\n  x", "ERROR+4", "Information", "e.com/a?b=1", ["0000007b"], "req-1",
]) | st.fixed_dictionaries({}, optional={
    "requestMethod": st.sampled_from(["GET", "", None]), "status": st.sampled_from([200, "503", "x", 70000, True]),
    "requestUrl": st.sampled_from(["https://e.com/a?b=1", "/p", "", 5]), "latency": st.sampled_from(["0.5s", "x"]),
    "responseSize": st.sampled_from(["12", 12, -1]), "remoteIp": st.sampled_from(["10.0.0.1"]),
    "service": texts, "version": texts, "seconds": ints | st.sampled_from(["17", "x"]), "nanos": ints,
    "stack_trace": texts, "stack": texts, "type": texts, "message": texts, "function": texts}) | json_values


@st.composite
def dialect_records(draw: st.DrawFn) -> dict[Any, Any]:
    """A dialect's keys (so one is recognised), with others of every dialect and every kind."""
    keys = list(draw(st.sampled_from(DIALECT_TRIGGERS)))
    keys += draw(st.lists(st.sampled_from(DIALECT_KEYS) | st.sampled_from(ALIAS_KEYS), max_size=8))
    obj: dict[Any, Any] = {}
    for key in keys:
        if key not in obj:
            obj[key] = draw(dialect_values | value_for(key)) if key in DIALECT_KEYS else draw(value_for(key))
    return obj


@st.composite
def records(draw: st.DrawFn) -> dict[Any, Any]:
    """Aliases, other keys (an int key, as msgpack may send), values of every kind."""
    keys = draw(st.lists(st.sampled_from(ALIAS_KEYS) | st.text(max_size=8) | st.integers(0, 2) |
                         st.sampled_from(["user_id", "userId", "http.route", "error", "trace_header", "trace_raw",
                                          "level_raw", "http.x"]), max_size=12, unique=True))
    return {key: draw(value_for(key)) for key in keys}


defaults_st = st.none() | st.dictionaries(
    st.sampled_from(["source", "host", "service", "env", "trace_id", "request_id", "message", "level", "x"]),
    st.none() | texts | ints, max_size=3)
tenants = st.none() | st.sampled_from(["", "acme", "t-1"])

SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(records(), defaults_st, tenants)
@pytest.mark.slow
def test_generated_records_are_identical(obj: dict[str, Any], defaults: dict[str, Any] | None,
                                         tenant: str | None) -> None:
    check(obj, defaults=defaults, tenant=tenant)


@settings(max_examples=300, deadline=None)
@given(records(), tenants)
def test_without_a_receive_time_the_clock_is_read_the_same_way(obj: dict[str, Any], tenant: str | None) -> None:
    with mock.patch("time.time_ns", return_value=RECEIVED):
        check(obj, received_ns=None, tenant=tenant)


@settings(max_examples=300, deadline=None)
@given(st.lists(records(), min_size=1, max_size=6), tenants)
def test_ndjson_bodies_are_identical(objs: list[dict[str, Any]], tenant: str | None) -> None:
    lines = []
    for obj in objs:
        try:
            lines.append(exactjson.dumps(obj))  # integers beyond 64 bits as their digits
        except TypeError:  # bytes and int keys have no JSON form: send a bad line instead
            lines.append(b"{not json")
    lines.insert(1, b"[1, 2]")
    body = b"\n".join(lines)
    limits = RecordLimits(max_fields=8, max_field_bytes=64, max_line_bytes=4096)

    def ours() -> tuple[list[bytes], list[tuple[int, str]]]:
        rows, errors = decode_ndjson(body, received_ns=RECEIVED, limits=limits, tenant=tenant)
        return rows, [(e.line, e.error) for e in errors]

    def reference() -> tuple[list[bytes], list[tuple[int, str]]]:
        return ref.decode_ndjson(body, received_ns=RECEIVED, limits=limits, tenant=tenant)

    def reference_payload() -> tuple[bytes, int, list[tuple[int, str]]]:
        rows, errors = reference()
        return b"\n".join(rows), len(rows), errors

    # whatever the reference raises, ours raises the same
    assert outcome(ours) == outcome(reference)
    for payload in PAYLOADS:
        assert outcome(partial(payload, body, RECEIVED, limits, None, tenant)) == outcome(reference_payload)


@pytest.mark.parametrize("obj", [
    [], "x", None, 3,  # not objects
    {}, {"message": None}, {"message": ""}, {"msg": "", "message": None, "log": "third"},
    {"timestamp": "2026-11-25T03:51:07.123Z", "ts": 5}, {"timestamp": "", "@timestamp": "2026-11-25T03:51:07Z"},
    {"http": {"status": 502, "method": "GET", "path": "/a"}, "http.referer": "r"},  # the flat key fills in
    {"http": {"status": 502, "method": "GET"}, "http.status": 200, "http.path": "/x"},  # flat keys read
    {"http": {"status": 502}, "http.status": 200, "http.path": "/x", "message": "m"},
    {"http.status": True}, {"http.status": float("nan")}, {"http.duration_ms": 5}, {"http": {"status": -1}},
    {"http": {"bytes_sent": 2**65}}, {"user": {2: "non-string key"}}, {"attributes": {"a": 1}, "a": 2},
    {"attributes": [1]}, {"level": "²"}, {"timestamp": "2026-11-25T03:51:²7Z"},
    {"timestamp": "2026-11-25T²3:51:07Z"}, {"level": 17.9}, {"severity_number": 3, "observed_timestamp": 1},
    {"trace_id": "req-1", "request_id": "r"}, {"traceparent": "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"},
    {"trace": 12, "span_id": 7}, {"service": ["a"], "host": {"name": "h"}, "env": 1.0, "version": True},
    {f"k{i}": i for i in range(80)} | {"msg": "wide"},  # more keys than a cached plan holds
    # change 3 and 4 (exactness)
    {"http": {"status": 70000}}, {"http": {"status": 65535, "bytes_sent": 2**64 - 1}},
    {"http": {"bytes_sent": 2**64}}, {"http": {"duration_ms": 10**400}}, {"http.duration_ms": float("inf")},
    {"a": 2**64 + 1, "b": -(2**63) - 1, "c": [2**70, 1.5]}, {"message": [2**64]}, {"x.y": 1, "x%2Ey": 2},
    {1: "a", "1": "b"}, {"o": {True: 1, "true": 2}}, {"n": None, "e": {}, "f": 13.0, "z": -0.0, "l": [True, 1]},
    {"d": "2018-07-02T22:22:48.364000Z", "a.b": 1, "a": {"b": 2}, "": 1, ".x": 2, "x.": 3, "%2E": 4},
    {"arr": [[None], [1]], "objs": [{"a": 1}, None], "big": [9007199254740993]},
    # change 5 (aliases not used are kept)
    {"message": "m", "msg": "also", "log": None, "time": 5, "timestamp": "2026-11-25T03:51:07Z", "ts": ""},
    {"severity": None, "level": "", "levelname": "warning"}, {"http": {"status": 1, "route": None},
                                                               "http.status": 2, "http.path": None},
])
@pytest.mark.parametrize("tenant", [None, "acme"])
def test_edge_cases_are_identical(obj: Any, tenant: str | None) -> None:
    check(obj, tenant=tenant)
    check(obj, defaults={"source": "syslog", "host": "h1", "service": ""}, tenant=tenant)


def test_patterns_off_is_identical() -> None:
    """``decoder.set_patterns`` (the server's ``--no-patterns``) reaches every path's encoder."""
    obj = {"timestamp": "2026-11-25T03:51:07Z", "message": "GET /x 200", "service": "s"}
    decoder.set_patterns(False)
    try:
        assert not rows_module._patterns
        for _, encode_record_, _, payload in PATHS.values():
            want = ref.encode_row(ref.normalize(obj, received_ns=RECEIVED), patterns=False)
            assert encode_record_(obj, received_ns=RECEIVED) == want
            assert payload(orjson.dumps(obj), RECEIVED, RecordLimits(), None, None) == (want, 1, [])
    finally:
        decoder.set_patterns(True)


@st.composite
def http_records(draw: st.DrawFn) -> dict[Any, Any]:
    """A nested ``http`` object beside flat ``http.<name>`` keys and a few other fields."""
    nested = draw(st.dictionaries(st.sampled_from([*HTTP_FIELDS, "route"]), json_values | st.integers(0, 600),
                                  max_size=6))
    flat = draw(st.lists(st.sampled_from([f"http.{name}" for name in HTTP_FIELDS]), max_size=4, unique=True))
    obj: dict[Any, Any] = {"http": nested}
    obj.update({key: draw(json_values | st.sampled_from(["200", "GET", "/p"])) for key in flat})
    for key in draw(st.lists(st.sampled_from(["message", "level", "service", "trace_id", "x"]), unique=True)):
        obj[key] = draw(value_for(key))
    return obj


@SETTINGS
@given(http_records(), tenants)
@pytest.mark.slow
def test_http_records_are_identical(obj: dict[str, Any], tenant: str | None) -> None:
    check(obj, tenant=tenant)


def _same_minute(text: str) -> str:
    return text[:16] + ":00Z"


@settings(max_examples=3000, deadline=None)
@given(timestamps())
def test_timestamps_are_identical(value: Any) -> None:
    # a valid timestamp of the same minute first, so the minute cache holds it when it matters
    if isinstance(value, str):
        outcome(lambda: parse_timestamp(_same_minute(value)))
    for _ in range(2):
        assert outcome(lambda: parse_timestamp(value)) == outcome(lambda: ref.parse_timestamp6(value))  # change 6
        check({"timestamp": value, "message": "m"})


def test_every_one_character_change_of_a_timestamp_is_identical() -> None:
    """Each position of a few valid timestamps replaced, dropped or doubled, with the minute cache
    warm and cold: the fast path's checks are the reference's, position by position."""
    bases = ["2026-11-25T03:51:07Z", "2026-11-25T03:51:07.123456Z", "2024-02-29T23:59:59.123456789Z",
             "1970-01-01T00:00:00.5Z"]
    chars = [":", "-", "T", "t", "Z", ".", ",", "0", "6", "9", "x", " ", "+", "²", "٣"]
    for base in bases:
        variants = [base[:i] + c + base[i + 1:] for i in range(len(base)) for c in chars]
        variants += [base[:i] + base[i + 1:] for i in range(len(base))]
        variants += [base[:i] + base[i] + base[i:] for i in range(len(base))]
        for text in variants:
            for warm in (False, True):
                if warm:
                    parse_timestamp(base[:16] + ":00Z")
                    outcome(lambda: parse_timestamp(text[:16] + ":00Z"))  # noqa: B023
                assert outcome(lambda: parse_timestamp(text)) == outcome(lambda: ref.parse_timestamp(text)), text  # noqa: B023


# -- the demo mix -----------------------------------------------------------------------------

RENAMES = {"message": "msg", "timestamp": "@timestamp", "level": "severity", "trace_id": "traceId",
           "service": "service.name", "request_id": "requestId", "host": "hostname", "env": "environment"}


def demo_lines(n: int) -> list[bytes]:
    from logharbor.demo.lab import Shipper, collect
    from logharbor.demo.traffic import TrafficGenerator

    gen = TrafficGenerator(11)
    shipper = Shipper("http://127.0.0.1:9")  # its parsers only: nothing is sent
    out: list[bytes] = []
    stories = gen.stories(n, start_ns=RECEIVED - 3600 * 10**9, spacing_ns=50_000_000)
    while len(out) < n:
        chunk = [next(stories) for _ in range(50)]
        out.extend(orjson.dumps(r) for r in shipper.records(collect(chunk)))
    return out[:n]


@pytest.mark.parametrize("tenant", [None, "acme"])
def test_demo_mix_is_identical(tenant: str | None) -> None:
    lines = demo_lines(3000)
    # the same records with their keys under aliases (what other shippers send), and odd ones
    aliased = []
    for i, line in enumerate(lines[:1000]):
        obj = orjson.loads(line)
        renamed = {RENAMES.get(k, k) if i % 2 else k: v for k, v in obj.items()}
        if i % 3 == 0:
            renamed["timestamp"] = str(RECEIVED // 1000 + i)  # epoch µs as text, beside an alias
        if i % 5 == 0 and isinstance(renamed.get("http"), dict):
            renamed["http"]["status"] = str(renamed["http"].get("status", ""))
        aliased.append(orjson.dumps(renamed))
    body = b"\n".join(lines + aliased + [b"", b"nope", b'{"message": "last"}'])
    limits = RecordLimits()
    rows, errors = decode_ndjson(body, received_ns=RECEIVED, limits=limits, tenant=tenant)
    ref_rows, ref_errors = ref.decode_ndjson(body, received_ns=RECEIVED, limits=limits, tenant=tenant)
    assert len(rows) == len(ref_rows) >= 3900
    for number, (got, want) in enumerate(zip(rows, ref_rows, strict=True)):
        assert got == want, number
    assert [(e.line, e.error) for e in errors] == ref_errors
    for payload in PAYLOADS:
        assert payload(body, RECEIVED, limits, None, tenant) == (b"\n".join(ref_rows), len(ref_rows), ref_errors)


def test_outcome_tells_types_apart() -> None:
    # the comparison itself: 1, 1.0 and True differ; NaN equals NaN; key order counts
    assert outcome(lambda: {"a": 1}) != outcome(lambda: {"a": 1.0}) != outcome(lambda: {"a": True})
    assert outcome(lambda: [math.nan]) == outcome(lambda: [math.nan])
    assert outcome(lambda: {"a": 1, "b": 2}) != outcome(lambda: {"b": 2, "a": 1})


@pytest.mark.parametrize("bad", [{"timestamp": "²"}, {"timestamp": "2026-11-25T03:51:²7Z"},
                                 {"timestamp": "٢٠٢٦-11-25T03:51:07Z"}, {"timestamp": "1²"}, {"level": "²"}])
def test_a_non_ascii_digit_rejects_only_its_record(bad: dict[str, Any]) -> None:
    """It was a ValueError out of the decoder (a 500 for the whole request); now the line is
    refused with a reason and the good lines beside it are kept (a level it cannot read is
    treated like any other unknown spelling: the record is kept)."""
    good = orjson.dumps({"message": "good", "timestamp": "2026-11-25T03:51:07Z"})
    body = good + b"\n" + orjson.dumps({"message": "odd", **bad}) + b"\n" + good + b"\n"
    for payload in PAYLOADS:
        _, count, errors = payload(body, RECEIVED, RecordLimits(), None, None)
        if "timestamp" in bad:
            assert count == 2 and [line for line, _ in errors] == [2] and "timestamp" in errors[0][1]
        else:
            assert count == 3 and errors == []


def test_flat_http_keys_fill_what_the_nested_object_did_not_give() -> None:
    rec = normalize({"message": "m", "http": {"status": 502, "method": "GET", "path": "/a"},
                     "http.referer": "https://shop/", "http.status": 200}, received_ns=RECEIVED)
    assert rec["http"] == {"status": 502, "method": "GET", "path": "/a", "referer": "https://shop/"}


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dialect_records(), defaults_st, tenants)
def test_dialect_records_are_identical(obj: dict[str, Any], defaults: dict[str, Any] | None,
                                       tenant: str | None) -> None:
    check(obj, defaults=defaults, tenant=tenant)


@settings(max_examples=500, deadline=None)
@given(dialect_records() | records())
def test_level_of_reads_the_level_normalize_stores(obj: dict[str, Any]) -> None:
    """``level_of`` (the agent's sampler) gives normalize's level, or None where normalize falls
    back to http.status / INFO."""
    try:
        record = normalize(obj, received_ns=RECEIVED)
    except Exception:  # a record refused for another field says nothing of its level
        return
    level = level_of(obj)
    if level is not None:
        assert level == record["level"]
    else:
        status = record["http"].get("status")
        assert record["level"] == ("ERROR" if status and status >= 500 else "WARN" if status and status >= 400
                                   else "INFO")


# -- odd JSON text, byte for byte -------------------------------------------------------------

#: JSON text the generated records never produce (they are dumped by a correct encoder): number
#: spellings, lone surrogates, escapes, raw invalid UTF-8, deep nesting
ODD_VALUES = [b"-0", b"-0.0", b"0e0", b"1E2", b"1e400", b"-1e400", b"1e-400", b"123456789012345678901234567890",
              b"-9223372036854775809", b"18446744073709551616", b"9007199254740993", b"1.0000000000000001",
              b'"\\ud800"', b'"\\udc00x"', b'"\\ud83d\\ude00"', b'"\\u0000"', b'"a\\u00e9"', b'"\xff"',
              b'"\xed\xa0\x80"', b'"\xc3"', "\"é\"".encode(), b'"\\/"', b'"x\\ty"', b"true", b"null", b"[]",
              b"{}", b"NaN", b"Infinity", b"01", b"1.", b".5", b"+1", b'"2026-11-25T03:51:07Z"',
              b"[" * 200 + b"1" + b"]" * 200, b"[" * 1100 + b"]" * 1100, b'{"a":' * 300 + b"1" + b"}" * 300]
ODD_KEYS = [b'"message"', b'"msg"', b'"a"', b'"level"', b'"timestamp"', b'"ts"', b'"http"', b'"http.status"',
            b'"\\ud800"', b'"a.b"', b'""', b'"\xff"', b'"%2E"', b'"service"', b'"trace_id"']


@st.composite
def odd_lines(draw: st.DrawFn) -> bytes:
    pairs = draw(st.lists(st.tuples(st.sampled_from(ODD_KEYS), st.sampled_from(ODD_VALUES)), max_size=5))
    line = b"{" + b",".join(k + b":" + v for k, v in pairs) + b"}"
    if draw(st.booleans()):
        line = draw(st.sampled_from([b"\xef\xbb\xbf", b" ", b"\t", b"\x00", b"\xff\xfe"])) + line
    if draw(st.booleans()):
        line += draw(st.sampled_from([b"\r", b" ", b"\x00", b",", b"}"]))
    return line


@settings(max_examples=300, deadline=None)
@given(st.lists(odd_lines(), min_size=1, max_size=5), tenants)
def test_odd_json_text_is_identical(lines: list[bytes], tenant: str | None) -> None:
    """Duplicate keys, -0, 1e400, huge integers, lone surrogates, BOMs, CRLF, NUL, invalid UTF-8
    and deep nesting give every path the reference's rows and errors, byte for byte."""
    body = b"\n".join(lines)
    limits = RecordLimits(max_fields=8, max_field_bytes=64, max_line_bytes=4096)

    def reference_payload() -> tuple[bytes, int, list[tuple[int, str]]]:
        # deliberate: a UTF-8 BOM opening the *body* is skipped (ingest/ndjson.py), one opening a
        # later line is that line's invalid JSON
        start = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
        rows, errors = ref.decode_ndjson(start, received_ns=RECEIVED, limits=limits, tenant=tenant)
        return b"\n".join(rows), len(rows), errors

    expected = outcome(reference_payload)
    for payload in PAYLOADS:
        assert outcome(partial(payload, body, RECEIVED, limits, None, tenant)) == expected
