"""What each NGINX variable means in the canonical record, shared by the text and JSON formats.

A *handler* takes ``(record, http, value)`` and stores one variable's value where it belongs:
``$status`` in ``http.status`` as an int, ``$request_time`` in ``http.duration_ms`` (seconds × 1000),
``$time_local`` in ``timestamp`` as integer ns, ``$http_x_amzn_trace_id`` in ``trace_id`` (folded by
``normalize``), any variable we have no rule for in an attribute named after it. Handlers raise
``ValueError`` on a value of the wrong shape; the parser turns that into a ``parse_error``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from logharbor.formats.base import seconds_to_ms, timestamp_value, ufloat, uint
from logharbor.record import RecordError, parse_timestamp
from logharbor.types import HttpFields, RawRecord

__all__ = ["Handler", "handler_for", "seconds_to_ms", "uint_or_text", "unescape_default", "unescape_json"]

Handler = Callable[[RawRecord, HttpFields, Any], None]

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_HEX_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")


def unescape_default(value: str) -> str:
    """Undo NGINX's default escaping: ``"``, ``\\`` and bytes outside 32–126 become ``\\xHH``."""
    if "\\x" not in value:
        return value
    raw = _HEX_ESCAPE.sub(lambda m: chr(int(m[1], 16)), value)
    try:
        return raw.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return raw


def unescape_json(value: str) -> str:
    """Undo ``escape=json`` (JSON string escapes) in a value cut from a text line."""
    try:
        out = orjson.loads('"' + value + '"')
    except orjson.JSONDecodeError:
        return value
    return out if isinstance(out, str) else value


class _TimeCache:
    """Converts NGINX times to ns, remembering the last one: a busy log repeats each second."""

    __slots__ = ("last", "parse")

    def __init__(self, parse: Callable[[str], int]) -> None:
        self.last: tuple[str, int | str] = ("", 0)  # one tuple, swapped whole: safe across threads
        self.parse = parse

    #: the same work inlined by the text-format generator: a repeated second costs one compare
    inline = ("t = {h}.last\n"
              "if {v} != t[0]:\n"
              "    t = {h}.refresh({v})\n"
              "rec['timestamp'] = t[1]")

    def refresh(self, text: str) -> tuple[str, int | str]:
        """Parse ``text`` and remember it; raises ``ValueError`` (and remembers nothing)."""
        last = self.last = (text, timestamp_value(self.parse(text)))
        return last

    def __call__(self, rec: RawRecord, http: HttpFields, value: Any) -> None:
        text = value if isinstance(value, str) else str(value)
        last = self.last
        if text != last[0]:
            last = self.refresh(text)
        rec["timestamp"] = last[1]


_HOURS: dict[str, int] = {}  # "25/Nov/2026:01 +0000" -> ns of that hour; bounded, cleared when full
_HOURS_MAX = 4096
_MAX_NS = 2**63 - 1  # the latest ns parse_timestamp takes (record._MAX_NS, 2262)


def parse_time_local(text: str) -> int:
    """``01/Nov/2026:12:00:00 +0100`` (``$time_local``) → ns since the epoch.

    The date, hour and zone are parsed once per hour (remembered), the minutes and seconds
    added to it: a log whose second changes on every line costs two ``int`` calls per line.
    """
    if (len(text) != 26 or text[2] != "/" or text[6] != "/" or text[11] != ":" or text[14] != ":"
            or text[17] != ":" or text[20] != " "):
        raise ValueError(f"$time_local {text!r} is not dd/Mon/yyyy:hh:mm:ss +zzzz")
    minute, second = text[15:17], text[18:20]
    if not (minute.isdigit() and second.isdigit()) or minute > "59" or second > "60":
        raise ValueError(f"$time_local {text!r} has a time of day out of range")
    key = text[:14] + text[20:]
    hour_ns = _HOURS.get(key)
    if hour_ns is None:
        month = _MONTHS.get(text[3:6])
        if month is None:
            raise ValueError(f"$time_local {text!r} has an unknown month")
        iso = f"{text[7:11]}-{month:02d}-{text[0:2]}T{text[12:14]}:00:00{text[21:24]}:{text[24:26]}"
        try:
            hour_ns = parse_timestamp(iso)
        except RecordError as exc:
            raise ValueError(str(exc)) from None
        if len(_HOURS) >= _HOURS_MAX:
            _HOURS.clear()
        _HOURS[key] = hour_ns
    return hour_ns + (int(minute) * 60 + min(int(second), 59)) * 1_000_000_000


def _parse_any_time(text: str) -> int:
    try:
        return parse_timestamp(text)
    except RecordError as exc:
        raise ValueError(str(exc)) from None


