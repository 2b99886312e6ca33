"""The C normaliser (``_native/rowc.c``) attacked from outside its own generators: every body gives
the Python path's rows, accepted count and (line, error) pairs, and never crashes it.

- **drift**: every key the Python path knows (record.py's alias tables and server names, every
  name dialects.py ``_dialect_of`` asks about, read from its source) alone, in pairs and all
  together, under values of every shape: a name the C tables lack is a line stored differently
  (loguru's ``{"text", "record"}`` was one, added to dialects.py after rowc.c was written);
- **broken input**: a real line cut at every byte, escapes cut short at the end of the body,
  invalid UTF-8 of every kind, NUL, BOMs, CR/LF mixes, nesting around the C scanner's depth, runs
  of digits, long keys and values;
- **mutation**: demo-mix and hand-made lines with bytes flipped, inserted, deleted, keys and values
  spliced in (``LOGHARBOR_ROWC_FUZZ=50000`` runs more than the CI's few hundred);
- **threads**: bodies decoded at once by many threads, the pattern-id cache emptied first (misses
  racing), with a 1 µs switch interval: each body's result is the one it gets alone.
"""

from __future__ import annotations

import inspect
import itertools
import os
import random
import re
import sys
import threading

import pytest

from logharbor import dialects, record
from logharbor.server.engine.store import rows as python_rows
from logharbor.server.ingest import decoder
from logharbor.server.ingest.base import RecordLimits
from logharbor.server.ingest.ndjson import decode_ndjson_payload as python_payload
from logharbor.server.ingest.rowc_path import RowcDecoder

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(decoder.ROWC is None, reason=f"C normaliser not in use: {decoder.REASON}")]

RECEIVED = 1_764_043_200_123_456_789
LIMITS = [RecordLimits(), RecordLimits(max_fields=6, max_field_bytes=300, max_line_bytes=400, max_depth=4),
          RecordLimits(max_depth=31), RecordLimits(max_depth=33)]
FUZZ = int(os.environ.get("LOGHARBOR_ROWC_FUZZ", "300"))


