"""AWS Application Load Balancer access logs, and a formatter writing them.

An entry is space-separated fields, some in double quotes (with backslash escapes), in the order
of :data:`ALB_FIELDS` (33 in the current AWS format). Older entries stop earlier (17, 22, 25, 29
fields) and AWS appends new fields at the end, so anything from 13 fields (through ``request``) on
parses, and fields past the 33rd are kept in ``extra_fields``.

Mapping: ``time`` → ``timestamp``; ``elb_status_code`` → ``http.status`` (and the level);
``client:port`` → ``http.client_ip`` + ``client_port``; ``sent_bytes`` → ``http.bytes_sent``;
``request`` → ``http.method``, ``http.path`` (path and query), ``url``, ``protocol`` and the
message; ``user_agent`` → ``http.user_agent``; ``trace_id`` (the X-Amzn-Trace-Id header) →
``trace_id``. The three processing times become ``*_processing_ms`` attributes in
**milliseconds**, and ``http.duration_ms`` is their sum when all three are known; AWS writes
``-1`` when the load balancer could not dispatch or answer, and those are left out. Every other
field is an attribute under its AWS name (``target:port`` → ``target_ip``/``target_port``,
``target:port_list`` → ``target_port_list``), ``-`` meaning absent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from logharbor.formats.base import Options, register, seconds_to_ms, timestamp_value, ufloat, uint, unparsed
from logharbor.record import RecordError, format_timestamp, parse_timestamp
from logharbor.types import HttpFields, RawRecord

__all__ = ["ALB_FIELDS", "AlbOptions", "AlbParser", "format_alb_line", "parse_alb"]

ALB_FIELDS = (
    "type", "time", "elb", "client:port", "target:port", "request_processing_time",
    "target_processing_time", "response_processing_time", "elb_status_code", "target_status_code",
    "received_bytes", "sent_bytes", "request", "user_agent", "ssl_cipher", "ssl_protocol",
    "target_group_arn", "trace_id", "domain_name", "chosen_cert_arn", "matched_rule_priority",
    "request_creation_time", "actions_executed", "redirect_url", "error_reason",
    "target:port_list", "target_status_code_list", "classification", "classification_reason",
    "conn_trace_id", "transformed_host", "transformed_uri", "request_transform_status",
)
QUOTED_FIELDS = frozenset({
    "request", "user_agent", "trace_id", "domain_name", "chosen_cert_arn", "actions_executed",
    "redirect_url", "error_reason", "target:port_list", "target_status_code_list", "classification",
    "classification_reason", "transformed_host", "transformed_uri", "request_transform_status",
})
MIN_FIELDS = 13
_TOKEN = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"(?= |$)|([^ ]+)')
_BACKSLASH = re.compile(r"\\(.)")
# attributes copied as text, by field index
_TEXT_ATTRS = tuple(
    (i, name.replace(":", "_")) for i, name in enumerate(ALB_FIELDS)
    if name in {
        "ssl_cipher", "ssl_protocol", "target_group_arn", "domain_name", "chosen_cert_arn",
        "request_creation_time", "actions_executed", "redirect_url", "error_reason",
        "target:port_list", "target_status_code_list", "classification", "classification_reason",
        "conn_trace_id", "transformed_host", "transformed_uri", "request_transform_status",
    }
)
_TIMES = ((5, "request_processing_ms"), (6, "target_processing_ms"), (7, "response_processing_ms"))


def _split_addr(value: str) -> tuple[str, int | None]:
    """``1.2.3.4:80``, ``[2001:db8::1]:80`` or ``2001:db8::1:80`` → (address, port)."""
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
        return host, int(port) if port.isdigit() else None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return value, None
    return host, int(port)


def _split_request(rec: RawRecord, http: HttpFields, request: str) -> None:
    """``GET https://host:443/p?q HTTP/1.1`` → method, url, path (with query), protocol."""
    parts = request.split(" ")
    if len(parts) != 3:
        return
    method, url, protocol = parts
    if method != "-":
        http["method"] = method
    if protocol != "-":
        rec["protocol"] = protocol
    if url and url != "-":
        rec["url"] = url
        scheme_end = url.find("://")
        slash = url.find("/", scheme_end + 3) if scheme_end >= 0 else url.find("/")
        if slash >= 0:
            http["path"] = url[slash:]


