"""The generated parse function of an NGINX JSON ``log_format`` returns exactly what the general
loop does (hypothesis).

``formats/nginx_json.py`` runs the handlers of a line whose keys are the format's, in its order,
as straight-line code; every other line takes ``NginxParser._parse_json``'s loop. Over lines written
by ``format_nginx_line`` and then changed — values of other JSON types (numbers as text, text as
numbers, null, lists, objects, huge and negative numbers), keys dropped, added or reordered, and
text that is not JSON — both must give the same record: same keys in the same order, same values
of the same types, same ``parse_error``.
"""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.formats.nginx import LOG_FORMATS, NginxParser, format_nginx_line

CUSTOM = ('log_format edge escape=json \'{"ts":"$msec","local":"$time_local","addr":"$remote_addr",'
          '"req":"$request","st":"$status","up":"$upstream_response_time","uct":$upstream_connect_time,'
          '"len":$request_length,"ua":"$http_user_agent","trace":"$http_traceparent",'
          '"amzn":"$http_x_amzn_trace_id","time":"$time_iso8601","host":"$hostname"}\';')
FORMATS = {"json": "json", "custom": CUSTOM}
PARSERS = {name: NginxParser(fmt) for name, fmt in FORMATS.items()}
VALUES = {
    "remote_addr": st.sampled_from(["10.0.0.1", "2001:db8::1", "-"]),
    "time_iso8601": st.integers(0, 4 * 10**18), "time_local": st.integers(0, 4 * 10**18),
    "msec": st.integers(0, 4 * 10**18),
    "request": st.sampled_from(["GET / HTTP/1.1", "GET /a b HTTP/1.1", "POST /x", "GET", ""]),
    "status": st.integers(0, 70000), "body_bytes_sent": st.integers(0, 10**19),
    "request_time": st.floats(0, 1e6, allow_nan=False), "request_length": st.integers(0, 10**6),
    "upstream_response_time": st.sampled_from(["0.004", "0.001, 0.003 : 0.002", "-", "1e306", "x"]),
    "upstream_connect_time": st.floats(0, 100, allow_nan=False),
    "http_user_agent": st.text(max_size=20), "http_referer": st.text(max_size=10),
    "request_id": st.text("0123456789abcdef", max_size=32),
    "http_traceparent": st.sampled_from(["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ""]),
    "http_x_amzn_trace_id": st.sampled_from(["Root=1-5759e988-bd862e3fe1be46a994272793", ""]),
    "hostname": st.sampled_from(["web-1", ""]),
}
_BARE = frozenset(("status", "body_bytes_sent", "request_time", "upstream_connect_time", "request_length"))
ODD = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False) | \
    st.text(max_size=12) | st.sampled_from(["-", "", "200", "01/Nov/2026:12:00:00 +0000",
                                            "2026-11-01T12:00:00+00:00", "1793534400.123"]) | \
    st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)


@st.composite
def lines(draw: st.DrawFn, name: str) -> str:
    # unquoted variables always have a value (NGINX writes an empty one there: not JSON)
    values = {k: draw(v) for k, v in VALUES.items() if k in _BARE or draw(st.integers(0, 9))}
    line = format_nginx_line(values, LOG_FORMATS.get(FORMATS[name], FORMATS[name]))
    change = draw(st.integers(0, 5))
    if change == 0:
        return line
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    keys = list(obj)
    if change == 1 and keys:  # a value of another type
        obj[draw(st.sampled_from(keys))] = draw(ODD)
    elif change == 2 and keys:  # a key dropped
        del obj[draw(st.sampled_from(keys))]
    elif change == 3:  # a key added
        obj[draw(st.sampled_from(["extra", "time", "http", "message", "level", "source", "status"]))] = draw(ODD)
    elif change == 4 and len(keys) > 1:  # two keys swapped
        i, j = draw(st.integers(0, len(keys) - 1)), draw(st.integers(0, len(keys) - 1))
        keys[i], keys[j] = keys[j], keys[i]
        obj = {k: obj[k] for k in keys}
    else:
        return draw(st.sampled_from(["", "[1]", "null", "{", line[:-1], line + "x"]))
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)  # (orjson refuses > 64-bit ints)


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=examples(300), deadline=None)
@given(data=st.data())
def test_generated_json_parser_matches_the_general_loop(name: str, data: st.DataObject) -> None:
    parser = PARSERS[name]
    line = data.draw(lines(name))
    assert repr(parser.parse(line)) == repr(parser._parse_json(line))


def test_the_generated_function_runs() -> None:
    """The comparison above compares two different functions."""
    parser = PARSERS["json"]
    assert parser.parse.__code__.co_filename == "<nginx json log_format>"
    line = format_nginx_line({"remote_addr": "10.0.0.1", "status": 503, "request": "GET /x HTTP/1.1",
                              "body_bytes_sent": 5, "request_time": 0.5}, "json")
    assert parser.parse(line) == parser._parse_json(line)
    assert parser.parse(line)["level"] == "ERROR"