def _outcome(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return "ok", fn(*args)
    except Exception as exc:  # a changed exception is a difference too
        return "error", (type(exc).__name__, str(exc))


def _differences(bodies, tenants=(None, "acme"), limits=(LIMITS[0],)):  # type: ignore[no-untyped-def]
    """The (body, tenant, limits) whose C outcome is not the Python one (with each fallback)."""
    rowc = decoder.COMPILED["rowc"]  # type: ignore[index]
    candidates = [decoder.ROWC.decode, RowcDecoder(rowc, python_payload, python_rows).decode]  # type: ignore[union-attr]
    found = []
    for body, tenant, lim in itertools.product(bodies, tenants, limits):
        expected = _outcome(python_payload, body, RECEIVED, lim, None, tenant)
        for candidate in candidates:
            if _outcome(candidate, body, RECEIVED, lim, None, tenant) != expected:
                found.append((body, tenant, lim))
                break
    return found


# -- drift: the names the Python path knows ---------------------------------------------------------

def _dialect_names() -> list[str]:
    source = inspect.getsource(dialects._dialect_of)
    names = re.findall(r'"([^"]+)" in present', source)
    names += [prefix + "x" for prefix in re.findall(r'startswith\("([^"]+)"\)', source)]
    assert len(names) >= 20, "dialects._dialect_of is no longer written as '\"key\" in present'"
    return names


KNOWN = sorted({*record._ALIASES, *record._SERVER_NAMES, *dialects.NESTED_KEYS, *_dialect_names(), "otel_severity"})
VALUES = ['"x"', '"ERROR"', '""', "null", "1700000000", "35", "1.5", '"2024-02-29T12:00:00Z"',
          '"0123456789abcdef0123456789abcdef"', '{"message":"m","level":{"name":"WARNING"},"name":"n"}',
          '{"seconds":1700000000}', "[1]", "true"]


def test_every_known_key_alone_and_in_pairs() -> None:
    bodies = [f'{{"{k}":{v},"message":"m"}}'.encode() for k in KNOWN for v in VALUES]
    pairs = itertools.combinations(KNOWN, 2)
    rng = random.Random(24)
    bodies += [f'{{"{a}":{rng.choice(VALUES)},"{b}":{rng.choice(VALUES)}}}'.encode() for a, b in pairs]
    assert _differences(bodies, tenants=(None,)) == []


def test_every_dialect_predicate_with_all_its_keys() -> None:
    """node and slog need four keys at once: every name _dialect_of asks about, together."""
    names = _dialect_names()
    bodies = []
    for value in VALUES:
        members = ",".join(f'"{k}":{value}' for k in names if not k.endswith("/x"))
        bodies.append(f"{{{members}}}".encode())
    # each predicate's keys with string values (the dialect's rewrite reads them)
    groups = [("@t", "@mt"), ("MESSAGE", "PRIORITY"), ("level_value", "logger_name"), ("ecs",),
              ("pid", "hostname", "msg", "level"), ("stacktrace", "ts"), ("source", "msg", "time", "level"),
              ("text", "record"), ("levelname",), ("httpRequest",), ("loggerName", "instant"),
              ("loggerName", "thrown"), ("loggerFqcn",), ("LogLevel", "Category"), ("LogLevel", "EventId"),
              ("fields", "target"), ("request", "duration", "logger"), ("resp_headers",), ("DownstreamStatus",)]
    for group in groups:
        for value in VALUES:
            members = ",".join(f'"{k}":{value}' for k in group)
            bodies.append(f'{{{members},"service":"s"}}'.encode())
    assert _differences(bodies, tenants=(None,)) == []


def test_every_documented_logger_line_is_stored_alike() -> None:
    """The loggers' own lines (tests/record/test_dialects.py DOCUMENTED): one body of all of them."""
    from tests.record.test_dialects import DOCUMENTED

    body = "\n".join(line for _, _, line, _ in DOCUMENTED).encode()
    assert _differences([body]) == []


def test_every_dialect_line_goes_back_to_python() -> None:
    """rowc.c takes no line of a logger dialect: every set of (up to four) names for which
    ``_dialect_of`` finds one, with no smaller such set inside, is handed back by the C path
    (loguru's and GELF's predicates came after rowc.c was written: this fails on a new one)."""
    rowc = decoder.COMPILED["rowc"]  # type: ignore[index]
    names = sorted(set(_dialect_names()))
    dialect_sets: list[tuple[str, ...]] = []
    for size in range(1, 5):
        for keys in itertools.combinations(names, size):
            if dialects._dialect_of(keys) is not None and not any(set(d) <= set(keys) for d in dialect_sets):
                dialect_sets.append(keys)
    assert len(dialect_sets) >= 12
    kept = []
    for keys in dialect_sets:
        body = ("{" + ",".join(f'"{k}":"x{i}"' for i, k in enumerate(keys)) + "}").encode()
        _, accepted, fallbacks, _ = rowc.decode(body, RECEIVED, 1 << 20, 1000, 1 << 18, 100, None, True)
        if accepted or len(fallbacks) != 1:
            kept.append(keys)
    assert kept == []


def test_every_level_name_and_http_field_of_the_python_tables() -> None:
    """rowc.c's copies of record.py's level aliases and HTTP fields, held to the tables themselves."""
    levels = [*record._LEVEL_ALIASES, *record.LEVELS, "info2", "INFO+2", " info", "ınfo"]
    bodies = [f'{{"{key}":"{spelling}","message":"m"}}'.encode()
              for key in ("level", "lvl", "severity_text") for name in levels
              for spelling in {name, name.upper(), name.title()}]
    bodies += [f'{{"level":{n},"message":"m"}}'.encode() for n in range(-1, 80, 3)]
    for name in record.HTTP_FIELDS:
        for value in ("0", "503", "65536", "-1", "1.50", "12", "18446744073709551615", '"GET"', '""', "null", "[1]"):
            bodies.append(f'{{"http":{{"{name}":{value},"x":1}},"message":"m"}}'.encode())
    assert _differences(bodies, tenants=(None,)) == []


def test_loguru_line_is_read_as_loguru() -> None:
    """The found case: rowc.c took this line itself (message "", INFO, the receive time)."""
    body = (b'{"text":"hello\\n","record":{"message":"hello","level":{"name":"ERROR","no":40},'
            b'"time":{"timestamp":1700000000.5}}}')
    assert _differences([body]) == []
    rows, accepted, errors = decoder.ROWC.decode(body, RECEIVED, RecordLimits(), None, None)  # type: ignore[union-attr]
    assert (accepted, errors) == (1, [])
    assert b'"level":"ERROR"' in rows and b'"message":"hello"' in rows


# -- broken input --------------------------------------------------------------------------------------

LINES = [
    b'{"message":"h\\u00e9llo \\ud83d\\ude00 \\"q\\" \\/","level":"warn","service":"api","http":{"status":503,'
    b'"duration_ms":1.50,"x":[1,{"y":null}]},"timestamp":"2024-02-29T12:00:00.123Z",'
    b'"trace_id":"0123456789abcdef0123456789ABCDEF","k":1.25,"n":-12}',
    '{"msg":"é😀","lvl":"ERROR","ts":1700000000123,"a":{"b":[true,false,null]},"tenant":"acme"}'.encode(),
]


def test_a_line_cut_at_every_byte() -> None:
    bodies = []
    for line in LINES:
        for i in range(len(line) + 1):
            bodies += [line[:i], line[:i] + b"\n" + line, b"\r\n" + line[:i] + b"\r"]
    assert _differences(bodies) == []


def test_escapes_and_utf8_cut_or_broken() -> None:
    tails = [b"\\", b"\\u", b"\\u1", b"\\u12", b"\\u123", b"\\ud800", b"\\ud800\\", b"\\ud800\\u",
             b"\\ud800\\udc", b"\\udc00", b"\\ud800\\u0041", b"\\x"]
    bad = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc2", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xed\xa0\x80",
           b"\xed\xbf\xbf", b"\xef\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80",
           b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff", b"\xf0\x9f\x98", b"\x00"]
    bodies = []
    for x in tails + bad:
        for shape in (b'{"message":"a%s', b'{"message":"a%s"}', b'{"k%s":1}', b'{"message":"%s"}\n{"message":"b"}'):
            body = shape.replace(b"%s", x)
            bodies += [body, b"\xef\xbb\xbf" + body]
    bodies += [b"", b"\n", b"{", b"\xef\xbb\xbf", b"\xef\xbb", b"\xef\xbb\xbf{}", b'{"message":"a"}\r\r\n\r{}',
               b'\x0b{"message":"a"}\x0c', b'\x1c{"message":"a"}', b'{"message":"a"}\xc2\x85',
               b'{"message":"x"}\n\xef\xbb\xbf{"message":"y"}', b'{"message":"a"}\x00']
    assert _differences(bodies) == []


def test_nesting_digits_and_sizes() -> None:
    bodies = []
    for d in (30, 31, 32, 33, 100, 101, 300, 20000):
        bodies += [b'{"a":' + b"[" * d + b"]" * d + b"}", b'{"http":' + b'{"b":' * d + b"1" + b"}" * d + b"}",
                   b'{"a":' + b"[" * d]
    for k in (17, 18, 19, 20, 400):
        for sign in (b"", b"-"):
            bodies += [b'{"a":' + sign + b"9" * k + b"}", b'{"a":' + sign + b"1" * k + b".5}",
                       b'{"ts":' + sign + b"1" * k + b"}", b'{"level":' + sign + b"5" * k + b"}",
                       b'{"a":0.' + b"0" * k + b"1}", b'{"a":1.' + b"0" * k + b"}"]
    bodies += [b'{"' + b"k" * 70000 + b'":1}', b'{"message":"' + b"\\n" * 40000 + b'"}',
               b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(1100)) + b"}",
               b'{"a":{' + b",".join(b'"k%d":%d' % (i, i) for i in range(64)) + b',"k0":2}}']
    assert _differences(bodies, limits=LIMITS) == []


