"""Syslog messages: RFC 5424 and RFC 3164 (BSD), told apart line by line.

``PRI`` gives the level (severity through :data:`logharbor.record.SYSLOG_SEVERITY_LEVEL`) and the
``facility`` name; the host becomes ``host``, APP-NAME / TAG becomes ``service``, PROCID / ``[pid]``
becomes ``pid`` (an int when numeric), MSGID ``msgid``, and RFC 5424 structured data becomes the
attribute ``structured_data`` = ``{sd_id: {param: value}}``. NILVALUE (``-``) means absent; a UTF-8
BOM before the message is dropped. RFC 3164 times have no zone and often no year: the zone is an
option (default UTC) and a missing year is the one that puts the time closest before "now" (a
December line read in January belongs to last year). Lines from syslog *files* have no ``<PRI>``;
they parse too, without a level. :func:`parse_syslog` is what the server's listeners call.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pydantic import field_validator

from logharbor.formats.base import Options, register, timestamp_value, unparsed
from logharbor.record import _MAX_NS, SYSLOG_SEVERITY_LEVEL, RecordError, parse_timestamp
from logharbor.types import RawRecord

__all__ = ["FACILITIES", "SyslogOptions", "SyslogParser", "format_rfc5424", "parse_syslog"]

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424 = re.compile(r"(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) ?(.*)\Z", re.S)
_SD_ELEMENT = re.compile(r'\[([^\s\]="]+)((?: +[^\s\]="]+="[^"\\]*(?:\\.[^"\\]*)*")*) *\]')
_SD_PARAM = re.compile(r'([^\s\]="]+)="([^"\\]*(?:\\.[^"\\]*)*)"')
_SD_ESCAPE = re.compile(r"\\([\"\\\]])")
_BSD_TIME = re.compile(
    r"([A-Z][a-z]{2}) +(\d{1,2}) (?:(\d{4}) )?(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: (\d{4}))? "
)
_ISO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\S+) ")
_HAS_OFFSET = re.compile(r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$")
_TAG = re.compile(r"([^\s\[\]:]+)(?:\[([^\]\s]*)\])?: ?")
_NS = 1_000_000_000


def _pri(rec: RawRecord, pri: int) -> None:
    facility, severity = divmod(pri, 8)
    rec["level"] = SYSLOG_SEVERITY_LEVEL[severity]
    rec["syslog_severity"] = severity
    rec["facility"] = FACILITIES[facility] if facility < len(FACILITIES) else str(facility)


def _pid(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _structured_data(text: str) -> tuple[dict[str, dict[str, str]], str] | None:
    """Parse the SD elements at the start of ``text``; return them and the rest, or None."""
    out: dict[str, dict[str, str]] = {}
    pos = 0
    while pos < len(text) and text[pos] == "[":
        m = _SD_ELEMENT.match(text, pos)
        if m is None:
            return None
        params = out.setdefault(m[1], {})
        for name, value in _SD_PARAM.findall(m[2]):
            params[name] = _SD_ESCAPE.sub(r"\1", value) if "\\" in value else value
        pos = m.end()
    return out, text[pos:]


def _parse_5424(line: str, rec: RawRecord, body: str) -> RawRecord:
    m = _RFC5424.match(body)
    if m is None:
        return unparsed(line, "RFC 5424 header is incomplete")
    _version, ts, host, app, procid, msgid, rest = m.groups()
    if ts != "-":
        try:
            rec["timestamp"] = timestamp_value(parse_timestamp(ts))
        except RecordError as exc:
            return unparsed(line, f"syslog time: {exc}")
    if host != "-":
        rec["host"] = host
    if app != "-":
        rec["service"] = app
    if procid != "-":
        rec["pid"] = _pid(procid)
    if msgid != "-":
        rec["msgid"] = msgid
    if rest.startswith("-"):
        msg = rest[2:] if rest[1:2] == " " else rest[1:]
    elif rest.startswith("["):
        found = _structured_data(rest)
        if found is None:
            return unparsed(line, "RFC 5424 structured data is malformed")
        sd, msg = found
        rec["structured_data"] = sd
        msg = msg[1:] if msg.startswith(" ") else msg
    else:
        return unparsed(line, "RFC 5424 structured data must be '-' or '[…]'")
    if msg.startswith("\ufeff"):
        msg = msg[1:]
    rec["message"] = msg
    return rec


def _bsd_time(m: re.Match[str], zone: ZoneInfo, now_ns: int) -> int:
    month = _MONTHS.get(m[1])
    if month is None:
        raise ValueError(f"unknown month {m[1]!r}")
    day, hh, mm, ss = int(m[2]), int(m[4]), int(m[5]), int(m[6])
    frac = int((m[7] + "000000")[:6]) if m[7] else 0
    explicit = m[3] or m[8]
    if explicit:
        dt = datetime(int(explicit), month, day, hh, mm, ss, frac, tzinfo=zone)
    else:
        now = datetime.fromtimestamp(now_ns / _NS, zone)
        # the year that puts the time closest to now, at most a week ahead (a sender's clock a
        # little fast): a December line read in January is last year's, a "Jan  1" line read on
        # December 31st next year's; Feb 29 takes the nearest leap year of the three
        candidates = []
        for year in (now.year - 1, now.year, now.year + 1):
            try:
                candidates.append(datetime(year, month, day, hh, mm, ss, frac, tzinfo=zone))
            except ValueError:
                continue
        if not candidates:
            raise ValueError(f"{m[1]} {day} is not a date")
        now_s = now_ns / _NS
        ahead_ok = [c for c in candidates if c.timestamp() <= now_s + 86400 * 7] or candidates
        dt = min(ahead_ok, key=lambda c: abs(c.timestamp() - now_s))
    return _in_range(int(dt.timestamp()) * _NS + frac * 1000)


def _in_range(ns: int) -> int:
    """``ns`` when the store can hold it; ValueError (the line is kept unparsed, with the reason)
    when not: ``Dec 31 1969`` from a device whose clock was never set was refused by ``normalize``
    after parsing, and on the server's listener that dropped it with a DEBUG line."""
    if ns < 0:
        raise ValueError("the time is before 1970")
    if ns > _MAX_NS:
        raise ValueError("the time is after 2262")
    return ns


