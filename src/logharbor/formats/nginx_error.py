"""The NGINX error log: ``2026/11/01 12:00:00 [error] 123#0: *5 message, client: …, request: "…"``.

NGINX writes its local time without a zone, so the zone is an option (default UTC). The context
NGINX appends to a request's errors (``client``, ``server``, ``request``, ``upstream``, ``host``,
``referrer``) is cut off the message and mapped: ``client`` → ``http.client_ip``, ``request`` →
``http.method``/``http.path``, ``referrer`` → ``http.referer``, the others to attributes.
"""

from __future__ import annotations

import re

from logharbor.formats.base import timestamp_value, unparsed
from logharbor.formats.nginx_vars import local_time_parser
from logharbor.types import HttpFields, RawRecord

__all__ = ["NginxErrorParser"]

_LINE = re.compile(
    r"(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(\w+)\] (\d+)#(\d+): (?:\*(\d+) )?(.*)\Z", re.S
)
_CONTEXT = re.compile(
    r', (client|server|request|subrequest|upstream|host|referrer): ("(?:[^"\\]|\\.)*"|[^,]*)'
)
_CONTEXT_START = re.compile(r", (?:client|server): ")


class NginxErrorParser:
    """Parses NGINX error log lines into raw records with ``source: nginx``."""

    __slots__ = ("_last", "_parse_time")

    def __init__(self, timezone: str = "UTC") -> None:
        self._parse_time = local_time_parser(timezone)
        self._last: tuple[str, int | str] = ("", 0)

    def parse(self, line: str) -> RawRecord:
        """Return the raw record of one error log line."""
        m = _LINE.match(line)
        if m is None:
            return unparsed(line, "not an nginx error log line")
        when, level, pid, tid, conn, text = m.groups()
        last = self._last  # one tuple, swapped whole: safe across threads
        if when != last[0]:
            try:
                last = self._last = (when, timestamp_value(self._parse_time(when)))
            except ValueError as exc:
                return unparsed(line, f"nginx error log time: {exc}")
        rec: RawRecord = {
            "timestamp": last[1], "level": level, "source": "nginx",
            "pid": int(pid), "tid": int(tid), "log": "error",
        }
        if conn:
            rec["connection"] = int(conn)
        start = _CONTEXT_START.search(text)
        if start is not None:
            http: HttpFields = {}
            for key, raw in _CONTEXT.findall(text, start.start()):
                value = raw[1:-1].replace('\\"', '"') if raw[:1] == '"' else raw
                if key == "client":
                    http["client_ip"] = value
                elif key == "request":
                    parts = value.split(" ")
                    if len(parts) == 3:
                        http["method"], http["path"], rec["protocol"] = parts
                    rec["request"] = value
                elif key == "referrer":
                    http["referer"] = value
                elif key == "host":
                    rec["vhost"] = value
                else:
                    rec[key] = value
            if http:
                rec["http"] = http
            text = text[: start.start()]
        rec["message"] = text
        return rec