def _scan(line: str) -> list[str] | None:
    """Split an entry into its fields, quotes removed; None when a quote is not closed.

    Without backslashes, splitting on ``"`` gives outside and inside segments alternately, all in
    C; with one, a regex tokenizer handles the escapes.
    """
    if "\\" not in line:
        segments = line.split('"')
        if not len(segments) % 2:
            return None
        values: list[str] = []
        for i, segment in enumerate(segments):
            if i % 2:
                values.append(segment)
            elif segment:
                values.extend(segment.split())
        return values
    values = []
    for quoted, bare in _TOKEN.findall(line):
        if bare:
            if bare[0] == '"':
                return None
            values.append(bare)
        else:
            values.append(_BACKSLASH.sub(r"\1", quoted) if "\\" in quoted else quoted)
    return values


def parse_alb(line: str) -> RawRecord:
    """Parse one ALB access log entry into a raw record (``source: alb``)."""
    values = _scan(line)
    if values is None:
        return unparsed(line, "unterminated quoted field")
    n = len(values)
    if n < MIN_FIELDS:
        return unparsed(line, f"ALB entry has {n} fields, at least {MIN_FIELDS} expected")
    try:
        ts = parse_timestamp(values[1])
    except RecordError as exc:
        return unparsed(line, f"ALB time: {exc}")
    rec: RawRecord = {"timestamp": timestamp_value(ts), "source": "alb", "type": values[0], "elb": values[2]}
    http: HttpFields = {}
    try:
        client = values[3]
        if client != "-":
            http["client_ip"], port = _split_addr(client)
            if port is not None:
                rec["client_port"] = port
        target = values[4]
        if target != "-":
            rec["target_ip"], port = _split_addr(target)
            if port is not None:
                rec["target_port"] = port
        total = 0.0
        known = 0
        for i, name in _TIMES:
            text = values[i]
            if text[:1] != "-":  # AWS writes -1 when it could not dispatch or answer
                seconds = ufloat(text)
                rec[name] = seconds_to_ms(seconds)
                total += seconds
                known += 1
        if known == 3:
            http["duration_ms"] = seconds_to_ms(total)
        if values[8] != "-":
            status = uint(values[8])
            http["status"] = status
            rec["level"] = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
        if values[9] != "-":
            rec["target_status_code"] = uint(values[9])
        if values[10] != "-":
            rec["received_bytes"] = uint(values[10])
        if values[11] != "-":
            http["bytes_sent"] = uint(values[11])
    except ValueError as exc:
        return unparsed(line, f"ALB numeric field: {exc}")
    request = values[12]
    rec["message"] = request
    _split_request(rec, http, request)
    if n > 13 and values[13] != "-":
        http["user_agent"] = values[13]
    if n > 17 and values[17] != "-":
        rec["trace_id"] = values[17]
    if n > 20 and values[20] != "-":
        try:
            rec["matched_rule_priority"] = int(values[20])
        except ValueError:
            rec["matched_rule_priority"] = values[20]
    for i, name in _TEXT_ATTRS:
        if i >= n:
            break
        value = values[i]
        if value != "-" and value:
            rec[name] = value
    if n > len(ALB_FIELDS):
        rec["extra_fields"] = values[len(ALB_FIELDS):]
    if http:
        rec["http"] = http
    return rec


class AlbOptions(Options):
    """``alb`` takes no options: the field order is AWS's."""


class AlbParser:
    """Parses AWS ALB access log entries (13 to 33 fields, extra trailing fields kept)."""

    __slots__ = ()

    def parse(self, line: str) -> RawRecord:
        """Return the raw record of one ALB entry."""
        return parse_alb(line)


@register("alb", AlbOptions, "AWS Application Load Balancer access logs")
def build(options: AlbOptions) -> AlbParser:
    """Build an ALB parser."""
    return AlbParser()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_alb_line(fields: Mapping[str, Any], n_fields: int = len(ALB_FIELDS),
                    extra: Sequence[str] = ()) -> str:
    """Write an ALB access log entry from values keyed by the AWS field names.

    ``time`` and ``request_creation_time`` may be integer ns; processing times are seconds
    (``-1`` allowed); a missing or None field is written as ``-`` (quoted where AWS quotes it).
    ``n_fields`` writes an older, shorter entry; ``extra`` appends fields AWS may add later.
    """
    out: list[str] = []
    for name in ALB_FIELDS[:n_fields]:
        value = fields.get(name)
        if value is None or value == "":
            text = "-"
        elif name in ("time", "request_creation_time") and isinstance(value, int):
            text = format_timestamp(value - value % 1000)
        elif name.endswith("processing_time"):
            text = "-1" if value == -1 else f"{float(value):.3f}"
        else:
            text = str(value)
        out.append(_quote(text) if name in QUOTED_FIELDS else text)
    out.extend(extra)
    return " ".join(out)