# -- mutation ------------------------------------------------------------------------------------------

KEYS = [*KNOWN, "x", "http.x", "attr_x", "level_raw", "message_attribute"]
SPLICE = ['""', "null", "0", "-0", "1E5", "1.50", "0.1e1", "1e16", "5e-324", "-0.0", "1e22", "123456789012345678",
          "1234567890123456789", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
          '"1969-12-31T23:59:59Z"', '"2024-01-01T00:00:00.1234567890Z"', '"2024-01-01T00:00:00+01:00"',
          "1700000000000000", "1700000000000000000", '"1700000000"', '"wArNiNg"', "60", "70", "9",
          '{"status":500}', '{"duration_ms":-1}', '{"status":65536}', '"\\ud800"', '"00000000000000000000000000000000"',
          '"00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"', "0.00001", "123456789012345.0", '"acme"']


def _mutate(rng: random.Random, line: bytes) -> bytes:
    b = bytearray(line)
    for _ in range(rng.randint(1, 4)):
        i = rng.randint(0, len(b))
        op = rng.randint(0, 6)
        if op == 0 and b:
            b[min(i, len(b) - 1)] ^= 1 << rng.randint(0, 7)
        elif op == 1:
            b[i:i] = bytes([rng.choice([0, 0x22, 0x5C, 0x7B, 0x7D, 0x5B, 0x2C, 0x3A, 0x0D, 0x80, 0xC0, 0xED, 0xF5, 0xFF])])
        elif op == 2:
            del b[i:i + rng.randint(1, 3)]
        elif op == 3:
            b[i:i] = rng.choice([b"\\u", b"\\ud800", b"\xed\xa0\x80", b"\xc0\x80", b"\xe2\x82", b"\r\n", b"1e5", b"9" * 20])
        elif op == 4:
            del b[i:]
        elif op == 5:
            b[i:i] = rng.choice(SPLICE).encode()
        else:
            b[i:i] = f'"{rng.choice(KEYS)}":{rng.choice(SPLICE)},'.encode()
    return bytes(b)


