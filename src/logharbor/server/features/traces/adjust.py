"""Trace times corrected by each clock's estimated offset (issue 28): what the waterfall places by
clock (the request's start, a layer without its caller, the app's own events) lines up in true
time, so skew shows no negative gaps; durations, measured on one clock, never change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logharbor.record import RecordError, format_timestamp, parse_timestamp
from logharbor.server.features.traces.skew import clock_of

__all__ = ["Offsets", "adjust_clocks"]

#: tenant → the latest offsets of its clocks, by (layer, clock name)
Offsets = Callable[[str], dict[tuple[str, str], dict[str, Any]]]


def adjust_clocks(records: list[dict[str, Any]], offsets_for: Offsets | None
                  ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Copies of ``records`` with each time moved by its clock's estimated offset, and what was
    applied (``reference``, and per clock its offset, uncertainty, estimate time and records).

    Only the copies used for the waterfall change: the records shown are as they were logged. Only
    offsets known to be non-zero (larger than their uncertainty) are applied.
    """
    applied: dict[tuple[str, str, str], dict[str, Any]] = {}
    reference = None
    known: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    out = []
    for i, record in enumerate(records):
        tenant = record.get("tenant") or ""
        if offsets_for is None:
            out.append(record)
            continue
        if tenant not in known:
            known[tenant] = offsets_for(tenant)
        clock = clock_of(record)
        found = known[tenant].get((clock.layer, clock.name))
        # a clock whose interval holds 0 (the reference, one in sync) is left as logged: moving it
        # by its estimate's middle would only add noise
        if found is None or abs(float(found["offset_ms"])) <= float(found.get("uncertainty_ms") or 0.0):
            out.append(record)
            continue
        reference = reference or found.get("reference")
        shift = round(float(found["offset_ms"]) * 1e6)
        entry = applied.setdefault((tenant, clock.layer, clock.name), {
            "clock": clock.name, "layer": clock.layer, "offset_ms": found["offset_ms"],
            "uncertainty_ms": found["uncertainty_ms"], "at": found.get("at"), "records": []})
        entry["records"].append(i)
        copy = {**record, "timestamp": record["timestamp"] - shift}
        created = (record.get("attributes") or {}).get("request_creation_time")
        if created and clock.layer == "alb":
            try:
                moved = format_timestamp(parse_timestamp(created) - shift)
                copy["attributes"] = {**record["attributes"], "request_creation_time": moved}
            except RecordError:
                pass
        out.append(copy)
    return out, {"mode": "adjusted" if offsets_for is not None else "raw", "reference": reference,
                 "applied": list(applied.values())}
