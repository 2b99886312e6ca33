"""Clock offsets, continuously: the periodic estimate, its history and the gauges (the API is in
``routes.py``).

A job on the alert scheduler (leader-only, like the service-health recording), every
``clock_interval_s``, reads the request records of the last ``clock_window_s`` (ALB, NGINX and
app records with a duration), estimates each clock's offset (:mod:`.skew`) and appends one row
per clock to ``<table>_clock_offsets`` (kept :data:`KEEP_DAYS` days). Every server reads the
latest estimate from that table (a follower runs no job), for ``GET /api/v1/clock/offsets``,
the ``/metrics`` gauges and the adjusted traces.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from logharbor.record import format_timestamp
from logharbor.server.engine.store.base import Store
from logharbor.server.engine.store.sql import clock as clock_sql
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.features.traces.skew import estimate_offsets
from logharbor.server.scopes import Scope

__all__ = ["HISTORY_LIMIT", "KEEP_DAYS", "WINDOW_NS", "ClockOffsets", "OffsetsCollector"]

log = logging.getLogger("logharbor.server.clock")

MINUTE_NS = 60 * 10**9
WINDOW_NS = 15 * MINUTE_NS  # the requests each estimate reads, by default (clock_window_s)
MAX_ROWS = 30_000  # the newest request records of the window, at most (about 10k requests)
KEEP_DAYS = 30
CACHE_S = 20.0  # how long a read of the latest estimate is reused
LATEST_LIMIT = 10_000  # clocks of the latest estimates one read holds (after the scope)
_CACHED_SCOPES = 256  # scopes whose latest read is cached at once
HISTORY_LIMIT = 50_000  # rows of history one answer holds (after the scope; history_truncated says so)
_READ = ("tenant", "service", "source", "host", "instance", "trace_id", "request_id", "http_duration_ms")
_ATTRIBUTES = ("request_creation_time", "request_processing_ms")  # the ALB's, the only ones read
_TYPES = {"at": "Int64", "tenant": "String", "clock": "String", "layer": "String", "host": "String",
          "instance": "String", "service": "String", "reference": "String", "offset_ms": "Nullable(Float64)",
          "uncertainty_ms": "Nullable(Float64)", "requests": "UInt32", "consistent": "UInt8"}
_COLUMNS = tuple(_TYPES)


class ClockOffsets:
    """The estimate job, the history table and the latest offsets per clock."""

    def __init__(self, store: Store, *, window_ns: int = WINDOW_NS) -> None:
        self.store = store
        self.name = f"{store.table_name}_clock_offsets"
        self.table = quote_identifier(self.name)
        self.window_ns = window_ns
        self._created = False
        self._lock = threading.Lock()
        #: scope (None: every tenant) → (monotonic time, the latest rows within it)
        self._cache: dict[Scope | None, tuple[float, list[dict[str, Any]]]] = {}
        self.runs = 0
        self.last_seconds = 0.0  # how long the last estimate took (records read + solved)

    def ensure(self) -> None:
        """Create the history table (at start: no table is created once the server runs)."""
        if self._created:
            return
        self.store.query(clock_sql.history_ddl(self.table, KEEP_DAYS), {})
        self._created = True

    # ------------------------------------------------------------------ the job

    def records(self, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
        """The request records (with a duration) of ``[start, end)``, newest first, as the canonical
        records the estimate reads: only the columns and the two ALB attributes it needs (reading
        whole rows with the attributes column was 9× slower at 20k requests)."""
        rows = self.store.query(clock_sql.records_sql(self.store.table, _READ, _ATTRIBUTES),
                                {"lo": start_ns, "hi": end_ns, "n": MAX_ROWS})
        out = []
        for row in rows:
            attributes: dict[str, Any] = {}
            if row.get("attr_request_creation_time"):
                attributes["request_creation_time"] = row["attr_request_creation_time"]
            try:
                attributes["request_processing_ms"] = float(row["attr_request_processing_ms"])
            except (KeyError, TypeError, ValueError):  # not an ALB record, or not a number
                pass
            out.append({"timestamp": int(row["ts_ns"]), "http": {"duration_ms": row["http_duration_ms"]},
                        "attributes": attributes,
                        **{c: row.get(c) or None for c in _READ if c != "http_duration_ms"}})
        return out

    def estimate(self, at_ns: int) -> list[dict[str, Any]]:
        """Each clock's offset from the window ending at ``at_ns`` (not stored)."""
        began = time.perf_counter()
        est = estimate_offsets(self.records(at_ns - self.window_ns, at_ns))
        self.last_seconds = time.perf_counter() - began
        at = at_ns // 10**6 * 10**6
        return [{**c, "at_ns": at, "reference": est.references.get(c["tenant"], "")}
                for c in est.as_dict()["clocks"]]

    def record(self, at_ns: int) -> int:
        """The job: estimate and append to the history; the number of clocks written."""
        self.ensure()
        rows = self.estimate(at_ns)
        self.runs += 1
        if not rows:
            return 0
        values = [{**{c: row[c] for c in _COLUMNS if c != "at"}, "at": row["at_ns"],
                   "consistent": int(row["consistent"])} for row in rows]
        # the table name is ours (quote_identifier); every value is a parameter
        self.store.query(*clock_sql.insert_sql(self.table, _TYPES, values, ns_column="at"))
        with self._lock:  # every scope's cached read is older than this estimate
            self._cache = {None: (time.monotonic(), [_public(r) for r in rows])}
        return len(rows)

    # ------------------------------------------------------------------ reads

    def _select(self, where: str, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        columns = [c for c in _COLUMNS if c != "at"]
        # the table name is ours; values are parameters
        rows = self.store.query(clock_sql.select_sql(self.table, columns, where, limit), params)
        return [_public({**r, "at_ns": int(r.pop("at_ms")) * 10**6}) for r in rows]

    def latest(self, scope: Scope | None = None) -> list[dict[str, Any]]:
        """The latest estimate of the clocks within ``scope`` (None: every tenant's) of the last
        hour, briefly cached per scope. The scope is in the SQL, before the row cap: filtered
        after it, a scoped key lost its clocks whenever other tenants had ``LATEST_LIMIT`` rows."""
        key = scope if scope is not None and not scope.unscoped else None
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and time.monotonic() - cached[0] < CACHE_S:
                return cached[1]
        self.ensure()
        confined = key.sql() if key is not None else None
        tenants = Scope(tenant=key.tenant).sql() if key is not None else None
        where = clock_sql.latest_where(self.table, tenants[0] if tenants is not None else None)
        params: dict[str, Any] = {}
        if confined is not None:  # columns tenant and service; values are parameters
            where += f" AND {confined[0]}"
            params.update(confined[1])
        rows = self._select(where, params, LATEST_LIMIT)
        with self._lock:
            if len(self._cache) >= _CACHED_SCOPES:  # many keys' scopes: start over rather than grow
                self._cache.clear()
            self._cache[key] = (time.monotonic(), rows)
        return rows

    def history(self, start_ns: int, end_ns: int, limit: int = HISTORY_LIMIT,
                scope: Scope | None = None) -> list[dict[str, Any]]:
        """Every estimate of ``[start, end)`` within ``scope`` (None: every tenant), oldest first,
        at most ``limit``: the newest ones (:meth:`history_page` says when it cut). The scope is
        in the SQL, before the cap: filtered after it, a scoped
        key got a truncated history whenever other tenants had ``limit`` rows of the window."""
        self.ensure()
        where = clock_sql.HISTORY_WHERE
        params: dict[str, Any] = {"lo": start_ns, "hi": end_ns}
        confined = scope.sql() if scope is not None else None
        if confined is not None:  # columns tenant and service; values are parameters
            where += f" AND {confined[0]}"
            params.update(confined[1])
        return self._select(where, params, limit)

    def history_page(self, start_ns: int, end_ns: int, limit: int = HISTORY_LIMIT,
                     scope: Scope | None = None) -> tuple[list[dict[str, Any]], bool]:
        """:meth:`history` for an answer: the newest ``limit`` estimates (oldest first), and
        whether older ones were cut (one more is read to know)."""
        rows = self.history(start_ns, end_ns, limit + 1, scope)
        return rows[-limit:], len(rows) > limit

    def offsets_for(self, tenant: str) -> dict[tuple[str, str], dict[str, Any]]:
        """The latest usable offsets of one tenant, by (layer, clock name)."""
        return {(c["layer"], c["clock"]): c for c in self.latest(Scope(tenant=tenant))
                if c["tenant"] == tenant and c["offset_ms"] is not None}


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A history row as the API shows it."""
    at_ns = int(row["at_ns"])
    return {"at": format_timestamp(at_ns - at_ns % 10**6),
            "tenant": row["tenant"], "clock": row["clock"], "layer": row["layer"], "host": row["host"],
            "instance": row["instance"], "service": row["service"], "reference": row["reference"],
            "offset_ms": row["offset_ms"], "uncertainty_ms": row["uncertainty_ms"],
            "requests": int(row["requests"]), "consistent": bool(row["consistent"])}


class OffsetsCollector(Collector):
    """``logharbor_clock_offset_seconds`` and ``…_uncertainty_seconds`` per clock, at scrape time."""

    def __init__(self, offsets: ClockOffsets) -> None:
        self.offsets = offsets

    def collect(self) -> Iterator[Metric]:
        labels = ["tenant", "layer", "host", "instance", "clock"]
        offset = GaugeMetricFamily("logharbor_clock_offset_seconds",
                                   "how far a host's (or app instance's) clock is ahead of the reference "
                                   "clock (the ALB), estimated from request causality", labels=labels)
        error = GaugeMetricFamily("logharbor_clock_offset_uncertainty_seconds",
                                  "half width of the interval the true offset lies in", labels=labels)
        try:
            latest = self.offsets.latest()
        except Exception:  # a scrape must not fail because the store is busy
            log.warning("clock offsets: the latest estimate could not be read", exc_info=True)
            latest = []
        for c in latest:
            if c["offset_ms"] is None:
                continue
            values = [c["tenant"], c["layer"], c["host"] or c["clock"], c["instance"], c["clock"]]
            offset.add_metric(values, c["offset_ms"] / 1000)
            error.add_metric(values, (c["uncertainty_ms"] or 0.0) / 1000)
        yield offset
        yield error
