"""Whatever the input, a parser returns a dict normalize accepts: it never raises and never drops
the line (hypothesis, on random text and on mutations of valid lines)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
OPTIONS: dict[str, dict] = {
    "regex": {"pattern": r"^(?P<ts>\S+) (?P<level>\w+) (?P<http__status>\S+) (?P<message>.*)",
              "types": {"ts": "timestamp", "http__status": "int"}},
}
PARSERS = {name: build_parser(name, **OPTIONS.get(name, {})) for name in VALID}
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
@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_mutated_lines_never_raise(name: str, data: st.DataObject) -> None:
    line = data.draw(mutated(name))
    _check(PARSERS[name], line)


@settings(max_examples=200, deadline=None)
@given(line=st.text(max_size=200))
def test_random_text_never_raises(line: str) -> None:
    for parser in (*PARSERS.values(), *EXTRA):
        _check(parser, line)
