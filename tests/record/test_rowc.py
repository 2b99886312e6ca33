"""The C normaliser (``_native/rowc.c`` through ``server/ingest/rowc_path.py``) against the Python
loop (``ingest/ndjson.py``, itself held to the frozen reference by test_differential.py): the same
rows byte for byte, the same accepted count and the same (line, error) pairs, for any body.

The bodies are JSON *text* written here token by token, so the spellings a correct encoder never
writes reach the C scanner too: escapes of every kind (``\\/``, ``\\u00E9``, surrogate pairs, lone
ones), floats with trailing zeros, exponents and 15+ digits, ``-0``, integers beyond 64 bits,
duplicate keys, whitespace between tokens, deep nesting, BOMs, CRLF, blank and bad lines. Also
counted: that the GIL is released while a body decodes, and the share of the demo mix the C path
takes itself.
"""

from __future__ import annotations

import json
import threading
from functools import partial

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.record.test_differential import (
    ALIAS_KEYS,
    DIALECT_KEYS,
    RECEIVED,
    RENAMES,
    demo_lines,
    odd_lines,
    outcome,
    records,
)

from logharbor.server.engine.store import rows as python_rows
from logharbor.server.ingest import decoder
from logharbor.server.ingest.base import RecordLimits
from logharbor.server.ingest.ndjson import decode_ndjson_payload as python_payload
from logharbor.server.ingest.rowc_path import RowcDecoder

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(decoder.ROWC is None, reason=f"C normaliser not in use: {decoder.REASON}")]

if decoder.ROWC is not None:
    ROWC = decoder.COMPILED["rowc"]  # type: ignore[index]
    #: the C path with each fallback: the compiled loop (as the server runs it) and the Python one
    CANDIDATES = [decoder.ROWC.decode, RowcDecoder(ROWC, python_payload, python_rows).decode]

LIMITS = [RecordLimits(), RecordLimits(max_fields=6, max_field_bytes=300, max_line_bytes=400, max_depth=4)]
tenants = st.sampled_from([None, "acme", "t-1", "é\"\\x"])


def same(body: bytes, tenant: str | None, limits: RecordLimits) -> None:
    expected = outcome(partial(python_payload, body, RECEIVED, limits, None, tenant))
    for candidate in CANDIDATES:
        for _ in range(2):  # the second time with the pattern ids in the C cache
            assert outcome(partial(candidate, body, RECEIVED, limits, None, tenant)) == expected


# -- JSON text, token by token --------------------------------------------------------------------

ws = st.sampled_from(["", "", "", " ", "\t", "\r", " \t "])


@st.composite
def string_text(draw: st.DrawFn, text: st.SearchStrategy[str] | None = None) -> str:
    """A JSON string literal of ``text``, spelled one of several correct ways (or a broken one)."""
    value = draw(text if text is not None else st.text(max_size=10) | st.sampled_from(
        ["", "é", "😀", "\x00", "\x1f", "\x7f", "\u2028", '"', "\\", "/", "a\nb", "ERROR", "warning"]))
    how = draw(st.integers(0, 5))
    if how == 0:
        return orjson.dumps(value).decode()
    if how == 1:
        return json.dumps(value)  # \uXXXX for non-ASCII, surrogate pairs
    if how == 2:
        return json.dumps(value).replace("/", "\\/").upper().replace("\\U", "\\u").replace(
            "\\N", "\\n").replace("\\T", "\\t") if value.isascii() and value.isalpha() else json.dumps(value)
    if how == 3:
        return '"' + "".join(f"\\u{ord(c):04X}" if ord(c) < 0x10000 else c for c in value) + '"'
    if how == 4:  # broken on purpose: a lone surrogate, an unknown escape, a raw control byte
        return draw(st.sampled_from(['"\\ud800"', '"\\udc00"', '"\\x"', '"a\x01"', '"\\u12"', '"\\ud83dx"']))
    return orjson.dumps(value).decode()


