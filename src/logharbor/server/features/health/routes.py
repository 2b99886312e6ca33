"""The health feature's HTTP API: ``GET /api/v1/services`` (per-service request rate, errors and
latency: ``services.py``) and ``GET /metrics/recorded`` (the recording rules' gauges: ``recorded.py``).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from logharbor.server.auth import principal_of
from logharbor.server.engine.store.base import StoreError
from logharbor.server.errors import ApiError
from logharbor.server.features.query import TimeParseError, parse_duration_ns, parse_time_ns
from logharbor.server.features.query.service import store_error
from logharbor.server.features.query.window import check_order

from .recorded import Recorder, scope_allows
from .services import MINUTE_NS, service_health

__all__ = ["MAX_POINTS", "recorded_router", "services_router"]

MAX_POINTS = 2000  # points of a series


def services_router() -> APIRouter:
    """The router the app factory mounts."""
    router = APIRouter(tags=["services"])

    @router.get("/api/v1/services", summary="Per-service request rate, error ratio and latency")
    async def services(request: Request, from_: str | None = Query(None, alias="from"),
                       since: str | None = None, to: str | None = None,
                       recording: bool | None = None, step: str | None = None) -> dict[str, Any]:
        """``from``/``since`` (default 1h ago) to ``to`` (default now); ``recording`` forces a path;
        ``step`` (whole minutes, e.g. ``5m``) adds a per-step series."""
        now = time.time_ns()
        try:
            start = parse_time_ns(from_ or since or "1h", now_ns=now)
            end = parse_time_ns(to, now_ns=now) if to else now
        except TimeParseError as exc:
            raise ApiError(400, "invalid_time", str(exc)) from None
        check_order(start, end)
        step_ns = _step(step, end - start)
        scope = getattr(request.state, "query_scope", None)
        store = request.app.state.store
        recorder = getattr(request.app.state, "service_recorder", None)
        try:
            return await run_in_threadpool(lambda: service_health(
                store, start, end, scope=scope, use_recording=recording, recorder=recorder, step_ns=step_ns))
        except StoreError as exc:
            raise store_error(exc) from None  # as the query API: no engine text in the answer

    return router


def _step(text: str | None, range_ns: int) -> int | None:
    """A series step: whole minutes, at most :data:`MAX_POINTS` points over the range (400 otherwise)."""
    if text is None:
        return None
    try:
        step = parse_duration_ns(text)
    except TimeParseError as exc:
        raise ApiError(400, "invalid_request", f"step: {exc}") from None
    if step % MINUTE_NS:
        raise ApiError(400, "invalid_request", "step: a whole number of minutes (1m, 5m, 1h)")
    if range_ns // step > MAX_POINTS:
        raise ApiError(400, "invalid_request", f"step: over {MAX_POINTS} points; use a larger step")
    return step


def recorded_router() -> APIRouter:
    """``GET /metrics/recorded`` (auth as ``/metrics``: public with ``metrics_public``; a key scoped
    to a tenant or services sees only series labelled inside its scope)."""
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics/recorded", summary="Recording rules in the Prometheus text format")
    async def recorded(request: Request) -> Response:
        principal = principal_of(request)
        allow = None
        if principal is not None and (principal.tenant is not None or principal.services is not None):
            allow = scope_allows(principal.tenant, principal.services)
        recorder: Recorder | None = getattr(request.app.state, "recorder", None)
        body = recorder.exposition(allow) if recorder is not None else b""
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return router

