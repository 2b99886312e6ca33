"""The end of a time window in SQL: exclusive, except at the store's last instant.

``timestamp`` is a DateTime64(9) over signed 64-bit nanoseconds, so the last instant the store
can hold is 2262-04-11T23:47:16.854775807Z (``LAST_NS``); ``normalize`` accepts records there. A
window's end is exclusive everywhere (``from`` ≤ t < ``to``), which left such a record beyond every
``to`` a request can name (no later instant fits in the parameter). So an end *at* ``LAST_NS``
includes it: ``to`` = 2262-04-11T23:47:16.854775807Z means "through the end of time".
"""

from __future__ import annotations

__all__ = ["LAST_NS", "before_end", "is_empty_window"]

#: the last instant ``timestamp`` can hold (int64 nanoseconds since the epoch)
LAST_NS = 2**63 - 1


def before_end(expr: str, placeholder: str, end_ns: int) -> str:
    """SQL true for times before ``end_ns`` (``placeholder`` holds it as Int64), or at it when it
    is the last instant. ``expr`` and ``placeholder`` are the caller's own SQL, never user text."""
    op = "<=" if end_ns >= LAST_NS else "<"
    return f"{expr} {op} fromUnixTimestamp64Nano({placeholder}, 'UTC')"


def is_empty_window(start_ns: int, end_ns: int) -> bool:
    """``[start, end)`` holds no instant (``[LAST_NS, LAST_NS]`` holds the last one)."""
    return end_ns < start_ns or (end_ns == start_ns and end_ns < LAST_NS)