NUMBER_TEXTS = ["0", "-0", "1", "-1", "13", "200", "404", "503", "65535", "65536", "1.5", "1.50", "13.0",
                "0.0", "-0.0", "0.000", "1e5", "1E2", "-1e-7", "0.00001", "0.000001", "0.000012345",
                "123456789012345.6", "123456789012345.0", "1234567890123456.0", "1.000000000000000000000",
                "0.1234567890123456789", "9007199254740993", "9223372036854775807", "9223372036854775808",
                "18446744073709551615", "18446744073709551616", "-9223372036854775809",
                "123456789012345678901234567890", "1764043200", "1764043200123", "1764043200123456",
                "1764043200123456789", "946684799", "946684800", "10", "35", "60", "99", "01", "1.", ".5", "+1"]
numbers = st.sampled_from(NUMBER_TEXTS) | st.integers(-(2**64), 2**64).map(str) | st.floats(
    allow_nan=False, allow_infinity=False).map(lambda f: orjson.dumps(f).decode()) | st.tuples(
    st.integers(0, 10**15), st.integers(0, 10**6), st.sampled_from(["", "0", "00"])).map(
    lambda t: f"{t[0]}.{t[1]}{t[2]}")

TIMES = ["2026-11-25T03:51:07Z", "2026-11-25T03:51:07.1Z", "2026-11-25T03:51:07.123456789Z",
         "2026-11-25T03:51:07.1234567891Z", "2024-02-29T23:59:59.5Z", "2023-02-29T00:00:00Z",
         "1969-12-31T23:59:59Z", "2262-04-11T23:47:16.854775807Z", "2262-04-11T23:47:16.854775808Z",
         "2026-11-25T24:00:00Z", "2026-11-25T03:60:00Z", "2026-11-25T03:51:60Z", "2026-11-25t03:51:07Z",
         "2026-11-25T03:51:07z", "2026-11-25 03:51:07Z", "2026-11-25T03:51:07+00:00", "2026-11-25T03:51:07",
         "2026-11-25T03:51:07.Z", "٢٠٢٦-11-25T03:51:07Z", "1764043200", "1764043200.5", ""]
LEVELS = ["INFO", "info", "Info", "WARNING", "warn", "Err", "CRITICAL", "fatal", "TRACE", "notice", "http",
          "silly", "dpanic", "Informational", "ERROR2", "INFO+2", " info", "bogus", "", "E", "12"]
TRACES = ["5759e988bd862e3fe1be46a994272793", "5759E988BD862E3FE1BE46A994272793",
          "00000000000000000000000000000000", "bd862e3fe1be46a9", "Root=1-5759e988-bd862e3fe1be46a994272793",
          "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01", "req-42", "5759e988bd862e3fe1be46a99427279g"]


def scalar_text() -> st.SearchStrategy[str]:
    return string_text() | numbers | st.sampled_from(["true", "false", "null"])


def value_text(depth: int = 2) -> st.SearchStrategy[str]:
    if depth == 0:
        return scalar_text()
    inner = value_text(depth - 1)
    return scalar_text() | st.builds(
        lambda items, w: "[" + w + ("," + w).join(items) + w + "]", st.lists(inner, max_size=3), ws) | st.builds(
        lambda pairs: "{" + ",".join(f"{k}{w}:{w}{v}" for k, v, w in pairs) + "}",
        st.lists(st.tuples(string_text(st.sampled_from(["a", "b", "status", "method", "route", "é", "a"]) |
                                       st.text(max_size=4)), inner, ws), max_size=4))


def http_text() -> st.SearchStrategy[str]:
    members = st.tuples(st.sampled_from(["method", "path", "status", "duration_ms", "client_ip", "user_agent",
                                         "bytes_sent", "referer", "route", "x", "status"]),
                        string_text() | numbers | st.sampled_from(["null", "true", "{}", "[1]"]))
    return st.lists(members, max_size=6).map(
        lambda ms: "{" + ",".join(f"{orjson.dumps(k).decode()}:{v}" for k, v in ms) + "}")


