"""The inlined NGINX text-format parser returns exactly what the reference one does (hypothesis).

``formats/nginx.py`` generates straight-line code with the handlers inlined, the backslash test
hoisted to the line and ``_finish`` folded in, for speed; ``formats/nginx_reference.py`` keeps the
generator as it was. Over generated lines (written by ``format_nginx_line`` from odd values:
``\\x22`` and raw quotes in user agents, ``-`` and empty fields, IPv6, huge request lines,
invalid UTF-8, bad numbers and times) and over mutations of them, both must give the same record:
same keys in the same order, same values of the same types (compared by ``repr``).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.formats.nginx import (
    LOG_FORMATS,
    NginxParser,
    _compiled_factories,
    compile_log_format,
    factory_source,
    format_nginx_line,
    generate,
    source_key,
)
from logharbor.formats.nginx_reference import generate_reference

UPSTREAM = ("log_format upstream_time '$remote_addr:$remote_port $host \"$request\" '\n"
            "  '$status $bytes_sent $request_length $msec $upstream_status $upstream_addr '\n"
            "  'uct=$upstream_connect_time \"$http_x_amzn_trace_id\" $hostname $http_traceparent';")
FORMATS: dict[str, tuple[str, str | None]] = {
    "combined": ("combined", None),
    "main": ("main", None),
    "main_json_escape": ("main", "json"),
    "main_no_escape": ("main", "none"),
    "upstream": (UPSTREAM, None),
    "ipv6_port": ("$remote_addr:$remote_port [$time_local] $status", None),
    "twice": ('$remote_addr "$request" $status $remote_addr "$request_id" $http_x_request_id $uri '
              "$request_uri $request_method $server_protocol", None),
}


def _parsers(fmt: str, escape: str | None) -> tuple[NginxParser, ...]:
    """The parser as built (the Cython copy for a preset when built), the Python path, and the
    reference."""
    built = NginxParser(fmt, escape)  # type: ignore[arg-type]
    python = NginxParser(fmt, escape)  # type: ignore[arg-type]
    compiled = compile_log_format(python.format)[0]
    python.parse, native = generate(compiled, python._unescape, allow_native=False)  # type: ignore[method-assign,arg-type]
    assert not native
    ref = NginxParser(fmt, escape)  # type: ignore[arg-type]
    ref.parse = generate_reference(compiled, ref._unescape)  # type: ignore[method-assign]
    return built, python, ref


PARSERS = {name: _parsers(*spec) for name, spec in FORMATS.items()}

ODD = st.sampled_from([
    "-", "", " ", '"', '\\"', "\\x22", "\\x5C", "\\\\", "\\", "\\xZZ", "\\xC3\\xA9", "\\xFF\\xFE",
    "\ufffd", "é", "Mozilla/5.0 (X11; \"Linux\")", 'a "quoted" ua', "2001:db8::1", "::1",
    "[::1]:443", "0", "00", "200", "399", "400", "499", "500", "503", "-1", "+5", "1_000", "9" * 19, "٣", "1.5", "nan", "inf", "1e3", "1e306", "0.001, 0.003 : 0.002",
    "200, 502", "GET / HTTP/1.1", "GET /", "GET", "GET /a b HTTP/1.1", "01/Nov/2026:12:00:60 +0000",
    "31/Feb/2026:12:00:00 +0000", "01/Nov/2026:12:00:00 +1400", "1793534400.123", "2026-11-01T12:00:00+00:00",
    "Root=1-5759e988-bd862e3fe1be46a994272793", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
])
#: what a decoded line can hold that no formatter writes: invalid UTF-8 read with surrogateescape
RAW = st.sampled_from(["\udcff", "\udcc3\udca9", "\x00", "\n", "\t"])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30) | st.text(max_size=10)
VALUE = ODD | TEXT | st.integers(0, 10**20) | st.floats(0, 1e6, allow_nan=False) | st.builds(
    lambda n, c: "GET /" + c * n + " HTTP/1.1", st.integers(1000, 20_000), st.sampled_from("a\"\\ x"))
NAMES = ["remote_addr", "remote_user", "time_local", "request", "status", "body_bytes_sent", "http_referer",
         "http_user_agent", "http_x_forwarded_for", "request_time", "upstream_response_time", "request_id",
         "http_x_amzn_trace_id", "remote_port", "host", "bytes_sent", "request_length", "msec",
         "upstream_status", "upstream_addr", "upstream_connect_time", "hostname", "http_traceparent",
         "http_x_request_id", "uri", "request_uri", "request_method", "server_protocol"]
#: well-formed values, so that most lines parse and the odd value sits among good ones
TOKEN = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Z", "Cc"), exclude_characters='"]'),
                min_size=1, max_size=20)
COUNT = st.integers(0, 10**6)
SECONDS = st.floats(0, 100, allow_nan=False)
WELL_FORMED: dict[str, st.SearchStrategy[object]] = {
    "status": st.integers(100, 599), "time_local": st.integers(0, 4 * 10**18), "msec": st.integers(0, 4 * 10**18),
    "request": st.builds(lambda m, p, v: f"{m} {p} {v}", st.sampled_from(["GET", "POST"]), TEXT,
                         st.sampled_from(["HTTP/1.1", "HTTP/2.0"])),
    "body_bytes_sent": COUNT, "bytes_sent": COUNT, "request_length": COUNT, "remote_port": COUNT,
    "upstream_status": st.integers(100, 599), "request_time": SECONDS, "upstream_response_time": SECONDS,
    "upstream_connect_time": SECONDS,
}


@st.composite
def lines(draw: st.DrawFn, name: str, formats: dict[str, tuple[str, str | None]] = FORMATS) -> str:
    """A line of format ``name`` (of ``formats``) from odd values, sometimes mutated afterwards."""
    fmt, escape = formats[name]
    # mostly well-formed values (one in 8 odd), one in 10 variables missing (written as "-")
    values = {n: draw(VALUE if draw(st.integers(0, 7)) == 0 else WELL_FORMED.get(n, TOKEN))
              for n in NAMES if draw(st.integers(0, 9))}
    line = format_nginx_line(values, LOG_FORMATS.get(fmt, fmt), escape)  # type: ignore[arg-type]
    for _ in range(draw(st.integers(0, 2)) // 2 * draw(st.integers(1, 2))):
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(ODD | RAW | TEXT) + line[at + draw(st.integers(0, 3)):]
    return line


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=examples(300), deadline=None)
@given(data=st.data())
def test_inlined_parser_matches_the_reference(name: str, data: st.DataObject) -> None:
    built, python, ref = PARSERS[name]
    line = data.draw(lines(name))
    expected = repr(ref.parse(line))
    assert repr(python.parse(line)) == expected
    assert repr(built.parse(line)) == expected


def test_the_parsers_compared_are_the_ones_meant() -> None:
    """Guard against the differential test comparing the reference with itself, and against a
    native build that is never used: when ``logharbor._native.nginx_parsers`` is built (scripts/
    build_native.py), the presets run their compiled copy; a custom format never does."""
    built, python, ref = PARSERS["combined"]
    assert python.parse.__code__.co_filename == "<nginx log_format>"
    assert ref.parse.__code__.co_filename == "<nginx log_format reference>"
    factories = _compiled_factories()
    for name, (parser, _, _) in PARSERS.items():
        source, _ = factory_source(compile_log_format(parser.format)[0], parser._unescape)
        # a build of these very sources is used; a stale one (or none) is not
        assert parser.native == (source_key(source) in factories), name
        assert parser.native == (not parser.parse.__code__.co_filename.startswith("<")), name
    assert not PARSERS["upstream"][0].native
    line = '::1 - - [01/Nov/2026:12:34:56 +0000] "GET /x HTTP/1.1" 404 0 "-" "a\\x22b"'
    assert repr(built.parse(line)) == repr(python.parse(line)) == repr(ref.parse(line))
    assert built.parse(line)["http"]["user_agent"] == 'a"b'
