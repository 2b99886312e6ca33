"""json, logfmt and regex parsers, and the registry they share."""

from __future__ import annotations

import pytest

from logharbor.formats import PARSERS, Parser, ParserConfigError, build_parser, load_builtins
from logharbor.formats.logfmt import parse_logfmt
from logharbor.record import normalize


def test_json_object_passes_through_for_normalize() -> None:
    line = '{"ts":1793534400123,"msg":"hi","levelname":"warning","n":1.5,"tags":["a"]}'
    raw = build_parser("json").parse(line)
    assert raw == {"ts": 1793534400123000000, "msg": "hi", "levelname": "warning", "n": 1.5, "tags": ["a"]}
    rec = normalize(raw, received_ns=0)
    assert rec["level"] == "WARN" and rec["message"] == "hi" and rec["attributes"]["n"] == 1.5


@pytest.mark.parametrize("line,reason", [("", "invalid JSON"), ("{\"a\":", "invalid JSON"),
                                         ("[1,2]", "list"), ('"text"', "str"), ("plain words", "invalid")])
def test_json_bad_lines(line: str, reason: str) -> None:
    raw = build_parser("json").parse(line)
    assert raw["message"] == line and reason in raw["parse_error"]


def test_logfmt_values_and_types() -> None:
    line = ('level=warn msg="disk \\"almost\\" full\\n" path=/var/lib n=42 ratio=0.93 neg=-7 big=1e3 ok=true '
            'off=false cached empty= id="007" word=abc')
    raw = build_parser("logfmt").parse(line)
    assert raw == {"level": "warn", "msg": 'disk "almost" full\n', "path": "/var/lib", "n": 42,
                   "ratio": 0.93, "neg": -7, "big": 1000.0, "ok": True, "off": False, "cached": True,
                   "empty": "", "id": "007", "word": "abc"}
    untyped = build_parser("logfmt", typed=False).parse("n=42 ok=true")
    assert untyped == {"n": "42", "ok": "true"}
    assert normalize(raw, received_ns=0)["level"] == "WARN"


def test_logfmt_unusual_escapes_and_unicode() -> None:
    assert parse_logfmt('a="tab\\there \\u00e9 \\x41"') == {"a": "tab\there \u00e9 \\x41"}
    assert parse_logfmt("  k=v   other=w  ") == {"k": "v", "other": "w"}
    assert parse_logfmt("k=0123") == {"k": "0123"}  # a leading zero is an identifier, not a number


@pytest.mark.parametrize("line", ["", "hello world", 'a="unterminated', 'k=v "stray"', "=v"])
def test_logfmt_bad_lines(line: str) -> None:
    raw = build_parser("logfmt").parse(line)
    assert raw["message"] == line and raw["parse_error"]


PATTERN = (r"^(?P<time>\S+ \S+) \[(?P<level>\w+)\] (?P<http__method>[A-Z]+) (?P<http__status>\d+) "
           r"(?P<took>[\d.]+)s cached=(?P<cached>\w+)(?: user=(?P<user_id>\S+))? (?P<message>.*)$")


def test_regex_named_groups_and_types() -> None:
    parser = build_parser("regex", pattern=PATTERN, types={
        "time": "timestamp:%Y-%m-%d %H:%M:%S.%f", "http__status": "int", "took": "float", "cached": "bool"})
    raw = parser.parse("2026-11-01 12:00:00.250 [error] GET 502 0.75s cached=no order failed")
    assert raw == {"time": 1_793_534_400_250_000_000, "level": "error", "http.method": "GET",
                   "http.status": 502, "took": 0.75, "cached": False, "message": "order failed"}
    rec = normalize(raw, received_ns=0)
    assert rec["http"] == {"method": "GET", "status": 502} and rec["level"] == "ERROR"
    with_user = parser.parse("2026-11-01 12:00:00.250 [info] GET 200 0.1s cached=yes user=u-1 ok")
    assert with_user["user_id"] == "u-1" and with_user["cached"] is True


def test_regex_timestamp_types_and_whole_line_message() -> None:
    parser = build_parser("regex", pattern=r"(?P<ts>\S+) (?P<local>\S+ \S+) (?P<code>\w+)",
                          types={"ts": "timestamp", "local": "timestamp:%d/%b/%Y:%H:%M:%S %z"})
    raw = parser.parse("2026-11-01T12:00:00Z 01/Nov/2026:13:00:00 +0100 E42")
    assert raw["ts"] == raw["local"] == 1_793_534_400_000_000_000
    assert raw["message"] == "2026-11-01T12:00:00Z 01/Nov/2026:13:00:00 +0100 E42"


def test_regex_bad_lines_and_bad_casts() -> None:
    parser = build_parser("regex", pattern=r"^(?P<n>\S+) (?P<message>.*)", types={"n": "int"})
    assert parser.parse("nope")["parse_error"] == "line does not match the pattern"
    bad = parser.parse("x1 hello")
    assert bad["message"] == "x1 hello" and "group 'n'" in bad["parse_error"]


