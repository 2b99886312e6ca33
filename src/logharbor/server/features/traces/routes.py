"""``GET /api/v1/traces/{id}``: one request as every layer saw it (ALB → NGINX → app), with
timings (``service.py``); ``GET /api/v1/clock/offsets`` and ``POST /api/v1/clock/estimate``: each
host's clock offset, now and over time (``clock.py``).

The id may be a W3C trace id, an ``X-Amzn-Trace-Id`` value (``Root=1-…``, ``Self=…;Root=…``) or
its bare Root, a ``traceparent`` header, or an NGINX ``$request_id`` / ``X-Request-ID``; a header
line (``X-Amzn-Trace-Id: Root=…``) loses its name first. ``?clock=raw`` shows the times as logged;
the default corrects them by each clock's estimated offset.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from logharbor import exactjson
from logharbor.record import normalize_trace_id
from logharbor.server.auth import viewer_of
from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.errors import ApiError
from logharbor.server.features.query.timeparse import TimeParseError, parse_time_ns
from logharbor.server.features.query.window import check_order, request_window
from logharbor.server.features.traces.adjust import Offsets
from logharbor.server.features.traces.clock import HISTORY_LIMIT, ClockOffsets
from logharbor.server.features.traces.service import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    TraceKey,
    find_trace,
    trace_answer,
)
from logharbor.server.limits import query_refusal

__all__ = ["clock_router", "parse_trace_key", "traces_router"]

_MAX_ID_CHARS = 512
_HEX = frozenset("0123456789abcdefABCDEF")
_HEADER_NAMES = ("x-amzn-trace-id:", "traceparent:", "x-request-id:")
_AMZN_EPOCH = re.compile(r"(?:^|Root=)1-([0-9a-fA-F]{8})-[0-9a-fA-F]{24}(?:;|$)")


def parse_trace_key(text: str) -> TraceKey:
    """Read a user's id; 400 when it is empty, too long or has control characters.

    A header line (``X-Amzn-Trace-Id: Root=…``) loses its name first. 32 hex digits are both a
    W3C trace id and what NGINX's ``$request_id`` looks like, so they are searched as both.
    """
    value = text.strip()
    lowered = value.lower()
    for name in _HEADER_NAMES:
        if lowered.startswith(name):
            value = value[len(name):].strip()
            break
    if not value or len(value) > _MAX_ID_CHARS or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ApiError(400, "invalid_trace_id",
                       "give a trace id, an X-Amzn-Trace-Id value, a traceparent or a request id")
    trace_id = normalize_trace_id(value)
    if trace_id is None:
        return TraceKey(value, None, value)
    request_id = value if len(value) == 32 and _HEX.issuperset(value) else None
    amzn = _AMZN_EPOCH.search(value)
    return TraceKey(value, trace_id, request_id, int(amzn[1], 16) if amzn else None)

def _answer(store: Store, key: TraceKey, *, start_ns: int | None, end_ns: int | None, limit: int,
            scope: tuple[str, dict[str, Any]] | None, offsets_for: Offsets | None) -> dict[str, Any]:
    """The trace's answer, or the 4xx/5xx of a failed lookup or a missing trace (blocking: run it
    off the event loop)."""
    began = time.perf_counter()
    try:
        rows, how = find_trace(store, key, start_ns=start_ns, end_ns=end_ns, limit=limit, scope=scope)
    except StoreError as exc:
        raise query_refusal(exc) or ApiError(500, "store_error", "the store could not run the trace lookup") \
            from exc
    if not rows:
        raise ApiError(404, "trace_not_found", f"no records carry the id {key.raw!r}",
                       detail={"trace_id": key.trace_id, "request_id": key.request_id})
    return trace_answer(key, rows, how, began=began, offsets_for=offsets_for)


def traces_router() -> APIRouter:
    """The router the app factory mounts."""
    router = APIRouter(tags=["traces"])

    @router.get("/api/v1/traces/{trace_id:path}", summary="Every record of one request, with timings")
    async def get_trace(trace_id: str, request: Request, since: str | None = None,
                        to: str | None = None, limit: int = DEFAULT_LIMIT,
                        clock: str = "adjusted") -> Response:
        """``clock=raw`` places events by the times as logged, ``adjusted`` (default) corrects them
        by each host's estimated clock offset."""
        key = parse_trace_key(trace_id)
        if clock not in ("adjusted", "raw"):
            raise ApiError(400, "invalid_request", "clock: 'adjusted' (the default) or 'raw'")
        start, end = request_window(request.query_params.get("from") or since, to, time.time_ns())
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, "invalid_limit", f"limit must be between 1 and {MAX_LIMIT}")
        store: Store = request.app.state.store
        scope = getattr(request.state, "query_scope", None)
        offsets = getattr(request.app.state, "clock_offsets", None)
        offsets_for = offsets.offsets_for if offsets is not None and clock == "adjusted" else None
        answer = await run_in_threadpool(_answer, store, key, start_ns=start, end_ns=end,
                                         limit=limit, scope=scope, offsets_for=offsets_for)
        return Response(exactjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS),
                        media_type="application/json")

    return router


def clock_router() -> APIRouter:
    """``GET /api/v1/clock/offsets`` (current and history) and ``POST /api/v1/clock/estimate``."""
    router = APIRouter(tags=["traces"])

    def offsets_of(request: Request) -> ClockOffsets:
        found = getattr(request.app.state, "clock_offsets", None)
        if found is None:
            raise ApiError(503, "starting", "the server is starting")
        return found  # type: ignore[no-any-return]

    @router.get("/api/v1/clock/offsets", summary="Each host's clock offset, now and over time")
    async def offsets(request: Request, from_: str | None = Query(None, alias="from"),
                      since: str | None = None, to: str | None = None) -> dict[str, Any]:
        """``from``/``since`` (default 24h ago) to ``to`` (default now) bound the history."""
        now = time.time_ns()
        try:
            start = parse_time_ns(from_ or since or "24h", now_ns=now)
            end = parse_time_ns(to, now_ns=now) if to else now + 1
        except TimeParseError as exc:
            raise ApiError(400, "invalid_time", str(exc)) from None
        check_order(start, end)
        clock = offsets_of(request)
        viewer = viewer_of(request)  # a scoped key's clocks only: in the SQL, and row by row
        try:
            current, history = await run_in_threadpool(
                lambda: (clock.latest(viewer), clock.history_page(start, end, HISTORY_LIMIT, viewer)))
        except StoreError as exc:
            raise query_refusal(exc) or ApiError(500, "store_error", "the store could not read the offsets") \
                from exc
        rows, truncated = history
        return {"window_s": clock.window_ns // 10**9, "reference_layer": "alb",
                "current": [c for c in current if viewer.labels_inside(c)],
                "history": [h for h in rows if viewer.labels_inside(h)],
                "history_truncated": truncated}

    @router.post("/api/v1/clock/estimate", summary="Estimate the clock offsets now (admin)")
    async def estimate(request: Request) -> dict[str, Any]:
        clock = offsets_of(request)
        written = await run_in_threadpool(clock.record, time.time_ns())
        return {"clocks": written, "seconds": round(clock.last_seconds, 3), "current": clock.latest()}

    return router
