"""The flat wire form of a record (DESIGN §2) back into the canonical shape the Loki answers use.

Why: the tail hub hands out wire records (attributes inline, RFC 3339 times) while stream labels
and ``line_format`` read canonical records (``http`` and ``attributes`` apart, times in ns).
"""

from __future__ import annotations

from typing import Any

from logharbor.record import STRING_FIELDS, parse_timestamp

__all__ = ["wire_to_record"]

_CANONICAL = {*STRING_FIELDS, "level", "severity_number"}


def wire_to_record(wire: dict[str, Any]) -> dict[str, Any]:
    """A wire record as ``{timestamp: ns, <canonical>, http: {...}, attributes: {...}}``."""
    record: dict[str, Any] = {"timestamp": parse_timestamp(wire["timestamp"]), "http": {}, "attributes": {}}
    for key, value in wire.items():
        if key in ("timestamp", "observed_timestamp"):
            continue
        if key in _CANONICAL:
            record[key] = value
        elif key == "http" and isinstance(value, dict):
            record["http"] = dict(value)
        else:
            record["attributes"][key] = value
    return record
