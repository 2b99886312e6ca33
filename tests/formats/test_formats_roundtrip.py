"""Round trips: generate a record, write it as NGINX / ALB / syslog / logfmt would, parse it back
and check every field survived (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.formats import build_parser
from logharbor.formats.alb import format_alb_line
from logharbor.formats.nginx import format_nginx_line
from logharbor.formats.syslog import format_rfc5424, parse_syslog
from logharbor.record import format_timestamp, normalize, parse_timestamp

SETTINGS = settings(max_examples=examples(120), deadline=None)
NS = 1_000_000_000
# any text a header can carry after decoding, but not line breaks (a log line is one line)
CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x85\u2028\u2029")
TEXT = st.text(alphabet=CHARS, min_size=1, max_size=40).filter(lambda s: s != "-" and s.strip() == s)
WORD = TEXT.filter(lambda s: " " not in s)  # for fields NGINX writes unquoted
IPV4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
IPV6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(lambda g: ":".join(f"{x:x}" for x in g))
PATH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~%/?=&", max_size=30).map(lambda p: "/" + p)
METHOD = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
# 1976 .. 2096: normalize reads an int timestamp by magnitude, and ns only from 1973 on
SECONDS = st.integers(200_000_000, 4_000_000_000)
TRACE = st.tuples(st.integers(1, 2**32 - 1), st.integers(1, 2**96 - 1)).map(
    lambda t: (f"Root=1-{t[0]:08x}-{t[1]:024x}", f"{t[0]:08x}{t[1]:024x}"))


def _level(status: int) -> str:
    return "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"


@st.composite
def nginx_requests(draw: st.DrawFn) -> dict:
    return {
        "remote_addr": draw(st.one_of(IPV4, IPV6)), "remote_user": draw(st.none() | WORD),
        "time_s": draw(SECONDS), "method": draw(METHOD), "path": draw(PATH),
        "protocol": draw(st.sampled_from(["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"])),
        "status": draw(st.integers(100, 599)), "bytes": draw(st.integers(0, 10**12)),
        "referer": draw(st.none() | TEXT), "user_agent": draw(st.none() | TEXT),
        "request_time_ms": draw(st.integers(0, 10**7)),
        "request_id": f"{draw(st.integers(0, 2**128 - 1)):032x}",
        "trace": draw(st.none() | TRACE), "xff": draw(st.none() | IPV4),
    }


def _nginx_values(r: dict) -> dict:
    return {
        "remote_addr": r["remote_addr"], "remote_user": r["remote_user"],
        "time_local": r["time_s"] * NS, "time_iso8601": r["time_s"] * NS,
        "request": f"{r['method']} {r['path']} {r['protocol']}", "status": r["status"],
        "body_bytes_sent": r["bytes"], "http_referer": r["referer"], "http_user_agent": r["user_agent"],
        "request_time": r["request_time_ms"] / 1000, "request_id": r["request_id"],
        "http_x_amzn_trace_id": r["trace"][0] if r["trace"] else None, "http_x_forwarded_for": r["xff"],
    }


@pytest.mark.parametrize("fmt", ["combined", "main", "json"])
@SETTINGS
@given(req=nginx_requests())
def test_nginx_round_trip(fmt: str, req: dict) -> None:
    line = format_nginx_line(_nginx_values(req), fmt)
    assert "\n" not in line
    raw = build_parser("nginx", format=fmt).parse(line)
    assert "parse_error" not in raw, (line, raw)
    rec = normalize(raw, received_ns=0)
    http = rec["http"]
    assert rec["timestamp"] == req["time_s"] * NS
    assert (http["method"], http["path"], rec["attributes"]["protocol"]) == (
        req["method"], req["path"], req["protocol"])
    assert http["status"] == req["status"] and rec["level"] == _level(req["status"])
    assert http["bytes_sent"] == req["bytes"] and http["client_ip"] == req["remote_addr"]
    assert http.get("referer") == req["referer"] and http.get("user_agent") == req["user_agent"]
    assert rec["attributes"].get("remote_user") == req["remote_user"]
    if fmt != "combined":
        assert http["duration_ms"] == pytest.approx(req["request_time_ms"])
        assert rec["request_id"] == req["request_id"]
        assert rec["trace_id"] == (req["trace"][1] if req["trace"] else None)
        assert rec["attributes"].get("x_forwarded_for") == req["xff"]


@st.composite
def alb_entries(draw: st.DrawFn) -> dict:
    times = [draw(st.one_of(st.just(-1), st.integers(0, 10**6).map(lambda ms: ms / 1000))) for _ in range(3)]
    scheme = draw(st.sampled_from(["http", "https"]))
    port = 80 if scheme == "http" else 443
    return {
        "type": draw(st.sampled_from(["http", "https", "h2", "grpcs", "ws", "wss"])),
        "time_us": draw(SECONDS) * 1_000_000 + draw(st.integers(0, 999_999)),
        "client": draw(st.one_of(IPV4, IPV6)), "client_port": draw(st.integers(1, 65535)),
        "target": draw(st.none() | IPV4), "times": times,
        "elb_status": draw(st.integers(100, 599)), "target_status": draw(st.none() | st.integers(100, 599)),
        "received": draw(st.integers(0, 10**9)), "sent": draw(st.integers(0, 10**9)),
        "method": draw(METHOD), "url": f"{scheme}://{draw(st.sampled_from(['a.example', '10.0.0.1']))}:{port}"
                                       + draw(PATH),
        "protocol": draw(st.sampled_from(["HTTP/1.1", "HTTP/2.0"])), "user_agent": draw(st.none() | TEXT),
        "trace": draw(st.none() | TRACE), "n_fields": draw(st.sampled_from([18, 22, 25, 29, 30, 33])),
        "extra": draw(st.lists(st.sampled_from(["x", '"quoted value"', "-", "10.0.0.9"]), max_size=3)),
        "error_reason": draw(st.none() | TEXT), "conn": f"TID_{draw(st.integers(0, 2**64)):x}",
    }


@SETTINGS
@given(e=alb_entries())
def test_alb_round_trip(e: dict) -> None:
    fields = {
        "type": e["type"], "time": e["time_us"] * 1000, "elb": "app/my-lb/50dc6c495c0c9188",
        "client:port": f"{e['client']}:{e['client_port']}",
        "target:port": f"{e['target']}:8080" if e["target"] else None,
        "request_processing_time": e["times"][0], "target_processing_time": e["times"][1],
        "response_processing_time": e["times"][2], "elb_status_code": e["elb_status"],
        "target_status_code": e["target_status"], "received_bytes": e["received"], "sent_bytes": e["sent"],
        "request": f"{e['method']} {e['url']} {e['protocol']}", "user_agent": e["user_agent"],
        "trace_id": e["trace"][0] if e["trace"] else None, "error_reason": e["error_reason"],
        "conn_trace_id": e["conn"],
    }
    n = e["n_fields"]
    extra = e["extra"] if n == 33 else []
    line = format_alb_line(fields, n_fields=n, extra=extra)
    raw = build_parser("alb").parse(line)
    assert "parse_error" not in raw, (line, raw)
    rec = normalize(raw, received_ns=0)
    http, attrs = rec["http"], rec["attributes"]
    assert format_timestamp(rec["timestamp"]) == format_timestamp(e["time_us"] * 1000)
    assert http["client_ip"] == e["client"] and attrs["client_port"] == e["client_port"]
    assert attrs.get("target_ip") == e["target"]
    assert http["status"] == e["elb_status"] and rec["level"] == _level(e["elb_status"])
    assert attrs.get("target_status_code") == e["target_status"]
    assert attrs["received_bytes"] == e["received"] and http["bytes_sent"] == e["sent"]
    assert http["method"] == e["method"] and attrs["url"] == e["url"] and attrs["protocol"] == e["protocol"]
    assert http["path"] == e["url"].split(":", 2)[2][len(e["url"].split(":", 2)[2].split("/")[0]):]
    assert http.get("user_agent") == e["user_agent"]
    assert rec["trace_id"] == (e["trace"][1] if e["trace"] else None)
    if all(t >= 0 for t in e["times"]):
        assert http["duration_ms"] == pytest.approx(sum(e["times"]) * 1000)
    else:
        assert "duration_ms" not in http
    names = ("request_processing_ms", "target_processing_ms", "response_processing_ms")
    for name, seconds in zip(names, e["times"], strict=True):
        assert attrs.get(name) == (pytest.approx(seconds * 1000) if seconds >= 0 else None)
    assert attrs.get("error_reason") == (e["error_reason"] if n >= 25 else None)
    assert attrs.get("conn_trace_id") == (e["conn"] if n >= 30 else None)
    assert attrs.get("extra_fields") == ([x.strip('"') for x in extra] or None)


SD_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789@.-_", min_size=1, max_size=12)
PRINTUSASCII = st.text(alphabet=[chr(c) for c in range(33, 127)], min_size=1, max_size=20).filter(
    lambda s: s != "-")


@SETTINGS
@given(pri=st.integers(0, 191), ts_us=st.none() | SECONDS.map(lambda s: s * 1_000_000),
       host=st.none() | PRINTUSASCII, app=st.none() | PRINTUSASCII, procid=st.none() | st.integers(1, 99999),
       msgid=st.none() | PRINTUSASCII,
       sd=st.none() | st.dictionaries(SD_NAME, st.dictionaries(SD_NAME, st.text(max_size=15), max_size=3),
                                      min_size=1, max_size=3),
       message=st.text(max_size=60), bom=st.booleans())
def test_syslog_5424_round_trip(pri: int, ts_us: int | None, host: str | None, app: str | None,
                                procid: int | None, msgid: str | None, sd: dict | None, message: str,
                                bom: bool) -> None:
    line = format_rfc5424(pri=pri, timestamp=format_timestamp(ts_us * 1000) if ts_us is not None else None,
                          host=host, app=app, procid=procid, msgid=msgid, structured_data=sd,
                          message=message, bom=bom)
    raw = parse_syslog(line)
    assert "parse_error" not in raw, (line, raw)
    assert raw["facility"] and raw["syslog_severity"] == pri % 8
    assert raw.get("timestamp") == (ts_us * 1000 if ts_us is not None else None)
    header = (raw.get("host"), raw.get("service"), raw.get("pid"), raw.get("msgid"))
    assert header == (host, app, procid, msgid)
    assert raw.get("structured_data") == sd
    assert raw["message"] == message.rstrip("\r\n")  # a trailing CR/LF is framing, not message
    normalize(raw, received_ns=0)


# prefixed: a key such as "date" or "http.status" is a canonical field normalize checks
KEY = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.0123456789", min_size=1, max_size=10).map(
    lambda k: "k_" + k)
VALUE = st.one_of(st.integers(-(10**12), 10**12), st.booleans(), st.text(max_size=20))


def _logfmt(pairs: dict) -> str:
    out = []
    for key, value in pairs.items():
        if isinstance(value, bool):
            out.append(f"{key}={'true' if value else 'false'}")
        elif isinstance(value, int):
            out.append(f"{key}={value}")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            escaped = escaped.replace("\n", "\\n").replace("\t", "\\t")
            out.append(f'{key}="{escaped}"')
    return " ".join(out)


@SETTINGS
@given(pairs=st.dictionaries(KEY, VALUE, min_size=1, max_size=8))
def test_logfmt_round_trip(pairs: dict) -> None:
    line = _logfmt(pairs)
    assert build_parser("logfmt").parse(line) == pairs


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HOSTNAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=15)
TAG = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./", min_size=1,
              max_size=12)


@SETTINGS
@given(pri=st.none() | st.integers(0, 191), month=st.integers(1, 12), day=st.integers(1, 28),
       hms=st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)),
       host=st.none() | HOSTNAME, tag=TAG, pid=st.none() | st.integers(0, 4_000_000),
       message=st.text(alphabet=CHARS, max_size=60).map(str.strip))
def test_syslog_3164_round_trip(pri: int | None, month: int, day: int, hms: tuple[int, int, int],
                                host: str | None, tag: str, pid: int | None, message: str) -> None:
    stamp = f"{MONTHS[month - 1]} {day:2d} {hms[0]:02d}:{hms[1]:02d}:{hms[2]:02d}"
    line = (f"<{pri}>" if pri is not None else "") + stamp + (f" {host}" if host else "") + \
        f" {tag}" + (f"[{pid}]" if pid is not None else "") + ": " + message
    now = 4_102_444_799  # 2099-12-31T23:59:59Z: every date is in 2099 but the next 7 days' (2100)
    raw = parse_syslog(line, now_ns=now * NS)
    assert "parse_error" not in raw, (line, raw)
    next_year = parse_timestamp(f"2100-{month:02d}-{day:02d}T{hms[0]:02d}:{hms[1]:02d}:{hms[2]:02d}Z") // NS
    year = 2100 if next_year - now <= 7 * 86400 else 2099
    expected = f"{year}-{month:02d}-{day:02d}T{hms[0]:02d}:{hms[1]:02d}:{hms[2]:02d}Z"
    assert format_timestamp(raw["timestamp"]).startswith(expected[:-1])
    assert raw.get("host") == host and raw["service"] == tag and raw.get("pid") == pid
    assert raw["message"] == message
    assert ("level" in raw) == (pri is not None)
    normalize(raw, received_ns=0)