KEYS = sorted({*ALIAS_KEYS, *DIALECT_KEYS, "user_id", "a", "x.y", "http.route", "trace_header", "level_raw",
               "tenant_attribute", "", "é", "attributes", "pattern_id", "deployment", "span", "log"})


def member_value(key: str) -> st.SearchStrategy[str]:
    if key in ("timestamp", "@timestamp", "time", "ts", "date", "datetime", "timeMillis"):
        return string_text(st.sampled_from(TIMES)) | numbers | value_text(1)
    if key in ("level", "severity", "lvl", "log.level", "loglevel", "severity_text"):
        return string_text(st.sampled_from(LEVELS)) | numbers | value_text(1)
    if key in ("trace_id", "traceId", "trace.id", "traceparent", "trace", "x_amzn_trace_id", "X-Amzn-Trace-Id"):
        return string_text(st.sampled_from(TRACES)) | value_text(1)
    if key == "http":
        return http_text() | value_text(1)
    if key == "tenant":
        return string_text(st.sampled_from(["acme", "t-1", "other", "é\"\\x", ""])) | value_text(0)
    return value_text()


@st.composite
def record_text(draw: st.DrawFn) -> str:
    keys = draw(st.lists(st.sampled_from(KEYS) | st.text(max_size=6), max_size=10))
    parts = []
    for key in keys:
        k = draw(string_text(st.just(key))) if draw(st.integers(0, 9)) == 0 else orjson.dumps(key).decode()
        parts.append(f"{draw(ws)}{k}{draw(ws)}:{draw(ws)}{draw(member_value(key))}{draw(ws)}")
    return "{" + ",".join(parts) + "}"


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    lines: list[bytes] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.integers(0, 9))
        if kind <= 5:
            lines.append(draw(record_text()).encode())
        elif kind == 6:
            lines.append(draw(odd_lines()))
        elif kind == 7:
            try:
                lines.append(orjson.dumps(draw(records())))
            except TypeError:
                lines.append(b"{not json")
        elif kind == 8:
            lines.append(draw(st.sampled_from([b"", b"   ", b"\r", b"[1]", b"nope", b"{", b"\xff{}", b"{}",
                                               b'{"message":"x"} x', b"\xef\xbb\xbf{}"])))
        else:
            lines.append(DEMO[draw(st.integers(0, len(DEMO) - 1))])
    body = b"\n".join(lines)
    if draw(st.booleans()):
        body = draw(st.sampled_from([b"\xef\xbb\xbf", b"\n", b"\r\n"])) + body
    if draw(st.booleans()):
        body = body.replace(b"\n", b"\r\n")
    return body


DEMO = demo_lines(300)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(bodies(), tenants, st.sampled_from(LIMITS))
def test_generated_bodies_are_identical(body: bytes, tenant: str | None, limits: RecordLimits) -> None:
    same(body, tenant, limits)


def test_the_demo_mix_and_its_aliases_are_identical_and_all_fast() -> None:
    """Every demo-mix line (ALB, NGINX, app records as the agent sends them) takes the C path
    (counted: none handed back), and the output is the Python loop's byte for byte."""
    lines = demo_lines(3000)
    body = b"\n".join(lines)
    for tenant in (None, "acme"):
        _, accepted, fallbacks, _ = ROWC.decode(body, RECEIVED, 1 << 20, 1000, 256 * 1024, 100, tenant and
                                                   tenant.encode(), True)
        assert (accepted, len(fallbacks)) == (3000, 0)
        same(body, tenant, RecordLimits())
    # the same records under other shippers' aliases: taken too (one key per field)
    aliased = b"\n".join(orjson.dumps({RENAMES.get(k, k): v for k, v in orjson.loads(line).items()})
                         for line in lines[:1000])
    _, accepted, fallbacks, _ = ROWC.decode(aliased, RECEIVED, 1 << 20, 1000, 256 * 1024, 100, None, True)
    assert (accepted, len(fallbacks)) == (1000, 0)
    same(aliased, None, RecordLimits())


