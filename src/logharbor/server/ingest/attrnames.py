"""Attribute names that cannot collide with the canonical fields, shared by the protocol adapters.

What a shipper sends under a canonical name (an ECS ``host`` object, an OTel ``host.arch``
resource attribute) is kept beside the canonical field as ``host_arch`` instead of being shadowed
by it or turning the whole object into the host name. The first store (one JSON column whose
dotted keys were paths) made this necessary; the attributes text keeps any key as sent, but the
renaming stays: records stored before are named so, and the searches, alerts and dashboards
written for them.
"""

from __future__ import annotations

__all__ = ["CANONICAL_NAMES", "attribute_key"]

#: top-level names of canonical fields (record.py); a dotted key under one of them is renamed
CANONICAL_NAMES = frozenset((
    "timestamp", "observed_timestamp", "level", "severity_number", "message", "service", "source",
    "host", "instance", "env", "version", "tenant", "http", "trace_id", "span_id", "request_id",
))


_SEEN: dict[str, str] = {}


def attribute_key(key: str) -> str:
    """``host.arch`` → ``host_arch``; any key not under a canonical name is kept as it is."""
    known = _SEEN.get(key)
    if known is not None:
        return known
    head, dot, rest = key.partition(".")
    out = f"{head}_{rest}" if dot and head in CANONICAL_NAMES else key
    if len(_SEEN) < 10_000:  # attribute names repeat; a flood of distinct ones is not cached
        _SEEN[key] = out
    return out
