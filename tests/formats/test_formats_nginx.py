"""NGINX access logs: presets, log_format strings compiled to parsers, escapes, the error log,
bad lines and config errors named at build time."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.formats import ParserConfigError, build_parser
from logharbor.formats.nginx import LOG_FORMATS, compile_log_format, format_nginx_line
from logharbor.formats.nginx_vars import parse_time_local
from logharbor.record import normalize, parse_timestamp

COMBINED = ('203.0.113.7 - alice [01/Nov/2026:12:34:56 +0100] "POST /api/orders?id=42 HTTP/1.1" 502 612 '
            '"https://shop.example/cart" "Mozilla/5.0 (X11; Linux x86_64)"')


def test_combined() -> None:
    raw = build_parser("nginx").parse(COMBINED)
    assert raw == {
        "source": "nginx", "remote_user": "alice", "timestamp": 1_793_532_896_000_000_000,
        "message": "POST /api/orders?id=42 HTTP/1.1", "protocol": "HTTP/1.1", "level": "ERROR",
        "http": {"client_ip": "203.0.113.7", "method": "POST", "path": "/api/orders?id=42", "status": 502,
                 "bytes_sent": 612, "referer": "https://shop.example/cart",
                 "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"},
    }
    rec = normalize(raw, received_ns=0)
    assert rec["attributes"] == {"remote_user": "alice", "protocol": "HTTP/1.1"}


def test_main_with_extras() -> None:
    line = ('10.0.0.1 - - [01/Nov/2026:12:00:00 +0000] "GET /a HTTP/2.0" 404 0 "-" "curl/8.5.0" '
            '"198.51.100.2, 10.0.0.9" '
            'rt=1.234 urt="0.500, 0.700" rid=0f1e2d3c4b5a69788796a5b4c3d2e1f0 '
            'trace="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"')
    raw = build_parser("nginx", format="main").parse(line)
    rec = normalize(raw, received_ns=0)
    assert rec["http"]["duration_ms"] == 1234.0
    assert rec["attributes"]["upstream_response_time_ms"] == 1200.0
    assert rec["attributes"]["upstream_response_time"] == "0.500, 0.700"
    assert rec["attributes"]["x_forwarded_for"] == "198.51.100.2, 10.0.0.9"
    assert rec["request_id"] == "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert rec["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert rec["level"] == "WARN"


def test_json_escape_format() -> None:
    line = format_nginx_line({"time_iso8601": "2026-11-01T12:00:00+00:00", "remote_addr": "::1",
                              "request": "GET /x HTTP/1.1", "status": 200, "body_bytes_sent": 10,
                              "request_time": 0.002, "http_user_agent": 'a "b" \\ c\u00e9',
                              "request_id": "r1"}, "json")
    raw = build_parser("nginx", format="json").parse(line)
    assert raw["http"]["user_agent"] == 'a "b" \\ c\u00e9'
    assert raw["http"]["client_ip"] == "::1" and raw["http"]["duration_ms"] == 2.0
    assert raw["timestamp"] == 1_793_534_400_000_000_000 and raw["request_id"] == "r1"
    assert "remote_user" not in raw  # empty values are absent


def test_custom_log_format_directive_with_types() -> None:
    directive = """log_format upstream_time '$remote_addr:$remote_port $host "$request" '
                   '$status $bytes_sent $request_length $msec $upstream_status $upstream_addr '
                   'uct=$upstream_connect_time "$http_x_amzn_trace_id" $hostname';"""
    line = ('10.1.2.3:55555 api.example "GET /v1 HTTP/1.1" 200 1234 321 1793534400.123 200 10.0.0.5:9092 '
            'uct=0.001 "Root=1-5759e988-bd862e3fe1be46a994272793" web-3')
    raw = build_parser("nginx", format=directive).parse(line)
    assert raw["timestamp"] == 1_793_534_400_123_000_000
    assert raw["remote_port"] == 55555 and raw["request_length"] == 321 and raw["upstream_status"] == 200
    assert raw["vhost"] == "api.example" and raw["host"] == "web-3"
    assert raw["http"]["bytes_sent"] == 1234 and raw["upstream_addr"] == "10.0.0.5:9092"
    assert raw["upstream_connect_time_ms"] == 1.0
    assert normalize(raw, received_ns=0)["trace_id"] == "5759e988bd862e3fe1be46a994272793"


def test_ipv6_address_before_a_colon() -> None:
    parser = build_parser("nginx", format="$remote_addr:$remote_port [$time_local] $status")
    raw = parser.parse("2001:db8::1:50000 [01/Nov/2026:12:00:00 +0000] 204")
    assert raw["http"] == {"client_ip": "2001:db8::1", "status": 204} and raw["remote_port"] == 50000


def test_json_directive_escape_is_detected() -> None:
    directive = "log_format j escape=json '{\"t\":\"$msec\",\"s\":$status,' '\"u\":\"$request_uri\"}';"
    raw = build_parser("nginx", format=directive).parse('{"t":"1793534400.5","s":301,"u":"/old","extra":1}')
    assert raw["http"] == {"status": 301, "path": "/old"}
    assert raw["extra"] == 1 and raw["level"] == "INFO"
    assert raw["message"] == '{"t":"1793534400.5","s":301,"u":"/old","extra":1}'


def test_default_escaping_of_utf8_and_controls() -> None:
    line = format_nginx_line({"remote_addr": "1.2.3.4", "time_local": 0, "request": "GET /caf\u00e9 HTTP/1.1",
                              "status": 200, "body_bytes_sent": 1, "http_user_agent": "tab\there"})
    assert "\\xC3\\xA9" in line and "\\x09" in line
    raw = build_parser("nginx").parse(line)
    assert raw["http"]["path"] == "/caf\u00e9" and raw["http"]["user_agent"] == "tab\there"


def test_request_that_is_not_http() -> None:
    line = '1.2.3.4 - - [01/Nov/2026:12:00:00 +0000] "\\x16\\x03\\x01\\x00" 400 157 "-" "-"'
    raw = build_parser("nginx").parse(line)
    assert raw["http"]["status"] == 400 and "method" not in raw["http"]
    assert raw["message"] == "\x16\x03\x01\x00"
    normalize(raw, received_ns=0)


@pytest.mark.parametrize("line,reason", [
    ("", "does not match"),
    ("not an access log line", "does not match"),
    (COMBINED.replace("502", "5x2"), "field"),
    (COMBINED.replace("01/Nov/2026", "01/Foo/2026"), "month"),
    (COMBINED.replace("01/Nov/2026:12:34:56", "41/Nov/2026:12:34:56"), "day"),
])
def test_bad_lines_are_kept(line: str, reason: str) -> None:
    raw = build_parser("nginx").parse(line)
    assert raw == {"message": line, "parse_error": raw["parse_error"]}
    assert reason in raw["parse_error"]


def test_bad_json_lines_are_kept() -> None:
    parser = build_parser("nginx", format="json")
    for line in ("{", "[1]", '{"status":"abc"}'):
        raw = parser.parse(line)
        assert raw["message"] == line and raw["parse_error"]


@pytest.mark.parametrize("options,names", [
    ({"format": "just text"}, "format"),
    ({"format": '{"a": $x'}, "format"),
    ({"format": "log_format x ;"}, "format"),
    ({"format": "combined", "escape": "xml"}, "escape"),
    ({"format": "error", "timezone": "Mars/Olympus"}, "timezone"),
    ({"fromat": "combined"}, "fromat"),
])
def test_config_errors_name_the_option(options: dict, names: str) -> None:
    with pytest.raises(ParserConfigError, match=f"option '{names}'"):
        build_parser("nginx", **options)


def test_every_preset_compiles() -> None:
    for name, fmt in LOG_FORMATS.items():
        compiled, escape = compile_log_format(fmt)
        assert compiled
        assert escape == ("json" if name == "json" else "default")


ERROR_LINES = [
    ('2026/11/01 12:00:00 [error] 123#0: *5 upstream timed out (110: Connection timed out) while reading '
     'response header from upstream, client: 10.0.0.1, server: shop.example, '
     'request: "POST /api/pay HTTP/1.1", '
     'upstream: "http://127.0.0.1:9093/api/pay", host: "shop.example", referrer: "https://shop.example/cart"',
     {"level": "error", "connection": 5, "pid": 123, "tid": 0, "server": "shop.example",
      "upstream": "http://127.0.0.1:9093/api/pay", "vhost": "shop.example",
      "message": "upstream timed out (110: Connection timed out) while reading response header from upstream",
      "http": {"client_ip": "10.0.0.1", "method": "POST", "path": "/api/pay",
               "referer": "https://shop.example/cart"}}),
    ("2026/11/01 12:00:00 [crit] 9#9: pwrite() \"/var/cache/x\" failed (28: No space left on device)",
     {"level": "crit", "pid": 9, "message": 'pwrite() "/var/cache/x" failed (28: No space left on device)'}),
    ("2026/11/01 12:00:00 [warn] 7#7: *1 a client request body is buffered to a temporary file "
     "/var/cache/nginx/client_temp/0000000001, client: 2001:db8::5, server: _, "
     "request: \"PUT /up HTTP/2.0\", "
     'host: "x"', {"level": "warn", "http": {"client_ip": "2001:db8::5", "method": "PUT", "path": "/up"}}),
]


@pytest.mark.parametrize("line,expected", ERROR_LINES)
def test_error_log(line: str, expected: dict) -> None:
    raw = build_parser("nginx", format="error").parse(line)
    for key, value in expected.items():
        assert raw[key] == value, key
    rec = normalize(raw, received_ns=0)
    assert rec["timestamp"] == 1_793_534_400_000_000_000
    assert rec["level"] in ("ERROR", "FATAL", "WARN")


def test_error_log_timezone_and_bad_lines() -> None:
    parser = build_parser("nginx", format="error", timezone="Europe/Paris")
    raw = parser.parse("2026/11/01 13:00:00 [notice] 1#1: signal process started")
    assert raw["timestamp"] == 1_793_534_400_000_000_000
    assert normalize(raw, received_ns=0)["level"] == "INFO"
    bad = parser.parse("2026/13/01 13:00:00 [notice] 1#1: x")
    assert bad["message"].startswith("2026/13/01") and "time" in bad["parse_error"]
    assert parser.parse("hello")["parse_error"]


def test_escape_none_and_a_variable_used_twice() -> None:
    parser = build_parser("nginx", format='$status $status "$request" $request_length', escape="none")
    raw = parser.parse('404 404 "GET /a\\x20b HTTP/1.1" 77')
    assert raw["http"] == {"status": 404, "method": "GET", "path": "/a\\x20b"}
    assert raw["request_length"] == 77
    listed = parser.parse('404 404 "GET / HTTP/1.1" 1, 2')
    assert listed["request_length"] == "1, 2"  # an integer variable NGINX wrote as a list stays text
    assert parser.parse('4x4 404 "GET / HTTP/1.1" 1')["parse_error"].startswith("nginx field")


@settings(max_examples=examples(300), deadline=None)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 12, 31)),
       st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_time_local_matches_the_rfc3339_parser_for_any_time_and_zone(moment: datetime, offset_min: int) -> None:
    """The per-hour cache of ``$time_local`` gives what the full parser gives, in any zone."""
    sign = "-" if offset_min < 0 else "+"
    hh, mm = divmod(abs(offset_min), 60)
    text = moment.strftime("%d/%b/%Y:%H:%M:%S ") + f"{sign}{hh:02d}{mm:02d}"
    iso = moment.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{hh:02d}:{mm:02d}"
    assert parse_time_local(text) == parse_timestamp(iso)
    assert parse_time_local(text) == parse_timestamp(iso)  # the second time from the cache


@pytest.mark.parametrize("bad", ["01/Nov/2026:12:60:00 +0100", "01/Nov/2026:12:0a:00 +0100",
                                 "30/Feb/2026:12:00:00 +0100", "01/Xyz/2026:12:00:00 +0100",
                                 "01/Nov/2026:25:00:00 +0100", "01/Nov/2026 12:00:00 +0100", ""])
def test_time_local_rejects_what_is_not_a_time(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_time_local(bad)


@pytest.mark.parametrize(("fmt", "line"), [
    ("main", '10.0.0.1 - - [01/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 200 0 "-" "c" "-" rt=1e306 urt="-" '
             'rid=x trace="-"'),
    ("main", '10.0.0.1 - - [01/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 200 0 "-" "c" "-" rt=1 urt="1e306" '
             'rid=x trace="-"'),
    ("main", '10.0.0.1 - - [01/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 200 0 "-" "c" "-" rt=1 '
             'urt="1e308, 1e308" rid=x trace="-"'),
    ("json", '{"time":"2026-11-01T12:00:00+00:00","status":200,"request_time":1e306}'),
])
def test_seconds_whose_milliseconds_overflow_keep_the_line(fmt: str, line: str) -> None:
    """``1e306`` s is a finite float, its ms are inf: normalize rejects inf, so the parser must not
    return it (the record would fail downstream); the line is kept with the reason instead."""
    raw = build_parser("nginx", format=fmt).parse(line)
    assert raw["message"] == line
    assert "overflow" in raw["parse_error"] or "finite" in raw["parse_error"]
    normalize(raw, received_ns=0)


@pytest.mark.parametrize(("line", "ns"), [
    ('203.0.113.7 - - [01/Jan/1970:00:00:20 +0000] "GET / HTTP/1.1" 200 1 "-" "c"', 20 * 10**9),
    ('203.0.113.7 - - [01/Jan/1970:00:16:40 +0000] "GET / HTTP/1.1" 200 1 "-" "c"', 10**12),
])
def test_times_before_1973_keep_their_instant(line: str, ns: int) -> None:
    """normalize reads an integer timestamp by its magnitude, so 1e12 ns (1970) would be read as
    ms (2001) and 2e10 ns as s (rejected): the parser says such times as RFC 3339 text."""
    raw = build_parser("nginx").parse(line)
    assert "parse_error" not in raw
    assert normalize(raw, received_ns=0)["timestamp"] == ns


def test_error_log_time_before_1973_keeps_its_instant() -> None:
    raw = build_parser("nginx", format="error").parse("1970/01/01 00:16:40 [error] 1#0: *1 boom")
    assert normalize(raw, received_ns=0)["timestamp"] == 10**12
