"""The agent's compiled NGINX chunk path writes exactly the NDJSON of the Python path (hypothesis).

``formats/nginx_chunk.py`` hands a whole chunk of lines to ``_native/nginx_encode.c``, which writes
each record's JSON itself and gives the lines it does not take back to the Python parser and
encoder. Over chunks of generated lines (the differential test's odd values and mutations: quotes,
``\\x22``, invalid UTF-8, bad numbers and times, pre-1973 times, huge requests) and several sets of
shared fields, the payload must be byte for byte what ``parse`` + ``pipeline.encode`` write.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples
from tests.formats.test_formats_nginx_differential import FORMATS, lines
from tests.formats.test_formats_nginx_json import FORMATS as JSON_FORMATS
from tests.formats.test_formats_nginx_json import lines as json_lines

from logharbor.agent.pipeline import _TIME_KEYS, _fused_step, _parse_step, encode
from logharbor.agent.types import Chunk
from logharbor.formats.nginx import LOG_FORMATS, NginxParser, format_nginx_line
from logharbor.formats.nginx_chunk import chunk_encoder, native_module

pytestmark = pytest.mark.skipif(native_module() is None,
                                reason="logharbor._native.nginx_encode is not built (scripts/build_native.py)")

#: formats the C program expresses, beside the differential test's own
EXTRA = {
    "times": ('$msec "$request" $status rt=$request_time urt=$upstream_response_time '
              'uct=$upstream_connect_time [$time_iso8601] $request_id $http_x_request_id $pid '
              '$request_length $host $server_protocol $http_traceparent $http_x_amzn_trace_id', None),
    "tail_var": ('[$time_local] $status "$request_method $request_uri" $uri $body_bytes_sent '
                 '$bytes_sent $hostname $remote_user', None),
    "clash": ("$remote_addr $level $source $http $message $time $timestamp", None),
}
#: JSON formats (escape=json), as tests/formats/test_formats_nginx_json.py writes their lines
JSON = {f"json_{name}": (fmt, None) for name, fmt in JSON_FORMATS.items()}
ALL = {**FORMATS, **EXTRA, **JSON}
#: the shared fields of a chunk: a file source's, none, and ones named like record keys
METAS = [{"source": "file", "host": "web-1", "file": "/var/log/nginx/access.log"}, {}, {"source": "file"},
         {"host": "web-1", "env": "prod"}, {"source": "file", "level": "debug"},
         {"source": "stdin", "protocol": 2, "service": "edge"}]


def _parser(name: str) -> NginxParser:
    fmt, escape = ALL[name]
    return NginxParser(fmt, escape)  # type: ignore[arg-type]


PARSERS = {name: _parser(name) for name in ALL}
ENCODERS = {name: chunk_encoder(p, _TIME_KEYS) for name, p in PARSERS.items()}


def _both(name: str, chunk_lines: list[str], meta: dict[str, object], time_ns: int) -> tuple[bytes, bytes, int]:
    """(Python payload, compiled payload, lines the compiled path handed back)."""
    parser, encoder = PARSERS[name], ENCODERS[name]
    assert encoder is not None
    python = encode(_parse_step(parser)(Chunk(list(chunk_lines), None, 0, dict(meta), None, time_ns)))
    handed = 0
    original = encoder.encode

    def counting(lines_: list[str], head: bytes, t: int, fallback: object) -> bytes:
        def count(line: str) -> bytes:
            nonlocal handed
            handed += 1
            return fallback(line)  # type: ignore[operator,no-any-return]
        return original(lines_, head, t, count)

    encoder.encode = counting  # type: ignore[method-assign]
    try:
        fused = encode(_fused_step(parser, encoder)(Chunk(list(chunk_lines), None, 0, dict(meta), None, time_ns)))
    finally:
        del encoder.encode
    assert fused.count == python.count == len(chunk_lines)
    return python.payload, fused.payload, handed


def test_the_formats_meant_get_a_program() -> None:
    """The presets and the extra formats run the C path; a lazy or backtracking group does not."""
    for name in ("combined", "main", "main_json_escape", "main_no_escape", "twice", *EXTRA, *JSON):
        assert ENCODERS[name] is not None, name
    assert ENCODERS["upstream"] is None  # "$remote_addr:$remote_port": the regex backtracks
    assert ENCODERS["ipv6_port"] is None
    # JSON templates other than NGINX's compact one-variable-per-key shape stay in Python
    # (a spaced template, a literal value, text around a variable, an unquoted text or time
    # variable, a record key guard checks as a time: $time, $date)
    for fmt in ('{"a": "$status"}', '{"a":"$status","app":"edge"}', '{"a":"x$status","b":"$remote_addr"}',
                '{"a":$remote_addr}', '{"a":$msec}', '{"t":"$time","b":"$status"}', '{"d":"$date"}'):
        assert chunk_encoder(NginxParser(fmt), _TIME_KEYS) is None, fmt
    # more variables than the C program holds (256 tokens): the Python path, not an error at start
    many = " ".join(f"$http_x_h{i}" for i in range(140))
    many_json = "{" + ",".join(f'"k{i}":"$http_x_h{i}"' for i in range(140)) + "}"
    for fmt in (many, many_json):
        assert chunk_encoder(NginxParser(fmt), _TIME_KEYS) is None


@pytest.mark.parametrize("name", [n for n in ALL if ENCODERS.get(n) is not None])
@settings(max_examples=examples(40), deadline=None)
@given(data=st.data())
def test_chunk_payload_matches_the_python_path(name: str, data: st.DataObject) -> None:
    # the agent's lines are decoded with "replace" (sources/tailed.split_lines): no surrogates
    drawn = json_lines(name[5:]) if name in JSON else lines(name, ALL)
    chunk_lines = [line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                   for line in data.draw(st.lists(drawn, min_size=1, max_size=4))]
    meta = data.draw(st.sampled_from(METAS))
    time_ns = data.draw(st.integers(0, 4 * 10**18))
    python, fused, _ = _both(name, chunk_lines, meta, time_ns)
    assert fused == python


@pytest.mark.parametrize("name", ["combined", "main", "times", "tail_var", "json_json"])
def test_well_formed_lines_are_written_by_the_c_code(name: str) -> None:
    """Clean lines never reach the fallback (else the comparison above proves little), hour
    after hour, every second of a minute (the hour cache), and they match the Python path."""
    rng = random.Random(5)
    fmt = LOG_FORMATS.get(ALL[name][0], ALL[name][0])
    escape = "json" if name in JSON else None
    base = 1_793_534_400_000_000_000
    chunk_lines = []
    for i in range(400):
        ns = base + i * 7_300_000_000_000 // 400 + rng.randrange(60) * 1_000_000_000
        chunk_lines.append(format_nginx_line({
            "remote_addr": f"10.0.{i % 256}.1", "remote_user": "bob" if i % 3 else None,
            "time_local": ns, "time_iso8601": ns, "msec": ns,
            "request": f"GET /p/{i}?q=\"x\" HTTP/1.1" if i % 2 else f"POST /p/{i}",
            "request_method": "GET", "request_uri": f"/u/{i}", "uri": "/u",
            "status": rng.choice((200, 304, 404, 500)), "body_bytes_sent": i, "bytes_sent": i + 100,
            "http_referer": "-", "http_user_agent": "curl/8.5.0", "http_x_forwarded_for": "1.2.3.4",
            "request_time": rng.randrange(3000) / 1000, "upstream_response_time": f"{i % 7 / 1000:.3f}",
            "upstream_connect_time": "0.001", "request_id": f"{i:032x}", "http_x_request_id": "r-1",
            "http_x_amzn_trace_id": "Root=1-5759e988-bd862e3fe1be46a994272793", "pid": 7,
            "request_length": 120, "host": "shop.example", "server_protocol": "HTTP/1.1",
            "http_traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "hostname": "web-1",
        }, fmt, escape).replace("\\x22", "'").replace('\\"', "'"))
    for meta in METAS:
        python, fused, handed = _both(name, chunk_lines, meta, base)
        assert fused == python
        if ENCODERS[name].head(meta) is not None:  # type: ignore[union-attr]
            assert handed == 0, (name, meta)


def test_lines_the_c_code_leaves_to_python() -> None:
    """Each kind of line the C code hands back, in one chunk, keeps its place and its bytes."""
    good = '10.0.0.1 - - [25/Nov/2026:01:02:03 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl"'
    chunk_lines = [
        good,
        good.replace("curl", "caf\u00e9"),                       # not ASCII
        good.replace("curl", "a\\x22b"),                          # a backslash (escapes)
        good.replace("curl", "a\tb"),                             # a control character
        good.replace("200", "0200000000000000000"),               # 19 digits
        good.replace("200", "2x0"),                               # not a number: parse_error
        good.replace("25/Nov/2026", "01/Jan/1970"),               # before 1973: RFC 3339 text
        good.replace("25/Nov/2026", "25/Foo/2026"),               # unknown month
        good.replace("01:02:03", "01:62:03"),                     # minute out of range
        good.replace("01:02:03", "01:02:60"),                     # a leap second (taken, as 59)
        good + " extra",                                          # does not match
        "garbage",
        good,
    ]
    python, fused, handed = _both("combined", chunk_lines, METAS[0], 1_800_000_000_000_000_000)
    assert fused == python
    assert handed == 10
    assert fused.count(b"\n") == len(chunk_lines)


def test_variables_named_like_record_keys() -> None:
    """``$level``, ``$source``, ``$http``, ``$message``, ``$time``, ``$timestamp`` as attributes: a
    key set twice keeps its first place, the status level and the http object replace the
    variable's value, a time key stops the chunk's timestamp being added — as the dicts do."""
    chunk_lines = ["1.2.3.4 warn kafka x hello 12 2026-11-25T01:00:00Z", "- - - - - - -",
                   '1.2.3.4 - "q" - - - -', "1.2.3.4 a b c d e f g"]
    for meta in METAS:
        python, fused, _ = _both("clash", chunk_lines, meta, 1_800_000_000_000_000_000)
        assert fused == python


def test_iso8601_times_across_offsets_and_bounds() -> None:
    """``$time_iso8601`` through the C hour cache: offsets, the 1970/1973 and 2262 edges, a leap
    second, minutes out of range, an hour seen again after another — as the Python path reads them."""
    times = ["2026-11-25T01:02:03+00:00", "2026-11-25T01:59:60+05:30", "2026-11-25T01:02:04-08:00",
             "2026-11-25T01:02:05+00:00", "1970-01-01T00:30:00+00:45", "1970-01-01T00:16:40+00:00",
             "1973-03-03T09:46:40+00:00", "1973-03-03T09:46:39+00:00", "2262-04-11T23:47:16+00:00",
             "2262-04-11T23:47:17+00:00", "2262-04-11T23:59:59-01:00", "2026-11-25T01:60:00+00:00",
             "2026-11-25T24:00:00+00:00", "2026-02-29T01:00:00+00:00", "2028-02-29T01:00:00+14:00",
             "2026-11-25T01:02:03+0000", "2026-11-25T01:02:03Z", "2026-11-25T01:02:03+00:00"]
    for name in ("json_json", "times"):
        fmt = LOG_FORMATS.get(ALL[name][0], ALL[name][0])
        chunk_lines = [format_nginx_line({"time_iso8601": 0, "status": 200, "request": "GET / HTTP/1.1",
                                          "body_bytes_sent": 1, "request_time": 0.5,
                                          "msec": 1_793_534_400_000_000_000},
                                         fmt, "json" if name in JSON else None).replace(
            "1970-01-01T00:00:00+00:00", t) for t in times]
        python, fused, handed = _both(name, chunk_lines, METAS[0], 1_800_000_000_000_000_000)
        assert fused == python, name
        assert 0 < handed < len(times)


def test_two_sources_encoding_at_once() -> None:
    """Two sources' threads in the C code together, switching inside its callbacks (a new hour on
    every line, seconds converted by Python): each chunk is still its own lines' bytes."""
    import sys
    import threading

    fmt = LOG_FORMATS["main"]
    chunks = []
    for n in range(2):
        chunk_lines = [format_nginx_line({
            "remote_addr": f"10.{n}.0.{i % 250}", "time_local": 1_793_534_400_000_000_000 + i * 3_600_000_000_000,
            "request": f"GET /{n}/{i} HTTP/1.1", "status": 200 + n, "body_bytes_sent": i,
            "request_time": i / 1000, "upstream_response_time": f"{(i * 7 + n) / 1000:.3f}"}, fmt)
            for i in range(300)]
        chunks.append(chunk_lines)
    expected = [_both("main", c, METAS[0], 1_800_000_000_000_000_000)[0] for c in chunks]
    got: list[list[bytes]] = [[], []]

    def run(n: int) -> None:
        parser = NginxParser("main")
        encoder = chunk_encoder(parser, _TIME_KEYS)
        assert encoder is not None
        for _ in range(20):
            chunk = Chunk(list(chunks[n]), None, 0, dict(METAS[0]), None, 1_800_000_000_000_000_000)  # type: ignore[arg-type]
            got[n].append(encode(_fused_step(parser, encoder)(chunk)).payload)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    for n in range(2):
        assert got[n] == [expected[n]] * 20