#: the last RFC 3164 time read (text, zone, ns): a busy source repeats each second many times
_last_bsd: tuple[str, ZoneInfo | None, int] = ("", None, 0)


def _parse_3164(line: str, rec: RawRecord, body: str, zone: ZoneInfo,
                now_ns: int | None) -> RawRecord:
    m = _BSD_TIME.match(body)
    if m is not None:
        global _last_bsd
        last = _last_bsd  # one tuple, swapped whole: safe across threads
        text = m.group(0)
        if now_ns is None and last[0] == text and last[1] is zone:
            rec["timestamp"] = last[2]
        else:
            try:
                ns = _bsd_time(m, zone, time.time_ns() if now_ns is None else now_ns)
                rec["timestamp"] = timestamp_value(ns)
            except ValueError as exc:
                return unparsed(line, f"syslog time: {exc}")
            if now_ns is None:
                _last_bsd = (text, zone, rec["timestamp"])
        rest = body[m.end():]
    elif (iso := _ISO_TIME.match(body)) is not None:
        try:
            ns = parse_timestamp(iso[1])
            if not _HAS_OFFSET.search(iso[1]):  # an ISO time without its offset is local too
                local = datetime.fromtimestamp(ns // _NS, UTC).replace(tzinfo=zone)
                offset = local.utcoffset()
                ns = _in_range(ns - (int(offset.total_seconds()) * _NS if offset else 0))
            # (the offset was taken from the int: timestamp_value is text before 1973, and a
            # local time of 1970–1973 raised TypeError out of the parser, ending the UDP write of
            # every sender's datagrams or the TCP connection it came on)
            rec["timestamp"] = timestamp_value(ns)
        except (RecordError, ValueError) as exc:
            return unparsed(line, f"syslog time: {exc}")
        rest = body[iso.end():]
    elif "level" in rec:
        rest = body  # <PRI> and then no time: RFC 3164 §4.3.2 says use the receive time
    else:
        return unparsed(line, "not a syslog line")
    tag = _TAG.match(rest)
    if tag is None or " " in rest[: tag.end()].rstrip():
        first, _, after = rest.partition(" ")
        if first:
            rec["host"] = first
        rest = after
        tag = _TAG.match(rest)
    if tag is not None:
        rec["service"] = tag[1]
        if tag[2]:
            rec["pid"] = _pid(tag[2])
        rest = rest[tag.end():]
    rec["message"] = rest
    return rec


def parse_syslog(line: str, timezone: str = "UTC", now_ns: int | None = None) -> RawRecord:
    """Parse one RFC 5424 or RFC 3164 message (framing already removed) into a raw record.

    ``timezone`` applies to RFC 3164 times, which carry none; ``now_ns`` is "now" for the
    missing-year rule (default: the clock).
    """
    return _parse(line, _zone(timezone), now_ns)


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


def _parse(line: str, zone: ZoneInfo, now_ns: int | None) -> RawRecord:
    text = line.rstrip("\r\n")
    rec: RawRecord = {"source": "syslog"}
    body = text
    m = _PRI.match(text)
    if m is not None:
        pri = int(m[1])
        if pri > 191:
            return unparsed(line, f"syslog PRI {pri} is over 191")
        _pri(rec, pri)
        body = text[m.end():]
        if body[:2] == "1 " or (body[:1].isdigit() and body[1:2].isdigit() and body[2:3] == " "):
            return _parse_5424(line, rec, body)
    return _parse_3164(line, rec, body, zone, now_ns)


class SyslogOptions(Options):
    """``timezone``: zone of RFC 3164 times (they carry none); default UTC."""

    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        try:
            _zone(value)
        except (ValueError, KeyError, OSError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class SyslogParser:
    """Parses RFC 5424 and RFC 3164 lines into raw records with ``source: syslog``."""

    __slots__ = ("_zone",)

    def __init__(self, timezone: str = "UTC") -> None:
        self._zone = _zone(timezone)

    def parse(self, line: str) -> RawRecord:
        """Return the raw record of one syslog line."""
        return _parse(line, self._zone, None)


@register("syslog", SyslogOptions, "syslog RFC 5424 (structured data) and RFC 3164")
def build(options: SyslogOptions) -> SyslogParser:
    """Build a syslog parser."""
    return SyslogParser(options.timezone)


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_rfc5424(*, pri: int, message: str = "", timestamp: str | None = None,
                   host: str | None = None, app: str | None = None, procid: str | int | None = None,
                   msgid: str | None = None,
                   structured_data: dict[str, dict[str, str]] | None = None, bom: bool = False) -> str:
    """Write an RFC 5424 message (the inverse of the parser; for tests, the demo and senders)."""
    def nil(value: object) -> str:
        return "-" if value is None or value == "" else str(value)

    if structured_data:
        sd = "".join(
            "[" + sd_id + "".join(f' {k}="{_sd_escape(v)}"' for k, v in params.items()) + "]"
            for sd_id, params in structured_data.items()
        )
    else:
        sd = "-"
    head = f"<{pri}>1 {nil(timestamp)} {nil(host)} {nil(app)} {nil(procid)} {nil(msgid)} {sd}"
    if not message and not bom:
        return head
    return head + " " + ("\ufeff" if bom else "") + message
