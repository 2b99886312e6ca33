"""Attribute names that cannot collide with the canonical fields, shared by the protocol adapters.

What a shipper sends under a canonical name (an ECS ``host`` object, an OTel ``host.arch``
resource attribute) is kept beside the canonical field as ``host_arch`` instead of being shadowed
by it or turning the whole object into the host name. The first store (one JSON column whose
dotted keys were paths) made this necessary; the attributes text keeps any key as sent, but the
renaming stays: records stored before are named so, and the searches, alerts and dashboards
written for them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CANONICAL_NAMES", "attribute_key", "same_value", "set_beside"]

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


def set_beside(raw: dict[str, Any], name: str, value: Any, suffix: str) -> str:
    """Set ``raw[name] = value``, unless the record already has ``name`` with another value: then
    ``value`` is kept as ``<name>_<suffix>`` (``…_<suffix>2``, ``3`` … when that is taken by another
    value too). Returns the name it is stored under.

    Why: a protocol's own value (a forward tag, a bulk action's index) and a key of the record of
    the same name used to be decided by ``setdefault``: the protocol's value vanished without a
    word. The record keeps its key; the other value is kept beside it under a name that says where
    it came from.
    """
    if name not in raw or same_value(raw[name], value):
        raw[name] = value
        return name
    kept, n = f"{name}_{suffix}", 2
    while kept in raw and raw[kept] != value:
        kept, n = f"{name}_{suffix}{n}", n + 1
    raw[kept] = value
    return kept


def same_value(a: Any, b: Any) -> bool:
    """Whether two values of one name are the same value: equal *and* of one type, since Python
    has ``True == 1`` and ``1 == 1.0`` where JSON has two different values (one would be lost)."""
    return a is b or (type(a) is type(b) and a == b)