def test_patterns_off_is_identical() -> None:
    body = b"\n".join(demo_lines(200))
    decoder.set_patterns(False)
    try:
        assert b'"pattern_id"' not in decoder.decode_ndjson_payload(body, RECEIVED, RecordLimits(), None, None)[0]
        same(body, None, RecordLimits())
    finally:
        decoder.set_patterns(True)


def test_the_gil_is_released_while_a_body_decodes() -> None:
    """Another Python thread runs while the C normaliser is inside a body: it sees a body in
    flight. With the GIL held for the whole body it never could (it runs no bytecode then)."""
    body = b"\n".join(DEMO * 20)  # 6,000 lines
    seen = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal seen
        while not stop.is_set():
            if ROWC.in_flight():
                seen += 1

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(500):  # a bound, not a clock: on a loaded machine it takes a few more
            ROWC.decode(body, RECEIVED, 1 << 20, 1000, 256 * 1024, 100, None, True)
            if seen:
                break
    finally:
        stop.set()
        watcher.join()
    assert seen > 0
    assert decoder.RELEASES_GIL is True


@pytest.mark.parametrize("line", [
    b'{"message":"m","level":"INFO","timestamp":"2026-11-25T03:51:07Z"}',
    b'{"msg":"m","severity":"warning","ts":1764043200123,"service.name":"s","hostname":"h","x":[1,{"y":null}]}',
    b'{"message":"caf\\u00e9 \\ud83d\\ude00 \\/ \\n","trace_id":"5759E988BD862E3FE1BE46A994272793","span_id":"AB"}',
    b'{"message":"m","http":{"status":503,"duration_ms":12,"route":"/r","method":"GET"},"f":1.50,"g":-0.0}',
    b'{"level":30,"message":"pino","tenant":"acme"}',
])
def test_common_shapes_are_taken(line: bytes) -> None:
    """Lines logharbor's own agent, parsers and sdk send are the C path's (counted), as the Python path."""
    _, accepted, fallbacks, _ = ROWC.decode(line, RECEIVED, 1 << 20, 1000, 256 * 1024, 100, None, True)
    assert (accepted, fallbacks) == (1, [])
    same(line, None, RecordLimits())


@pytest.mark.parametrize("line", [
    b'{"message":"m","message":"n"}', b'{"a":-0}', b'{"a":1e5}', b'{"a":12345678901234567890}',
    b'{"a":"\\ud800"}', b'{"m\\u0061":1}', b'{"msg":"a","message":"b"}', b'{"level":"bogus"}',
    b'{"attributes":{"a":1}}', b'{"service":{"name":"s"}}', b'{"timestamp":"2026-11-25T03:51:07+01:00"}',
    b'{"http":{"status":"200"}}', b'{"@t":"2026-11-25T03:51:07Z","@m":"x"}', b'{"http.status":200}',
    b'{"tenant":"other"}', b'{"a":0.000001}',
    b'{"version":"1.1","short_message":"gelf","level":3}', b'{"text":"t","record":{"message":"m"}}',
    b'{"pid":1,"hostname":"h","msg":"pino","level":30}', b'{"source":"s","msg":"m","time":"x","level":"INFO"}',
])
def test_unsure_shapes_are_handed_back(line: bytes) -> None:
    """What the C path is not sure of goes to the Python loop, which gives the same answer."""
    _, accepted, fallbacks, _ = ROWC.decode(line, RECEIVED, 1 << 20, 1000, 256 * 1024, 100, b"acme", True)
    assert accepted == 0 and len(fallbacks) == 1
    same(line, "acme", RecordLimits())


def test_errors_keep_their_line_numbers_between_fast_lines() -> None:
    good = b'{"message":"good"}'
    body = b"\xef\xbb\xbf" + b"\n".join([good, b"nope", b"", good, b"[1]", b"\xef\xbb\xbf" + good, good])
    _, accepted, errors = decoder.decode_ndjson_payload(body, RECEIVED, RecordLimits(), None, None)
    assert accepted == 3 and [line for line, _ in errors] == [2, 5, 6]
    same(body, None, RecordLimits())
