"""Whatever the input, a parser returns a dict normalize accepts: it never raises and never drops
the line (hypothesis, on random text and on mutations of valid lines)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.formats import build_parser
from logharbor.record import normalize

VALID = {
    "nginx": '203.0.113.7 - - [01/Nov/2026:12:34:56 +0000] "GET /a?b=1 HTTP/1.1" 200 612 "-" "curl/8.5.0"',
    "alb": ('http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 '
            '10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" '
            '"curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/t/73e '
            '"Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" '
            '"-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"'),
    "syslog": '<165>1 2003-10-11T22:14:15.003Z host app 12 ID47 [id@1 a="1"] message',
    "json": '{"timestamp":"2026-11-01T12:00:00Z","level":"info","message":"x","http":{"status":200}}',
    "logfmt": 'ts=2026-11-01T12:00:00Z level=info msg="hello world" n=3',
    "regex": "2026-11-01T12:00:00Z INFO 200 done",
}
VALID["nginx_main"] = ('10.0.0.1 - - [01/Nov/2026:12:00:00 +0000] "GET /a HTTP/2.0" 404 0 "-" "curl/8.5.0" '
                       '"198.51.100.2" rt=1.234 urt="0.500, 0.700" rid=0f1e2d3c trace="Root=1-5759e988-'
                       'bd862e3fe1be46a994272793"')
VALID["nginx_json"] = ('{"time":"2026-11-01T12:34:56+00:00","remote_addr":"10.0.1.5","request":"GET /h HTTP/1.1",'
                       '"status":200,"body_bytes_sent":2,"request_time":0.001,"upstream_response_time":"0.001",'
                       '"http_user_agent":"k","request_id":"0f","http_x_amzn_trace_id":"", "ts": "x"}')
VALID["nginx_error"] = ('2026/11/01 12:00:00 [error] 123#0: *5 upstream timed out, client: 10.0.0.1, server: s, '
                        'request: "POST /api/pay HTTP/1.1", upstream: "http://127.0.0.1:9093/api/pay", host: "s"')
VALID["syslog_3164"] = "<34>Oct 11 22:14:15 mymachine su[12]: 'su root' failed for lonvick on /dev/pts/8"
OPTIONS: dict[str, dict] = {
    "regex": {"pattern": r"^(?P<ts>\S+) (?P<level>\w+) (?P<http__status>\S+) (?P<message>.*)",
              "types": {"ts": "timestamp", "http__status": "int"}},
}
KINDS = {"nginx_main": ("nginx", {"format": "main"}), "nginx_json": ("nginx", {"format": "json"}),
         "nginx_error": ("nginx", {"format": "error"}), "syslog_3164": ("syslog", {})}

def _build(name: str) -> object:
    kind, options = KINDS.get(name, (name, OPTIONS.get(name, {})))
    return build_parser(kind, **options)


PARSERS = {name: _build(name) for name in VALID}
EXTRA = [build_parser("nginx", format=f) for f in ("main", "json", "error")]


def _check(parser: object, line: str) -> None:
    raw = parser.parse(line)  # type: ignore[attr-defined]
    assert isinstance(raw, dict)
    if "parse_error" in raw:
        assert raw["message"] == line
    normalize(raw, received_ns=1_800_000_000_000_000_000)


@st.composite
def mutated(draw: st.DrawFn, name: str) -> str:
    line = VALID[name]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(line)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(['"', "\\", " ", "-", "-1", "]", "[", ":", "=", "{", "}", "\x00", "é",
                                      "99999999999999999999", "\ufeff", "\n", "NaN", "-5", "1e400"]))
        if op == "insert":
            line = line[:i] + piece + line[i:]
        elif op == "delete":
            line = line[:i] + line[i + draw(st.integers(1, 5)):]
        else:
            line = line[:i] + piece + line[i + len(piece):]
    return line


@pytest.mark.parametrize("name", sorted(VALID))
@settings(max_examples=examples(250), deadline=None)
@given(data=st.data())
def test_mutated_lines_never_raise(name: str, data: st.DataObject) -> None:
    line = data.draw(mutated(name))
    _check(PARSERS[name], line)


@settings(max_examples=examples(200), deadline=None)
@given(line=st.text(max_size=200))
def test_random_text_never_raises(line: str) -> None:
    for parser in (*PARSERS.values(), *EXTRA):
        _check(parser, line)


@pytest.mark.parametrize("status", ["99999999999999999999200", "65536", "5_02", "٥٠٢", "-1"])
def test_a_typed_group_the_http_column_cannot_hold_keeps_the_line(status: str) -> None:
    """The parser's guard asks normalize's own question: a status over 65535 (or not a plain
    number) is the unparsed line with its reason, never a record normalize refuses."""
    line = f"2026-11-01T12:00:00Z INFO {status} done"
    raw = PARSERS["regex"].parse(line)  # type: ignore[attr-defined]
    if "parse_error" not in raw:  # the int cast itself refused it
        raise AssertionError(raw)
    assert raw["message"] == line
    normalize(raw, received_ns=1_800_000_000_000_000_000)


def test_text_http_fields_from_a_writer_are_held_to_the_column_too() -> None:
    json_parser = build_parser("json")
    for http in ({"status": 70000}, {"bytes_sent": 2**64}, {"duration_ms": "inf"}, {"status": "5_02"}):
        line = '{"message":"m","http":' + __import__("json").dumps(http) + "}"
        raw = json_parser.parse(line)  # type: ignore[attr-defined]
        assert "parse_error" in raw and raw["message"] == line, (http, raw)
        normalize(raw, received_ns=1_800_000_000_000_000_000)
