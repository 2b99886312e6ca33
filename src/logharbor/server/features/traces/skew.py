"""Clock skew from the requests themselves: each host's clock offset, bounded by causality.

Every request of the reference stack is stamped by three clocks: the ALB's, NGINX's host and the
app instance's. Each layer also measures its own duration on its own clock, which is exact to its
resolution whatever the clock's offset. A called layer runs *inside* its caller in true time:

- it starts after the caller forwarded the request (ALB: ``request_creation_time`` +
  ``request_processing``; NGINX: its end − ``$request_time``), and
- it ends before the caller ends (the ALB logs after the whole response came back; NGINX writes
  its line after its last byte).

With ``d = θ_child − θ_parent`` (θ: how far a clock is ahead of true time), one request gives
``child_end − parent_end ≤ d ≤ child_start − parent_send``, each time widened by its resolution
(NGINX's ``$time_local`` has whole seconds, durations have milliseconds). The interval is about as
wide as the gaps around the child (a few ms); over many requests the tightest bounds pin ``d``.
A few requests may break the assumptions (a retried upstream, a mis-joined id), so each bound is
the k-th tightest rather than the tightest (k = 1 + 0.5 % of the requests). Pairs are ALB→NGINX,
NGINX→app and ALB→app (the app inside the ALB's window too, which does not suffer from NGINX's
whole seconds). The pairs are difference constraints between clocks; shortest paths from the
reference clock (the ALB: AWS keeps it on Amazon Time Sync; else the clock in the most requests)
give each clock's tightest interval. The estimate is its middle and the uncertainty its half
width: when the assumptions hold, the true offset lies within ``offset ± uncertainty``.

It assumes each clock's offset is steady over the window (drift well under the uncertainty), and
that an app's access record is stamped when its duration ends: the sdk's middleware promises it
within :data:`APP_STAMP_SLACK_NS` (it takes both again when more passed between them, as when the
process is descheduled on a loaded machine), and the app's start is widened by that much. A stamp
taken later than that (another logger, ms after the duration was read) would put the start late and
the lower bound above the truth: under two test processes the interval missed a 40 ms skew by 0.9 ms
before the sdk took the two readings together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from logharbor.record import RecordError, parse_timestamp

__all__ = ["APP_STAMP_SLACK_NS", "MIN_REQUESTS", "MS", "Clock", "ClockEstimate", "Estimate", "clock_of",
           "estimate_offsets", "pair_intervals"]

MS = 1_000_000
#: requests a pair of clocks needs before its bounds are used
MIN_REQUESTS = 20
#: share of the requests whose bounds may be ignored as outliers (plus one)
TRIM = 0.005
#: resolution of the durations ALB and NGINX log (milliseconds)
DURATION_NS = MS
#: how long after its duration's end an app's access record may be stamped (the sdk's
#: ``STAMP_SLACK_S``, sdk/middleware.py; a test holds the two equal)
APP_STAMP_SLACK_NS = 100_000


@dataclass(frozen=True)
class Clock:
    """Whose clock stamped a record: ALB by name, NGINX by host, an app by instance."""

    tenant: str
    layer: str
    name: str
    host: str
    instance: str
    service: str


def _layer(record: Mapping[str, Any]) -> str:
    source = (record.get("source") or "").lower()
    return source if source in ("alb", "nginx") else "app"


def clock_of(record: Mapping[str, Any]) -> Clock:
    """The clock that stamped ``record``; an app instance is a clock of its own."""
    layer = _layer(record)
    host = record.get("host") or ""
    instance = record.get("instance") or "" if layer == "app" else ""
    service = record.get("service") or ""
    name = (instance or host or service) if layer == "app" else (host or service) if layer == "nginx" \
        else (service or host)
    return Clock(record.get("tenant") or "", layer, name or layer, host, instance, service)


def _resolution(ts: int) -> int:
    """How much later than its stamp an event may be: a whole-second stamp (NGINX's
    ``$time_local``) is anywhere in that second; likewise ms and µs."""
    for unit in (10**9, MS, 1000):
        if ts % unit == 0:
            return unit
    return 1


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _duration_quantum(ms: float) -> int:
    """A duration's resolution: 1 ms when logged in whole ms (ALB, NGINX), else 1 µs."""
    return DURATION_NS if abs(ms - round(ms)) < 1e-9 else 1000


@dataclass(frozen=True)
class _Span:
    """One layer's window on its own clock, as bounds: ``send_min`` (earliest it could have
    forwarded), ``start_max`` (latest it could have started), ``end_min`` / ``end_max``."""

    clock: Clock
    send_min: int
    start_max: int
    end_min: int
    end_max: int


