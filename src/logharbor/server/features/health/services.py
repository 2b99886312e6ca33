"""Service health from the logs (``GET /api/v1/services``, ``routes.py``) and its per-minute recording.

For every (service, source) with request records — ALB, NGINX and app access records all carry
``http.status`` — over a range: requests, request rate, errors (status ≥ 500), error ratio and
p50/p95/p99 of ``http.duration_ms``. Each layer shows as its own row (``shop-alb``/alb,
``nginx``/nginx, ``checkout``/app), so the page reads top to bottom like the stack.

Long ranges read a recording: a job on the alert scheduler writes, every minute, one row per
(tenant, service, source, minute) with the counts and a t-digest state of the latencies into
``<table>_service_minutes`` (ReplacingMergeTree, so re-recording a minute replaces it). It
re-records the last :data:`LOOKBACK_NS` each time, because ALB logs arrive minutes late, and
after downtime it starts where the recording stopped. A query over a long range merges the
recorded minutes with the raw records after the last recorded minute, in one SELECT, so the
answer is never missing its newest minutes. Latency percentiles are t-digest estimates on both
paths (within a few percent); counts are exact.
"""

from __future__ import annotations

import time
from typing import Any

from logharbor.server.engine.store.base import Store
from logharbor.server.engine.store.sql.services import (
    create_recording,
    raw_part,
    record_sql,
    recorded_part,
    recorded_until_sql,
    recording_name,
    series_sql,
    totals_sql,
)
from logharbor.server.engine.store.sqlsafe import quote_identifier

__all__ = ["LOOKBACK_NS", "MINUTE_NS", "ServiceRecorder", "active_rate", "service_health"]

MINUTE_NS = 60 * 10**9
LOOKBACK_NS = 15 * MINUTE_NS  # minutes re-recorded on every run (late ALB objects)
BACKFILL_NS = 31 * 86400 * 10**9  # how far back a fresh recording starts
RECORDING_FROM_NS = 3600 * 10**9  # ranges at least this long use the recording (the page default)