def test_mutated_records() -> None:
    from bench.ingest import demo_mix

    rng = random.Random(FUZZ)
    real = demo_mix(200, seed=11) + LINES
    bodies = []
    for _ in range(FUZZ):
        lines = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.5:
                line = rng.choice(real)
            else:
                line = ("{" + ",".join(f'"{rng.choice(KEYS)}":{rng.choice(SPLICE)}'
                                       for _ in range(rng.randint(0, 5))) + "}").encode()
            lines.append(_mutate(rng, line) if rng.random() < 0.6 else line)
        bodies.append(rng.choice([b"\n", b"\r\n", b"\n\n"]).join(lines))
    found = _differences(bodies, tenants=(None, "acme", 'é"\\'), limits=LIMITS[:2])
    assert found == [], found[:3]


# -- threads -------------------------------------------------------------------------------------------

def test_threads_with_racing_cache_misses() -> None:
    from bench.ingest import demo_mix

    rng = random.Random(3)
    lines = demo_mix(400, seed=3)
    bodies = []
    for k in range(8):
        body = [rng.choice(lines) for _ in range(60)]
        body += [b'{"message":"user %d in %d","service":"s%d"}' % (rng.randint(0, 9), k, k % 3) for _ in range(20)]
        body += [b'{"message":"bad \xff"}', b"{nope"]
        rng.shuffle(body)
        bodies.append((b"\n".join(body), rng.choice([None, "acme"])))
    limits = RecordLimits()
    expected = [python_payload(b, RECEIVED, limits, None, t) for b, t in bodies]
    rowc = decoder.COMPILED["rowc"]  # type: ignore[index]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(3):
            rowc.forget()
            got: list[object] = [None] * len(bodies)

            def work(i: int, got: list[object] = got) -> None:
                got[i] = decoder.ROWC.decode(bodies[i][0], RECEIVED, limits, None, bodies[i][1])  # type: ignore[union-attr]

            threads = [threading.Thread(target=work, args=(i,)) for i in range(len(bodies))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert got == expected
    finally:
        sys.setswitchinterval(interval)
