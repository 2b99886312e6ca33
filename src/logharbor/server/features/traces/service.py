"""One request as every layer saw it (ALB → NGINX → app), with timings: what ``GET /api/v1/traces/{id}``
answers (``routes.py`` reads the id and the window and maps a missing trace or a failed lookup to
its 4xx/5xx).

The id may be a W3C trace id, an ``X-Amzn-Trace-Id`` value (``Root=1-…``, ``Self=…;Root=…``) or
its bare Root, a ``traceparent`` header, or an NGINX ``$request_id`` / ``X-Request-ID``. Records
join on the normalized trace id; a layer that lost the trace id (an app that only saw
``X-Request-ID``) joins through the request id it shares with the NGINX record. That is two
indexed lookups: the records carrying the id, then those carrying the ids found beside it. Both
are ``… IN (…)`` on ``trace_id`` or ``request_id``, answered by the bloom-filter skip indexes.

The timing breakdown takes what each layer measured itself, because clocks on three machines do
not agree to the millisecond while durations measured on one clock are exact:

- ALB: ``request_processing_ms``, ``target_processing_ms``, ``response_processing_ms``;
- NGINX: ``$request_time`` (``http.duration_ms``) and ``$upstream_response_time``
  (``upstream_response_time_ms``);
- the app: its own ``http.duration_ms``;

and the gaps: ALB target time − NGINX request time (network and queueing between ALB and NGINX),
NGINX request time − upstream time (NGINX's own overhead), upstream time − app duration (between
NGINX and the app). The waterfall nests each layer inside its caller from those durations,
splitting each gap evenly before and after; it does not depend on the machines' clocks.

What does depend on them (the start of the request, a layer whose caller is missing, the app's
own events) uses times corrected by each clock's estimated offset (``features/traces/skew.py``)
by default; ``?clock=raw`` shows the times as logged, and ``timings.clock`` says what was applied.
"""


from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from logharbor.record import RecordError, format_timestamp, parse_timestamp, to_wire
from logharbor.server.engine.store.base import Store
from logharbor.server.engine.store.rows import row_to_record
from logharbor.server.engine.store.sql.traces import id_condition, lookup_sql
from logharbor.server.features.traces.adjust import Offsets, adjust_clocks

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "TraceKey", "breakdown", "find_trace", "trace_answer", "waterfall"]

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
#: ids collected from the first lookup; more than this is not one request any more
MAX_JOIN_IDS = 64
#: how far from an X-Amzn-Trace-Id's own time the first try looks (records of a request are close)
HINT_S = 86_400
_NS = 1_000_000_000


@dataclass(frozen=True)
class TraceKey:
    """What an id given by a user can mean: a trace id, a request id, or (32 hex) either."""

    raw: str
    trace_id: str | None
    request_id: str | None
    #: the epoch seconds an ``X-Amzn-Trace-Id`` Root carries (AWS writes the request's time there)
    epoch_s: int | None = None