@pytest.mark.parametrize("options,option", [
    ({"pattern": "(?P<a>"}, "pattern"),
    ({"pattern": r"(\d+)"}, "pattern"),
    ({"pattern": r"(?P<a>\d+)", "types": {"a": "decimal"}}, "types"),
    ({"pattern": r"(?P<a>\d+)", "types": {"b": "int"}}, "types"),
    ({"pattern": r"(?P<a>\d+)", "types": {"a": "timestamp:YYYY"}}, "types"),
    ({}, "pattern"),
])
def test_regex_config_errors_name_the_option(options: dict, option: str) -> None:
    with pytest.raises(ParserConfigError, match=f"option '{option}'"):
        build_parser("regex", **options)


def test_registry() -> None:
    kinds = load_builtins()
    assert set(kinds) == {"json", "logfmt", "nginx", "alb", "syslog", "regex"}
    assert kinds is PARSERS
    for name, kind in kinds.items():
        options = {"pattern": "(?P<message>.*)"} if name == "regex" else {}
        parser = kind(**options)
        assert isinstance(parser, Parser)
        assert kind.summary
        raw = parser.parse("\x00 not a valid line of anything {")
        assert "message" in raw  # never raises, never drops
    with pytest.raises(ParserConfigError, match="unknown parser 'xml'"):
        build_parser("xml")


@pytest.mark.parametrize("name,line", [
    ("json", '{"timestamp":"yesterday","message":"m"}'),
    ("json", '{"ts":-5,"message":"m"}'),
    ("json", '{"http":{"status":-1}}'),
    ("json", '{"http":{"status":"ok"}}'),
    ("json", '{"http":{"duration_ms":true}}'),
    ("json", '{"http.bytes_sent":1.5}'),
    ("logfmt", "time=soon msg=x"),
    ("logfmt", "http.status=-3"),
])
def test_values_normalize_would_reject_keep_the_line(name: str, line: str) -> None:
    raw = build_parser(name).parse(line)
    assert raw["message"] == line and raw["parse_error"]
    normalize(raw, received_ns=0)


def test_only_the_timestamp_normalize_uses_is_checked() -> None:
    raw = build_parser("json").parse('{"timestamp":"2026-11-01T12:00:00Z","date":"Tuesday"}')
    assert "parse_error" not in raw
    assert normalize(raw, received_ns=0)["timestamp"] == 1_793_534_400_000_000_000


@pytest.mark.parametrize("name", ["json", "logfmt", "nginx", "alb", "syslog", "regex"])
def test_unknown_options_are_errors(name: str) -> None:
    with pytest.raises(ParserConfigError, match=f"parser '{name}': option 'colour'"):
        build_parser(name, colour="blue", **({"pattern": "(?P<m>.)"} if name == "regex" else {}))


def test_benchmark_script_runs_and_parses_its_own_data() -> None:
    import subprocess
    import sys
    from pathlib import Path

    import orjson

    script = Path(__file__).resolve().parents[2] / "bench" / "parsers.py"
    out = subprocess.run([sys.executable, str(script), "--mbytes", "0.05", "--normalize"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert {r["parser"] for r in rows} == {"nginx_combined", "nginx_main", "nginx_json", "alb", "json",
                                           "logfmt", "syslog", "regex", "multiline_java"}
    for row in rows:
        assert row["parse_errors_in_sample"] == 0, row
        assert row["lines"] > 0 and row["mib_per_s"] > 0


def test_command_line_tool(tmp_path) -> None:
    import subprocess
    import sys

    import orjson

    def tool(*args: str, text: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "logharbor.formats", *args], input=text,
                              capture_output=True, text=True, timeout=60)

    line = '1.2.3.4 - - [01/Nov/2026:12:00:00 +0000] "GET /x HTTP/1.1" 503 9 "-" "curl/8.5.0"'
    ok = tool("nginx", "-o", "format=combined", "--normalize", text=line + "\n")
    assert ok.returncode == 0, ok.stderr
    rec = orjson.loads(ok.stdout)
    assert rec["level"] == "ERROR" and rec["http"]["path"] == "/x" and rec["source"] == "nginx"
    bad = tool("logfmt", text="k=v\nnot logfmt at all\n")
    assert bad.returncode == 1
    assert [("parse_error" in orjson.loads(x)) for x in bad.stdout.splitlines()] == [False, True]
    joined = tool("json", "-m", "preset=java", text='{"msg":"a"}\n\tat x.Y(Z.java:1)\n')
    assert joined.returncode == 1  # the joined event is no longer one JSON object
    assert orjson.loads(joined.stdout)["message"] == '{"msg":"a"}\n\tat x.Y(Z.java:1)'
    config = tool("regex", "-o", "pattern=(", text="")
    assert config.returncode == 2 and "option 'pattern'" in config.stderr
    sample = tmp_path / "s.log"
    sample.write_text('{"level":"warn","n":1}\n')
    from_file = tool("json", "--file", str(sample), text="")
    assert orjson.loads(from_file.stdout) == {"level": "warn", "n": 1}