def test_a_cache_cleared_mid_line_leaves_the_line_its_values() -> None:
    """A seconds value the line has read stays its own until the line is written, though a callback
    later in the line runs the same program (another thread sharing it, here a re-entrant call)
    over enough new values to clear that cache and the freed memory is taken by other bytes: the
    C code kept only a pointer into the cache (a use after free; the other bytes in the payload)."""
    import orjson

    from logharbor.formats.nginx_chunk import _REC_FIXED

    module = native_module()
    rec = (*_REC_FIXED, "a", "b")
    a, b = len(_REC_FIXED), len(_REC_FIXED) + 1
    held: list[bytes] = []

    def a_ms(value: str) -> bytes:
        return (value * 8)[:8].encode()  # a fresh 8-byte object per value, like orjson's output

    def b_ms(value: str) -> bytes:
        if value == "x" and not held:
            held.append(b"")
            # 8193 new values of "a": its cache (8192 at most) is cleared, freeing the first line's
            module.encode_lines(program, [f"{i} y" for i in range(1, 8194)], b"{", 0, lambda line: b"")
            held.extend(bytes([0x39]) * 8 for _ in range(50_000))  # the freed blocks reused
        return b"2"

    tokens = ((1, 0, ord(" "), 7, a, a_ms), (0, b" "), (1, 1, 0, 7, b, b_ms))
    program = module.Program((tokens, tuple(orjson.dumps(n) + b":" for n in rec), (False,) * len(rec),
                              tuple(orjson.dumps(n) + b":" for n in ("method", "path", "status")), b'"nginx"'))
    out = module.encode_lines(program, ["7 x"], b"{", 5, lambda line: b"")
    assert held, "the callback did not run the program again"
    assert out == b'{"source":"nginx","a":77777777,"b":2,"message":"7 x","timestamp":5}\n'