def _lookup(store: Store, trace_ids: list[str], request_ids: list[str], *, exclude: str = "",
            exclude_params: dict[str, Any] | None = None, start_ns: int | None, end_ns: int | None,
            limit: int, scope: tuple[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Rows with any of the ids, oldest first; only the columns named use their skip index."""
    sql, params = lookup_sql(store.table, trace_ids, request_ids, exclude=exclude,
                             exclude_params=exclude_params, start_ns=start_ns, end_ns=end_ns, limit=limit,
                             scope=scope)
    return store.query(sql, params)


def find_trace(store: Store, key: TraceKey, *, start_ns: int | None = None, end_ns: int | None = None,
               limit: int = DEFAULT_LIMIT, scope: tuple[str, dict[str, Any]] | None = None
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of one request, oldest first, and how they were found.

    With no window given, an ``X-Amzn-Trace-Id`` is first looked up within a day of the time in
    its Root, so the engine reads a few daily partitions instead of all of them; a Root whose time
    is wrong (a client may send its own) falls back to the whole table.
    """
    if start_ns is None and end_ns is None and key.epoch_s is not None:
        rows, info = _find(store, key, start_ns=(key.epoch_s - HINT_S) * _NS,
                           end_ns=(key.epoch_s + HINT_S) * _NS, limit=limit, scope=scope)
        if rows:
            return rows, info
        rows, more = _find(store, key, start_ns=None, end_ns=None, limit=limit, scope=scope)
        more["queries"] += info["queries"]
        return rows, more
    return _find(store, key, start_ns=start_ns, end_ns=end_ns, limit=limit, scope=scope)


def _find(store: Store, key: TraceKey, *, start_ns: int | None, end_ns: int | None, limit: int,
          scope: tuple[str, dict[str, Any]] | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """:func:`find_trace` within one window.

    Each lookup consults one skip index, because at 10M rows checking a bloom filter index costs
    more than reading the few granules it selects. First the id as given (32 hex: as a trace id,
    and only when that finds nothing as a request id); then the ids those rows carry that were
    not searched yet — usually the NGINX ``$request_id`` behind a trace id, or the trace id
    behind a request id — excluding the rows already found.
    """
    first_t = [key.trace_id] if key.trace_id else []
    first_r = [key.request_id] if key.request_id else []
    window = {"start_ns": start_ns, "end_ns": end_ns, "limit": limit, "scope": scope}
    queries = 1
    if first_t and first_r:  # 32 hex: a trace id or an NGINX request id, most often the former
        rows = _lookup(store, first_t, [], **window)
        if rows:
            first_r = []  # its use as a request id is looked up with the other request ids below
        else:
            first_t = []
            rows = _lookup(store, [], first_r, **window)
            queries = 2
    else:
        rows = _lookup(store, first_t, first_r, **window)
    info: dict[str, Any] = {"queries": queries, "truncated": len(rows) > limit}
    if not rows:
        return [], info
    new_t = [t for t in dict.fromkeys(r["trace_id"] for r in rows if r.get("trace_id")) if t not in first_t]
    new_r = [i for i in dict.fromkeys(r["request_id"] for r in rows if r.get("request_id"))
             if i not in first_r]
    if first_t and key.trace_id and key.trace_id not in new_r:
        new_r.append(key.trace_id)  # an app may log the trace id as its request id
    if new_t or new_r:
        params: dict[str, Any] = {}
        seen = []
        if first_t:
            seen.append(id_condition("trace_id", first_t, "xt", params))
        if first_r:
            seen.append(id_condition("request_id", first_r, "xr", params))
        more = _lookup(store, new_t[:MAX_JOIN_IDS], new_r[:MAX_JOIN_IDS], exclude=" OR ".join(seen),
                       exclude_params=params, **window)
        info["queries"] = queries + 1
        if more:
            rows = sorted(rows + more, key=lambda r: r["timestamp"])
    info["truncated"] = len(rows) > limit
    return rows[:limit], info


# ------------------------------------------------------------------------------------ timings

def _layer(record: dict[str, Any]) -> str:
    source = (record.get("source") or "").lower()
    return source if source in ("alb", "nginx") else "app"


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _pick(records: list[dict[str, Any]], layer: str, measure: str) -> int | None:
    """Index of the record that measured ``layer``: the one with the longest duration there."""
    best, best_ms = None, -1.0
    for i, rec in enumerate(records):
        if _layer(rec) != layer:
            continue
        if measure == "target":
            ms = _num(rec["attributes"].get("target_processing_ms"))
        else:
            ms = _num(rec["http"].get("duration_ms"))
        if ms is not None and ms > best_ms:
            best, best_ms = i, ms
    return best


def breakdown(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The timing breakdown of canonical records (see the module docstring); None where unknown."""
    alb_i = _pick(records, "alb", "target")
    if alb_i is None:
        alb_i = _pick(records, "alb", "duration")
    nginx_i = _pick(records, "nginx", "duration")
    app_i = _pick(records, "app", "duration")
    alb = records[alb_i] if alb_i is not None else None
    nginx = records[nginx_i] if nginx_i is not None else None
    app = records[app_i] if app_i is not None else None
    alb_attrs = alb["attributes"] if alb else {}
    alb_target = _num(alb_attrs.get("target_processing_ms"))
    nginx_request = _num(nginx["http"].get("duration_ms")) if nginx else None
    upstream = _num(nginx["attributes"].get("upstream_response_time_ms")) if nginx else None
    app_ms = _num(app["http"].get("duration_ms")) if app else None
    return {
        "alb": None if alb is None else {
            "record": alb_i,
            "request_processing_ms": _num(alb_attrs.get("request_processing_ms")),
            "target_processing_ms": alb_target,
            "response_processing_ms": _num(alb_attrs.get("response_processing_ms")),
            "total_ms": _num(alb["http"].get("duration_ms")),
        },
        "nginx": None if nginx is None else {
            "record": nginx_i, "request_time_ms": nginx_request, "upstream_response_time_ms": upstream,
            "upstream": nginx["attributes"].get("upstream_addr"),
        },
        "app": None if app is None else {
            "record": app_i, "duration_ms": app_ms, "service": app.get("service"),
            "instance": app.get("instance"),
        },
        "gaps": {
            "alb_to_nginx_ms": _diff(alb_target, nginx_request),
            "nginx_overhead_ms": _diff(nginx_request, upstream),
            "nginx_to_app_ms": _diff(upstream, app_ms),
        },
    }


def _start_ns(record: dict[str, Any]) -> int:
    """When a layer began the request by its own clock: the ALB says so; others log at the end."""
    created = record["attributes"].get("request_creation_time")
    if _layer(record) == "alb" and created:
        try:
            return parse_timestamp(created)
        except RecordError:
            pass
    ms = _num(record["http"].get("duration_ms")) or 0.0
    return record["timestamp"] - int(ms * 1e6)


def waterfall(records: list[dict[str, Any]], timings: dict[str, Any]) -> dict[str, Any]:
    """Bars for a terminal or a page: ``start_ms``/``duration_ms`` from the start of the request.

    Each layer sits inside its caller, offset by half the gap between them; a layer whose caller
    is missing starts where its own clock says. Other records are points (``at_ms``).
    """
    layers = {name: timings[name] for name in ("alb", "nginx", "app") if timings[name] is not None}
    first = next(iter(layers.values()), None)
    if first is not None:
        t0 = _start_ns(records[first["record"]])
    elif records:
        t0 = min(_start_ns(r) for r in records)
    else:
        t0 = 0
    bars: list[dict[str, Any]] = []
    parent_end: tuple[float, float] | None = None  # (start, length) of the window the next layer fills

    def own(index: int) -> float:
        return round((_start_ns(records[index]) - t0) / 1e6, 3)

    alb = layers.get("alb")
    if alb is not None:
        req = alb["request_processing_ms"] or 0.0
        target = alb["target_processing_ms"]
        resp = alb["response_processing_ms"] or 0.0
        total = alb["total_ms"] if alb["total_ms"] is not None else req + (target or 0.0) + resp
        bars.append({"label": "alb", "layer": "alb", "start_ms": own(alb["record"]), "duration_ms": total,
                     "record": alb["record"]})
        if target is not None:
            start = bars[-1]["start_ms"] + req
            bars.append({"label": "alb → target", "layer": "alb", "start_ms": round(start, 3),
                         "duration_ms": target, "record": alb["record"]})
            parent_end = (start, target)
    for name, length_key, inner_key in (("nginx", "request_time_ms", "upstream_response_time_ms"),
                                        ("app", "duration_ms", None)):
        layer = layers.get(name)
        if layer is None:
            parent_end = None
            continue
        length = layer[length_key] or 0.0
        if parent_end is not None:
            start = parent_end[0] + max(parent_end[1] - length, 0.0) / 2
        else:
            start = own(layer["record"])
        label = name
        if name == "app":
            label = f"app {layer.get('instance') or layer.get('service') or ''}".strip()
        bars.append({"label": label, "layer": name, "start_ms": round(start, 3), "duration_ms": length,
                     "record": layer["record"]})
        parent_end = None
        if inner_key is not None and layer.get(inner_key) is not None:
            inner = layer[inner_key]
            up_start = start + max(length - inner, 0.0) / 2
            bars.append({"label": "nginx → upstream", "layer": name, "start_ms": round(up_start, 3),
                         "duration_ms": inner, "record": layer["record"]})
            parent_end = (up_start, inner)
    points = [{"record": i, "layer": _layer(r), "at_ms": round((r["timestamp"] - t0) / 1e6, 3)}
              for i, r in enumerate(records)]
    return {"start": format_timestamp(t0) if records else None, "bars": bars, "events": points}

# ------------------------------------------------------------------------------------ the answer

def trace_answer(key: TraceKey, rows: list[dict[str, Any]], how: dict[str, Any], *, began: float,
                 offsets_for: Offsets | None = None) -> dict[str, Any]:
    """The whole JSON answer for the rows :func:`find_trace` found (some) of ``key``;
    ``offsets_for`` (tenant → offsets by (layer, clock)) corrects the times the waterfall uses,
    None: raw times; ``began`` (``time.perf_counter()`` before the lookup) times the answer."""
    records = [row_to_record(row) for row in rows]
    timings = breakdown(records)
    adjusted, timings["clock"] = adjust_clocks(records, offsets_for)
    trace_ids = sorted({r["trace_id"] for r in records if r.get("trace_id")})
    return {
        "id": key.raw,
        "trace_id": key.trace_id or (trace_ids[0] if trace_ids else None),
        "trace_ids": trace_ids,
        "request_ids": sorted({r["request_id"] for r in records if r.get("request_id")}),
        "layers": sorted({_layer(r) for r in records}),
        "timings": timings,
        "waterfall": waterfall(adjusted, timings),
        "records": [to_wire(r) for r in records],
        "stats": {"elapsed_ms": round((time.perf_counter() - began) * 1000, 3), "queries": how["queries"],
                  "truncated": how["truncated"], "records": len(records)},
    }