def _span(record: Mapping[str, Any]) -> _Span | None:
    """A record's window when it is a layer's measurement (its duration is known), else None."""
    layer = _layer(record)
    ts = record["timestamp"]
    attrs = record.get("attributes") or {}
    http = record.get("http") or {}
    end_min, end_max = ts, ts + _resolution(ts)
    if layer == "alb":
        created = attrs.get("request_creation_time")
        if not created:
            return None
        try:
            created_ns = parse_timestamp(created)
        except RecordError:
            return None
        req = _num(attrs.get("request_processing_ms")) or 0.0
        send_min = created_ns + max(int(req * MS) - DURATION_NS, 0)
        return _Span(clock_of(record), send_min, created_ns + _resolution(created_ns), end_min, end_max)
    ms = _num(http.get("duration_ms"))
    if ms is None or ms < 0:
        return None
    q = _duration_quantum(ms)
    length = int(ms * MS)
    late = APP_STAMP_SLACK_NS if layer == "app" else 0  # a proxy's duration and stamp are one reading
    return _Span(clock_of(record), ts - length - q - late, end_max - length + q, end_min, end_max)


@dataclass
class Pair:
    """The bounds one pair of clocks gets from the requests they share (``d = child − parent``)."""

    parent: Clock
    child: Clock
    lows: list[int] = field(default_factory=list)
    highs: list[int] = field(default_factory=list)
    broken: int = 0  # requests whose own interval is empty (assumptions broken for them)

    def bounds(self) -> tuple[int, int] | None:
        """``(lo, hi)`` in ns from the k-th tightest bounds; None with too few requests."""
        n = len(self.lows)
        if n < MIN_REQUESTS:
            return None
        k = min(1 + int(n * TRIM), n)
        lo = sorted(self.lows, reverse=True)[k - 1]
        hi = sorted(self.highs)[k - 1]
        return lo, hi


def _add(pairs: dict[tuple[Clock, Clock], Pair], parent: _Span, child: _Span) -> None:
    if parent.clock == child.clock:
        return
    # an app's stamp is when it logged, after its response left, and a busy process may log tens
    # of ms later (measured in the lab): its end bounds nothing; its start (stamp − duration, both
    # taken at the log call) is before the caller's end. Proxies log at their end.
    ends = child.send_min if child.clock.layer == "app" else child.end_min
    lo = ends - parent.end_max
    hi = child.start_max - parent.send_min
    pair = pairs.get((parent.clock, child.clock))
    if pair is None:
        pair = pairs[(parent.clock, child.clock)] = Pair(parent.clock, child.clock)
    if lo > hi:
        pair.broken += 1
    pair.lows.append(lo)
    pair.highs.append(hi)


def pair_intervals(records: Iterable[Mapping[str, Any]]) -> dict[tuple[Clock, Clock], Pair]:
    """Per (caller clock, called clock): the bounds of every request they share."""
    spans: list[tuple[Mapping[str, Any], _Span]] = []
    for rec in records:
        span = _span(rec)
        if span is not None:
            spans.append((rec, span))
    index: dict[tuple[str, str, str, str], list[_Span]] = {}
    for rec, span in spans:
        tenant = rec.get("tenant") or ""
        for kind in ("trace_id", "request_id"):
            value = rec.get(kind)
            if value:
                index.setdefault((span.clock.layer, tenant, kind, value), []).append(span)

    def one(layer: str, tenant: str, kind: str, value: Any) -> _Span | None:
        """The layer's span for an id: the only one (ALB, NGINX), or the app's outermost (an
        app may log a sub-request with a duration of its own)."""
        if not value:
            return None
        found = index.get((layer, tenant, kind, value))
        if not found:
            return None
        if layer == "app":
            return max(found, key=lambda s: (s.end_min - s.start_max, s.end_min))
        return found[0] if len(found) == 1 else None

    pairs: dict[tuple[Clock, Clock], Pair] = {}
    for rec, span in spans:
        tenant = rec.get("tenant") or ""
        layer = span.clock.layer
        if layer == "nginx":
            if one("nginx", tenant, "request_id", rec.get("request_id")) is not span:
                continue  # this NGINX id is not one request
            alb = one("alb", tenant, "trace_id", rec.get("trace_id"))
            app = one("app", tenant, "request_id", rec.get("request_id"))
            if alb is not None:
                _add(pairs, alb, span)
            if app is not None:
                _add(pairs, span, app)
                if alb is not None:
                    _add(pairs, alb, app)
        elif layer == "app" and one("nginx", tenant, "request_id", rec.get("request_id")) is None:
            alb = one("alb", tenant, "trace_id", rec.get("trace_id"))
            if alb is not None and one("app", tenant, "trace_id", rec.get("trace_id")) is span:
                _add(pairs, alb, span)  # an app straight behind the ALB
    return pairs


