"""A read request's time window: each time parameter read, and the order of its two ends checked.

The query, fields, explain, trace, clock-offset and service-health APIs all take ``from``/``to``
(or ``since``); they read them here so that a bad time is the same ``invalid_time`` 400 everywhere
and an empty window is refused with the same words.
"""

from __future__ import annotations

from logharbor.server.engine.store.timebounds import is_empty_window
from logharbor.server.errors import ApiError

from .timeparse import TimeParseError, parse_time_ns

__all__ = ["check_order", "request_time", "request_window"]


def request_time(value: str | bool | int | float | None, name: str, now_ns: int) -> int | None:
    """A time given in a request (``from``, ``to`` …) in ns, None when absent; a 400
    ``invalid_time`` naming the parameter when it is not a time."""
    if value is None or value == "":
        return None
    try:
        return parse_time_ns(value, now_ns=now_ns)
    except TimeParseError as exc:
        raise ApiError(400, "invalid_time", f"'{name}': {exc}") from None


def check_order(start_ns: int | None, end_ns: int | None) -> None:
    """A 400 ``invalid_time`` when both ends are given and ``to`` is not after ``from`` (but
    ``from`` = ``to`` = the store's last instant is the window of that instant, see timebounds)."""
    if start_ns is not None and end_ns is not None and is_empty_window(start_ns, end_ns):
        raise ApiError(400, "invalid_time", "'to' must be after 'from'")


def request_window(start: str | bool | int | float | None, end: str | bool | int | float | None,
                   now_ns: int) -> tuple[int | None, int | None]:
    """``from`` and ``to`` of a request read (:func:`request_time`) and ordered (:func:`check_order`)."""
    start_ns = request_time(start, "from", now_ns)
    end_ns = request_time(end, "to", now_ns)
    check_order(start_ns, end_ns)
    return start_ns, end_ns