class ServiceRecorder:
    """Writes the per-minute recording (a :class:`~logharbor.server.features.alerts.evaluator.Job`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.name = recording_name(store.table_name)
        self.table = quote_identifier(self.name)
        self._created = False

    def ensure(self) -> None:
        """Create the recording table if it is not there (the server calls this at start: no
        table is created once it runs, see ``TierView.freeze_schema``)."""
        if self._created:
            return
        create_recording(self.store)
        self._created = True

    def recorded_until(self) -> int | None:
        """The end of the last recorded minute (ns), or None when nothing is recorded."""
        self.ensure()
        rows = self.store.query(recorded_until_sql(self.table), {})
        if not rows or not int(rows[0]["n"]):
            return None
        return int(rows[0]["m"]) * 10**9 + MINUTE_NS

    def record(self, at_ns: int) -> int:
        """Re-record every whole minute from the lookback (or where the recording stopped) to ``at``."""
        self.ensure()
        end = at_ns - at_ns % MINUTE_NS
        until = self.recorded_until()
        start = end - BACKFILL_NS if until is None else min(until, end - LOOKBACK_NS)
        start -= start % MINUTE_NS
        if start >= end:
            return 0
        self.store.query(record_sql(self.table, self.store.table),
                         {"from": start, "to": end, "recorded": time.time_ns()})
        return (end - start) // MINUTE_NS


def service_health(store: Store, start_ns: int, end_ns: int, *, scope: tuple[str, dict[str, Any]] | None,
                   use_recording: bool | None = None, recorder: ServiceRecorder | None = None,
                   step_ns: int | None = None) -> dict[str, Any]:
    """Per (service, source): requests, rate, errors, error ratio and latency percentiles; with
    ``step_ns`` (whole minutes) also a ``series`` of the same per step, for charts."""
    scope_sql, params = (scope[0], dict(scope[1])) if scope else (None, {})
    recorder = recorder or ServiceRecorder(store)
    if use_recording is None:
        use_recording = end_ns - start_ns >= RECORDING_FROM_NS
    source = "raw"
    rec_from = start_ns + (-start_ns) % MINUTE_NS  # first whole minute inside the range
    until = recorder.recorded_until() if use_recording else None
    rec_to = min(until or 0, end_ns - end_ns % MINUTE_NS)
    if until is not None and rec_to > rec_from:  # at least one whole recorded minute in the range
        params.update(rec_from=rec_from // 10**9, rec_to=rec_to // 10**9, raw_from=start_ns, raw_to=rec_from,
                      tail_from=rec_to, tail_to=end_ns)
        source = "recording"

        def parts(minutes: bool) -> list[str]:
            return [recorded_part(recorder.table, scope_sql, minutes=minutes),
                    # the raw records before the first and after the last recorded minute
                    raw_part(store.table, scope_sql, "raw_from", "raw_to", minutes=minutes),
                    raw_part(store.table, scope_sql, "tail_from", "tail_to", minutes=minutes)]
    else:
        params.update(raw_from=start_ns, raw_to=end_ns)

        def parts(minutes: bool) -> list[str]:
            return [raw_part(store.table, scope_sql, "raw_from", "raw_to", minutes=minutes)]

    sql = totals_sql(parts(False))
    answer: dict[str, Any] = {"from_ns": start_ns, "to_ns": end_ns, "source": source, "services": [
        {**_health(row, max((end_ns - start_ns) / 1e9, 1e-9)),
         **active_rate(int(row["requests"]), int(row["first_ns"]), int(row["last_ns"]), start_ns, end_ns)}
        for row in store.query(sql, params)]}
    if step_ns is not None:
        params["step"] = step_ns // 10**9
        sql = series_sql(parts(True))
        answer["step_ns"] = step_ns
        answer["series"] = [_point(row, step_ns, start_ns, end_ns) for row in store.query(sql, params)]
    return answer


def active_rate(requests: int, first_ns: int, last_ns: int, start_ns: int, end_ns: int) -> dict[str, Any]:
    """The request rate over the *active* part of the range, not the whole of it.

    A service that served 18/s for three minutes of an hour is not a "0.9/s" service: the rate
    is the requests divided by the time from the start of the minute of its first request to the
    end of the minute of its last one, clipped to the range. Whole minutes, because that is what
    the recording knows (the raw path rounds the same way, so both paths agree), and because a
    burst of three records must not read as thousands per second. ``range_rate_per_s`` keeps
    the average over the whole range for whoever wants that.
    """
    lo = max(start_ns, first_ns - first_ns % MINUTE_NS)
    hi = min(end_ns, last_ns - last_ns % MINUTE_NS + MINUTE_NS)
    seconds = max((hi - lo) / 1e9, 1.0)
    return {"rate_per_s": round(requests / seconds, 4), "active_from_ns": lo, "active_to_ns": hi,
            "range_rate_per_s": round(requests / max((end_ns - start_ns) / 1e9, 1e-9), 4)}


def _point(row: dict[str, Any], step_ns: int, start_ns: int, end_ns: int) -> dict[str, Any]:
    """One step of a series. A step the range cuts (the last one while it fills, the first when
    the range starts inside it) has its rate over the seconds it covers, not the whole step, and
    says so (``partial``, ``covered_s``): a chart must not draw it as a drop."""
    t_ns = int(row["t"]) * 10**9
    covered = min(t_ns + step_ns, end_ns) - max(t_ns, start_ns)
    point = {"t_ns": t_ns, **_health(row, max(covered / 1e9, 1e-9))}
    if covered < step_ns:
        point.update(partial=True, covered_s=round(covered / 1e9, 3))
    return point


def _health(row: dict[str, Any], seconds: float) -> dict[str, Any]:
    requests, errors = int(row["requests"]), int(row["errors"])
    q = [None if v is None or v != v else round(float(v), 3) for v in (row["q"] or [None] * 3)]
    return {"service": row["service"], "source": row["source"], "requests": requests,
            "rate_per_s": round(requests / seconds, 4), "errors": errors,
            "error_ratio": round(errors / requests, 6) if requests else 0.0,
            "p50_ms": q[0], "p95_ms": q[1], "p99_ms": q[2]}