_ISO_HOURS: dict[str, int] = {}  # "2026-11-25T01+00:00" -> ns of that hour; bounded like _HOURS


def parse_time_iso8601(text: str) -> int:
    """``2026-11-25T01:02:03+00:00`` (``$time_iso8601``) → ns, as :func:`_parse_any_time` reads it.

    NGINX writes one shape, with an offset (which ``record``'s fast path, for ``Z``, does not
    take): the date, hour and offset are parsed once per hour and the minutes and seconds added.
    Any other shape, and anything out of range, is read by the general parser (same errors).
    """
    if (len(text) != 25 or text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":"
            or text[16] != ":" or text[19] not in "+-" or text[22] != ":" or not text.isascii()):
        return _parse_any_time(text)
    minute, second = text[14:16], text[17:19]
    if not (minute.isdigit() and second.isdigit()) or minute > "59" or second > "60":
        return _parse_any_time(text)
    key = text[:13] + text[19:]
    hour_ns = _ISO_HOURS.get(key)
    if hour_ns is None:
        try:
            hour_ns = parse_timestamp(text[:13] + ":00:00" + text[19:])
        except RecordError:
            return _parse_any_time(text)  # e.g. an offset putting the hour before 1970
        if len(_ISO_HOURS) >= _HOURS_MAX:
            _ISO_HOURS.clear()
        _ISO_HOURS[key] = hour_ns
    ns = hour_ns + (int(minute) * 60 + min(int(second), 59)) * 1_000_000_000
    return ns if ns <= _MAX_NS else _parse_any_time(text)


def local_time_parser(zone: str) -> Callable[[str], int]:
    """Parse ``2026/11/01 12:00:00`` (error log, server local time) in the zone ``zone``."""
    tz = ZoneInfo(zone)
    from datetime import datetime

    def parse(text: str) -> int:
        dt = datetime.strptime(text, "%Y/%m/%d %H:%M:%S").replace(tzinfo=tz)
        return int(dt.timestamp()) * 1_000_000_000

    return parse


# A handler may carry ``code``: the same work as one Python statement on the value ``{v}``, which
# the reference generator (formats/nginx_reference.py) inlines into its parse function. It may
# also carry ``inline``: statements doing the same work (``{h}`` is the handler, ``_p`` a scratch
# local) that the text-format generator in formats/nginx.py inlines instead, with no call per
# field. Values cut from a text line are always str. ``native`` names what the handler does for the
# agent's compiled chunk path (formats/nginx_chunk.py): (kind, key); a handler without it keeps its
# format on the Python path.

#: ``uint`` of a str, its common case inlined (ASCII digits, < 19 of them); else the call that
#: raises the same error
_UINT_CODE = "int({v}) if {v}.isdigit() and len({v}) < 19 and {v}.isascii() else uint({v})"


def uint_or_text(value: Any) -> int | str:
    """An integer variable's value, or its text when NGINX wrote a list (``200, 502``)."""
    try:
        return uint(value)
    except ValueError:
        return value if isinstance(value, str) else str(value)


def _set_http(name: str, kind: type) -> Handler:
    if kind is int:
        def h(rec: RawRecord, http: HttpFields, value: Any) -> None:
            http[name] = uint(value)
        h.code = f"http[{name!r}] = uint({{v}})"  # type: ignore[attr-defined]
        h.inline = f"http[{name!r}] = " + _UINT_CODE  # type: ignore[attr-defined]
        h.native = ("http_int", name)  # type: ignore[attr-defined]
    else:
        def h(rec: RawRecord, http: HttpFields, value: Any) -> None:
            http[name] = value
        h.code = f"http[{name!r}] = {{v}}"  # type: ignore[attr-defined]
        h.native = ("http_str", name)  # type: ignore[attr-defined]
    return h


def _set_rec(name: str) -> Handler:
    def h(rec: RawRecord, http: HttpFields, value: Any) -> None:
        rec.setdefault(name, value)
    h.code = f"rec.setdefault({name!r}, {{v}})"  # type: ignore[attr-defined]
    h.native = ("rec_default", name)  # type: ignore[attr-defined]
    return h


def _attr(name: str, kind: str = "str") -> Handler:
    if kind == "int":
        def h(rec: RawRecord, http: HttpFields, value: Any) -> None:
            rec[name] = uint_or_text(value)
        h.code = f"rec[{name!r}] = uint_or_text({{v}})"  # type: ignore[attr-defined]
        h.native = ("rec_int", name)  # type: ignore[attr-defined]
    else:
        def h(rec: RawRecord, http: HttpFields, value: Any) -> None:
            rec[name] = value
        h.code = f"rec[{name!r}] = {{v}}"  # type: ignore[attr-defined]
        h.native = ("rec_str", name)  # type: ignore[attr-defined]
    return h