@dataclass(frozen=True)
class ClockEstimate:
    """One clock's offset against the reference: ``offset_ns ± uncertainty_ns``."""

    clock: Clock
    offset_ns: int | None
    uncertainty_ns: int | None
    requests: int
    consistent: bool = True

    def as_dict(self) -> dict[str, Any]:
        c = self.clock
        return {"tenant": c.tenant, "clock": c.name, "layer": c.layer, "host": c.host,
                "instance": c.instance, "service": c.service,
                "offset_ms": None if self.offset_ns is None else round(self.offset_ns / MS, 3),
                "uncertainty_ms": None if self.uncertainty_ns is None else round(self.uncertainty_ns / MS, 3),
                "requests": self.requests, "consistent": self.consistent}


@dataclass
class Estimate:
    """Every clock of a window, per tenant, with the reference each tenant's offsets are against."""

    clocks: list[ClockEstimate]
    references: dict[str, str]
    pairs: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"clocks": [c.as_dict() for c in self.clocks], "references": self.references,
                "pairs": self.pairs}


def _solve(nodes: list[Clock], edges: dict[tuple[int, int], int], ref: int
           ) -> tuple[list[float], list[float], bool]:
    """Tightest ``[low, high]`` of each node against ``ref`` from difference constraints
    (``θ_j − θ_i ≤ w`` for each edge ``(i, j): w``), by Floyd–Warshall; False when they
    contradict each other (a negative cycle), in which case the bounds are each edge path's own."""
    n = len(nodes)
    inf = math.inf
    dist = [[0.0 if i == j else inf for j in range(n)] for i in range(n)]
    for (i, j), w in edges.items():
        dist[i][j] = min(dist[i][j], float(w))
    for k in range(n):
        dk = dist[k]
        for i in range(n):
            dik = dist[i][k]
            if dik == inf:
                continue
            di = dist[i]
            for j in range(n):
                if dik + dk[j] < di[j]:
                    di[j] = dik + dk[j]
    consistent = all(dist[i][i] >= 0 for i in range(n))
    highs = [dist[ref][j] for j in range(n)]
    lows = [-dist[j][ref] for j in range(n)]
    return lows, highs, consistent


def estimate_offsets(records: Iterable[Mapping[str, Any]]) -> Estimate:
    """Each clock's offset from the requests among ``records`` (canonical records)."""
    pairs = pair_intervals(records)
    tenants: dict[str, list[Clock]] = {}
    counts: dict[Clock, int] = {}
    pair_info = []
    for (parent, child), pair in pairs.items():
        for clock in (parent, child):
            if clock not in counts:
                tenants.setdefault(clock.tenant, []).append(clock)
            counts[clock] = max(counts.get(clock, 0), len(pair.lows))  # requests: its busiest pair
        b = pair.bounds()
        pair_info.append({"tenant": parent.tenant, "parent": parent.name, "child": child.name,
                          "requests": len(pair.lows), "broken": pair.broken,
                          "low_ms": None if b is None else round(b[0] / MS, 3),
                          "high_ms": None if b is None else round(b[1] / MS, 3)})
    out: list[ClockEstimate] = []
    references: dict[str, str] = {}
    for tenant, nodes in sorted(tenants.items()):
        nodes.sort(key=lambda c: ({"alb": 0, "nginx": 1}.get(c.layer, 2), c.name))
        at = {c: i for i, c in enumerate(nodes)}
        edges: dict[tuple[int, int], int] = {}
        for (parent, child), pair in pairs.items():
            b = pair.bounds() if parent.tenant == tenant else None
            if b is None:
                continue
            lo, hi = b
            if lo > hi:  # the robust bounds still cross: use the crossing region, marked below
                lo, hi = hi, lo
            i, j = at[parent], at[child]
            edges[(i, j)] = min(edges.get((i, j), hi), hi)
            edges[(j, i)] = min(edges.get((j, i), -lo), -lo)
        albs = [c for c in nodes if c.layer == "alb"]
        ref = max(albs or nodes, key=lambda c: (counts[c], c.name))
        references[tenant] = ref.name
        lows, highs, consistent = _solve(nodes, edges, at[ref])
        for clock in nodes:
            i = at[clock]
            lo, hi = lows[i], highs[i]
            if math.isinf(lo) or math.isinf(hi):
                out.append(ClockEstimate(clock, None, None, counts[clock]))
                continue
            ok = consistent and lo <= hi
            out.append(ClockEstimate(clock, round((lo + hi) / 2), round(abs(hi - lo) / 2), counts[clock], ok))
    return Estimate(out, references, pair_info)
