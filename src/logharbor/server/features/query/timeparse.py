"""Times and durations as users write them: in API requests, ``--since`` and ``_time:`` filters.

Accepted forms (DESIGN §3 "HTTP API"): RFC 3339 (``2026-11-01T00:00:00Z``, a bare date too),
epoch seconds (or ms/µs/ns, told apart by magnitude as :func:`logharbor.record.parse_timestamp`
does), ``now``, ``now-1h`` / ``now+5m``, and a bare duration ``15m`` meaning "15 minutes ago"
(so ``from: "15m"`` reads as "since 15 minutes"). Durations combine units: ``1h30m``.
"""

from __future__ import annotations

import re
import time

from logharbor.record import RecordError, parse_timestamp

__all__ = ["TimeParseError", "parse_duration_ns", "parse_time_ns"]

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86400 * 1_000_000_000,
    "w": 7 * 86400 * 1_000_000_000,
    "y": 365 * 86400 * 1_000_000_000,
}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_NOW = re.compile(r"now(?:([+-])(.+))?")
_MAX_NS = 9_223_372_036_854_775_807


class TimeParseError(ValueError):
    """A time or duration that is none of the accepted forms; the message quotes it."""


def parse_duration_ns(text: str) -> int:
    """``15m`` → 900 000 000 000; ``1h30m`` works; no sign, no spaces."""
    value = text.strip()
    if not _DURATION.fullmatch(value):
        raise TimeParseError(f"{text!r} is not a duration such as 30s, 15m, 1h, 7d or 1h30m")
    total = 0
    for number, unit in _PART.findall(value):
        part = float(number) * _UNITS_NS[unit]
        if part > _MAX_NS:  # also 'inf' from a number of hundreds of digits (round(inf) raises)
            raise TimeParseError(f"duration {text!r} is out of range")
        total += round(part)
    if total <= 0 or total > _MAX_NS:
        raise TimeParseError(f"duration {text!r} is out of range")
    return total


def parse_time_ns(value: str | int | float, *, now_ns: int | None = None) -> int:
    """An API or query time as integer nanoseconds since the epoch (UTC)."""
    now = time.time_ns() if now_ns is None else now_ns
    if isinstance(value, bool):
        raise TimeParseError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        try:
            return parse_timestamp(value)
        except RecordError as exc:
            raise TimeParseError(str(exc)) from None
    if not isinstance(value, str):
        raise TimeParseError(f"a time must be a string or a number, got {type(value).__name__}")
    text = value.strip()
    m = _NOW.fullmatch(text)
    if m is not None:
        if m[1] is None:
            return now
        delta = parse_duration_ns(m[2])
        out = now - delta if m[1] == "-" else now + delta
        if not 0 <= out <= _MAX_NS:
            raise TimeParseError(f"{value!r} is out of range")
        return out
    if _DURATION.fullmatch(text):
        return max(0, now - parse_duration_ns(text))
    try:
        return parse_timestamp(text)
    except RecordError:
        raise TimeParseError(
            f"{value!r} is not a time: use RFC 3339 (2026-11-01T00:00:00Z), epoch seconds, "
            "now, now-1h or a duration such as 15m"
        ) from None