def _seconds_attr(name: str) -> Handler:
    """``$upstream_*_time``: ``0.004`` or, across upstreams, ``0.001, 0.003 : 0.002`` → ms."""
    key = name + "_ms"

    def h(rec: RawRecord, http: HttpFields, value: Any) -> None:
        if not isinstance(value, str) or ("," not in value and ":" not in value):
            rec[key] = seconds_to_ms(value)
            return
        total = 0.0
        for part in value.replace(":", ",").split(","):
            part = part.strip()
            if part and part != "-":
                total += ufloat(part)
        rec[key] = seconds_to_ms(total)
        rec[name] = value

    h.native = ("rec_ms", key)  # type: ignore[attr-defined]
    return h


def _duration(rec: RawRecord, http: HttpFields, value: Any) -> None:
    http["duration_ms"] = seconds_to_ms(value)


_duration.code = 'http["duration_ms"] = seconds_to_ms({v})'  # type: ignore[attr-defined]
_duration.native = ("http_ms", "duration_ms")  # type: ignore[attr-defined]


def _request(rec: RawRecord, http: HttpFields, value: Any) -> None:
    rec["message"] = value
    parts = value.split(" ")
    if len(parts) == 3:
        http["method"], http["path"], rec["protocol"] = parts
    elif len(parts) == 2:
        http["method"], http["path"] = parts


def _trace(rec: RawRecord, http: HttpFields, value: Any) -> None:
    if "trace_id" in rec:
        rec["trace_header"] = value
    else:
        rec["trace_id"] = value


_request.inline = ("rec['message'] = {v}\n"  # type: ignore[attr-defined]
                   "_p = {v}.split(' ')\n"
                   "if len(_p) == 3:\n"
                   "    http['method'], http['path'], rec['protocol'] = _p\n"
                   "elif len(_p) == 2:\n"
                   "    http['method'], http['path'] = _p")
_request.native = ("request",)  # type: ignore[attr-defined]
_trace.native = ("trace",)  # type: ignore[attr-defined]
_trace.inline = ("if 'trace_id' in rec:\n"  # type: ignore[attr-defined]
                 "    rec['trace_header'] = {v}\n"
                 "else:\n"
                 "    rec['trace_id'] = {v}")


_FIXED: dict[str, Handler] = {
    "remote_addr": _set_http("client_ip", str),
    "status": _set_http("status", int),
    "body_bytes_sent": _set_http("bytes_sent", int),
    "request_time": _duration,
    "http_referer": _set_http("referer", str),
    "http_user_agent": _set_http("user_agent", str),
    "request": _request,
    "request_method": _set_http("method", str),
    "request_uri": _set_http("path", str),
    "request_id": _set_rec("request_id"),
    "http_x_request_id": _set_rec("request_id"),
    "http_x_amzn_trace_id": _trace,
    "http_traceparent": _trace,
    "hostname": _set_rec("host"),
    "host": _attr("vhost"),
    "server_protocol": _attr("protocol"),
    "http_x_forwarded_for": _attr("x_forwarded_for"),
}
_INT_ATTRS = frozenset({
    "request_length", "connection", "connection_requests", "remote_port", "server_port", "pid",
    "upstream_status", "upstream_bytes_received", "upstream_bytes_sent", "content_length",
    "bytes_received", "upstream_response_length",
})
_SECONDS_ATTRS = frozenset({
    "upstream_response_time", "upstream_connect_time", "upstream_header_time",
    "upstream_queue_time", "session_time",
})
TIME_VARIABLES = frozenset({"time_local", "time_iso8601", "msec"})


def handler_for(var: str, present: frozenset[str]) -> Handler:
    """The handler of ``$var`` in a format whose variables are ``present``."""
    if var == "time_local":
        return _TimeCache(parse_time_local)
    if var == "time_iso8601":
        return _TimeCache(parse_time_iso8601)
    if var == "msec":
        return _TimeCache(_parse_any_time)
    if var == "bytes_sent" and "body_bytes_sent" not in present:
        return _set_http("bytes_sent", int)
    if var == "uri" and "request_uri" not in present:
        return _set_http("path", str)
    fixed = _FIXED.get(var)
    if fixed is not None:
        return fixed
    if var in _INT_ATTRS:
        return _attr(var, "int")
    if var in _SECONDS_ATTRS:
        return _seconds_attr(var)
    return _attr(var)
