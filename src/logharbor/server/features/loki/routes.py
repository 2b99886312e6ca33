"""Loki's read API (``/loki/api/v1/…``) for Grafana's built-in Loki data source (the HTTP; the answers
are built by ``service.py``, ``catalog.py`` and ``drilldown.py``).

Why: teams that look at everything through Grafana point its stock Loki data source at logharbor
and get Explore, dashboards and live tail without a plugin. Answers have Loki's shapes
(``{"status": "success", "data": {"resultType": "streams"|"matrix"|"vector"|"scalar", …}}``,
nanosecond timestamps as strings in streams, seconds in samples). Errors are 4xx with Loki's
top-level ``message`` (what Grafana shows) beside logharbor's ``error`` object.

Tenancy: ``X-Scope-OrgID`` (``a|b`` for several) confines the query to those tenants; a key scoped
to a tenant may only name its own (403 otherwise), and its scope is AND-ed into every SELECT.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from logharbor import __version__, exactjson
from logharbor.record import parse_timestamp
from logharbor.server.auth import key_still_valid, principal_of
from logharbor.server.errors import ApiError, error_body
from logharbor.server.features.query import ast
from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.printer import to_text
from logharbor.server.features.query.timeparse import TimeParseError, parse_duration_ns
from logharbor.server.limits import query_settings

from . import catalog, drilldown, service
from .logql import Constant, LogQuery, parse_logql
from .nodes import label_paths
from .streams import Context, log_line, log_streams, record_labels, sanitize_label
from .wire import wire_to_record

__all__ = ["loki_router"]

NS = service.NS
LOKI_VERSION = "3.4.0"  # the API level answered; Grafana picks its features by this
_PREFIX = "/loki/api/v1"


def _error(status: int, code: str, message: str, detail: Any = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"status": "error", "errorType": "bad_data" if status < 500 else "internal",
            "message": message, **error_body(code, message, detail)}
    return JSONResponse(body, status_code=status, headers=headers)


def _ok(data: Any) -> Response:
    return Response(orjson.dumps({"status": "success", "data": data}), media_type="application/json")


def _seconds_ns(text: str) -> int:
    """Decimal seconds (``1795600800.125``) in nanoseconds, every digit kept (no binary product)."""
    return int(Decimal(text).scaleb(9).to_integral_value(ROUND_HALF_EVEN))


def loki_time(value: str | None, default: int) -> int:
    """Loki's time parameter: ns (or s, up to 10 digits) epoch, float seconds, or RFC 3339."""
    if value is None or value == "":
        return default
    text = value.strip()
    try:
        if re.fullmatch(r"-?\d+", text):
            return int(text) * NS if len(text.lstrip("-")) <= 10 else int(text)
        if re.fullmatch(r"-?\d+\.\d*", text):  # float seconds: every digit, not a binary product
            return _seconds_ns(text)
        return parse_timestamp(text)
    except (ValueError, TypeError):
        raise ApiError(400, "invalid_time", f"cannot parse {value!r} as a time") from None


def _step(value: str | None, start: int, end: int) -> int:
    if not value:
        return max(NS, (end - start) // 250 // NS * NS)
    try:
        step = _seconds_ns(value) if re.fullmatch(r"\d+(\.\d+)?", value) else parse_duration_ns(value)
    except TimeParseError as exc:
        raise ApiError(400, "invalid_step", f"step: {exc}") from None
    if step <= 0:
        raise ApiError(400, "invalid_step", "step must be positive")
    if (end - start) // step > 11_000:
        raise ApiError(400, "invalid_step", "exceeded maximum resolution of 11,000 points per series; "
                       "use a larger step")
    return step


def _limit(value: str | None, default: int = 100) -> int:
    try:
        limit = int(value) if value else default
    except ValueError:
        raise ApiError(400, "invalid_limit", f"limit {value!r} is not a number") from None
    if limit < 0:
        raise ApiError(400, "invalid_limit", "limit must be zero or more")
    return limit


def _tenant_filter(conn: HTTPConnection) -> ast.Filter | None:
    header = conn.headers.get("x-scope-orgid", "").strip()
    if not header:
        return None
    tenants = [t.strip() for t in header.split("|") if t.strip()]
    principal = principal_of(conn)
    if principal is not None and principal.tenant is not None and set(tenants) != {principal.tenant}:
        raise ApiError(403, "forbidden", "this key is scoped to another tenant than X-Scope-OrgID names")
    matches = [ast.Match("tenant", ast.Phrase(t)) for t in tenants]
    return matches[0] if len(matches) == 1 else ast.Or(tuple(matches))


def _context(conn: HTTPConnection) -> Context:
    config = getattr(getattr(conn.app.state, "runtime", None), "config", None)
    return Context(conn.app.state.store, getattr(conn.state, "query_scope", None), _tenant_filter(conn),
                   getattr(config, "query_max_limit", 10_000), query_settings(conn))


def _parse(text: str | None) -> Any:
    if not text:
        raise ApiError(400, "invalid_logql", "the 'query' parameter is required")
    try:
        return parse_logql(text)
    except QueryError as exc:
        raise ApiError(400, exc.code, f"parse error: {exc.message}", detail=exc.detail,
                       extra={"position": exc.position}) from None


def _log_query(text: str | None) -> LogQuery:
    expr = _parse(text)
    if not isinstance(expr, LogQuery):
        raise ApiError(400, "invalid_logql",
                       "a log query (a stream selector) is needed here, not a metric query")
    return expr


def _run_range(conn: HTTPConnection, params: dict[str, str | None]) -> dict[str, Any]:
    began = time.perf_counter()
    expr = _parse(params.get("query"))
    now = time.time_ns()
    end = loki_time(params.get("end"), now)
    start = loki_time(params.get("start"), end - 3600 * NS)
    if end < start:
        raise ApiError(400, "invalid_time", "end must not be before start")
    direction = (params.get("direction") or "backward").lower()
    if direction not in ("forward", "backward"):
        raise ApiError(400, "invalid_direction", "direction is forward or backward")
    ctx = _context(conn)
    if isinstance(expr, LogQuery):
        return service.streams(ctx, expr, start, end + 1, _limit(params.get("limit")), direction, began)
    return service.matrix(ctx, expr, start, end, _step(params.get("step"), start, end), began)


def _run_instant(conn: HTTPConnection, params: dict[str, str | None]) -> dict[str, Any]:
    began = time.perf_counter()
    expr = _parse(params.get("query"))
    at = loki_time(params.get("time"), time.time_ns())
    if isinstance(expr, Constant):
        return service.instant_constant(expr, at)
    ctx = _context(conn)
    if isinstance(expr, LogQuery):  # Loki refuses these; answering the newest lines is harmless
        direction = (params.get("direction") or "backward").lower()
        return service.streams(ctx, expr, None, at + 1, _limit(params.get("limit")), direction, began)
    return service.vector(ctx, expr, at, began)


def _volume(conn: HTTPConnection, p: dict[str, str | None], ranged: bool) -> dict[str, Any]:
    lq = _log_query(p.get("query"))
    start, end = _window(p)
    end -= 1
    target = [t for t in (p.get("targetLabels") or "").split(",") if t]
    limit = _limit(p.get("limit"), 100)
    if not ranged:
        return service.volume_vector(_context(conn), lq, start, end, limit, target)
    step = _step(p.get("step"), start, end)
    return service.volume_matrix(_context(conn), lq, start, end, step, limit, target)


def _window(params: dict[str, str | None]) -> tuple[int, int]:
    end = loki_time(params.get("end"), time.time_ns())
    start = loki_time(params.get("start"), end - 6 * 3600 * NS)
    return start, end + 1


def _selector_filter(text: str | None) -> ast.Filter:
    return _log_query(text).query.filter if text else ast.MatchAll()


def _resolving(request: Request, work: Callable[[HTTPConnection, dict[str, str | None]], Any],
               params: dict[str, str | None]) -> Any:
    """``work`` with Grafana's label names of attribute paths resolved (``k8s_namespace_name`` →
    ``k8s.namespace.name``), looked up only when the request names such a label."""
    texts = [params.get("query") or "", *request.query_params.getlist("match[]"),
             *(str(v) for v in request.path_params.values())]
    names = drilldown.label_path_names(texts)
    if not names:
        return work(request, params)
    end = loki_time(params.get("end") or params.get("time"), time.time_ns())
    start = loki_time(params.get("start"), end - 6 * 3600 * NS) - max(
        (drilldown.widest_range(t) for t in texts), default=0)
    with label_paths(drilldown.resolve_label_paths(_context(request), names, start, end + 1)):
        return work(request, params)


async def _answer(request: Request, work: Callable[[HTTPConnection, dict[str, str | None]], Any],
                  *, wrap: bool = True) -> Response:
    params: dict[str, str | None] = dict(request.query_params)
    try:
        data = await run_in_threadpool(_resolving, request, work, params)
    except ApiError as exc:
        detail = exc.detail if exc.detail is not None else exc.extra or None
        if isinstance(exc.detail, dict) and exc.extra:
            detail = {**exc.extra, **exc.detail}
        return _error(exc.status, exc.code, exc.message, detail, exc.headers)
    except QueryError as exc:  # found while running (a quantile the step cannot window, …)
        return _error(400, exc.code, exc.message, {"position": exc.position, **(exc.detail or {})})
    return _ok(data) if wrap else Response(orjson.dumps(data), media_type="application/json")


def loki_router() -> APIRouter:
    """The router the app factory mounts (GET only; ``POST …/push`` is the ingest adapter's)."""
    router = APIRouter(tags=["loki read"])

    @router.get(_PREFIX + "/query_range", summary="LogQL over a range: streams or matrix")
    async def query_range(request: Request) -> Response:
        return await _answer(request, _run_range)

    @router.get(_PREFIX + "/query", summary="LogQL at one instant: vector (or streams)")
    async def query(request: Request) -> Response:
        return await _answer(request, _run_instant)

    @router.get(_PREFIX + "/labels", summary="Label (field) names with values in the range")
    @router.get(_PREFIX + "/label", include_in_schema=False)
    async def labels(request: Request) -> Response:
        return await _answer(request, lambda conn, p: sorted({sanitize_label(n) for n in catalog.label_names(
            _context(conn), _selector_filter(p.get("query")), *_window(p))}))

    @router.get(_PREFIX + "/label/{name}/values", summary="Values of one label (field) in the range")
    async def label_values(request: Request, name: str) -> Response:
        return await _answer(request, lambda conn, p: catalog.label_values(
            _context(conn), name, _selector_filter(p.get("query")), *_window(p)))

    @router.get(_PREFIX + "/series", summary="Label sets of the streams a selector matches")
    async def series(request: Request) -> Response:
        matches = request.query_params.getlist("match[]") or request.query_params.getlist("match")

        def work(conn: HTTPConnection, p: dict[str, str | None]) -> Any:
            if not matches:
                raise ApiError(400, "invalid_logql", "at least one match[] selector is required")
            return catalog.series(_context(conn), [_log_query(m) for m in matches], *_window(p))

        return await _answer(request, work)

    @router.get(_PREFIX + "/index/stats", summary="Streams, chunks, bytes and entries a query reads")
    async def index_stats(request: Request) -> Response:
        return await _answer(request, lambda conn, p: catalog.index_stats(
            _context(conn), _log_query(p.get("query")), *_window(p)), wrap=False)

    @router.get(_PREFIX + "/index/volume", summary="Bytes per series of a selector (vector)")
    @router.get(_PREFIX + "/index/volume_range", summary="Bytes per series of a selector over time (matrix)")
    async def index_volume(request: Request) -> Response:
        return await _answer(request, lambda conn, p: _volume(conn, p, request.url.path.endswith("_range")))

    @router.get(_PREFIX + "/detected_fields", summary="Fields of the matching records, typed")
    async def detected_fields(request: Request) -> Response:
        def work(conn: HTTPConnection, p: dict[str, str | None]) -> Any:
            lq = _log_query(p.get("query"))
            fields = catalog.detected_fields(_context(conn), lq, *_window(p), _limit(p.get("limit"), 1000))
            return {"fields": fields, "limit": _limit(p.get("limit"), 1000)}

        return await _answer(request, work, wrap=False)

    @router.get(_PREFIX + "/detected_labels", summary="Stream labels of the range, with cardinality")
    async def detected_labels(request: Request) -> Response:
        return await _answer(request, lambda conn, p: {"detectedLabels": catalog.detected_labels(
            _context(conn), _log_query(p["query"]) if p.get("query") else None, *_window(p))}, wrap=False)

    @router.get(_PREFIX + "/detected_field/{name}/values", summary="Values of one field of the records")
    async def detected_field_values(request: Request, name: str) -> Response:
        return await _answer(request, lambda conn, p: {"values": drilldown.field_values(
            _context(conn), name, _log_query(p.get("query")), *_window(p), _limit(p.get("limit"), 1000))},
            wrap=False)

    @router.get(_PREFIX + "/patterns", summary="Templates of the matching records, counted per step")
    async def patterns(request: Request) -> Response:
        def work(conn: HTTPConnection, p: dict[str, str | None]) -> Any:
            start, end = _window(p)
            step = _step(p.get("step"), start, end)
            return drilldown.patterns(_context(conn), _log_query(p.get("query")), start, end, step)

        return await _answer(request, work)

    @router.get(_PREFIX + "/status/buildinfo", summary="Version (Grafana picks features by it)")
    async def buildinfo() -> Response:
        return Response(orjson.dumps({"version": LOKI_VERSION, "revision": "logharbor", "branch": "main",
                                      "buildUser": "logharbor", "buildDate": "", "goVersion": "",
                                      "logharbor": __version__}), media_type="application/json")

    @router.get("/ready", summary="Loki's readiness probe")
    async def ready() -> PlainTextResponse:
        return PlainTextResponse("ready\n")

    @router.websocket(_PREFIX + "/tail")
    async def tail(websocket: WebSocket) -> None:
        await _tail(websocket)

    return router


async def _tail(websocket: WebSocket) -> None:
    """Live tail: the history since ``start`` first, then new records as the tail hub matches them."""
    p: dict[str, str | None] = dict(websocket.query_params)
    hub = getattr(websocket.app.state, "tail_hub", None)
    try:
        lq = _log_query(p.get("query"))
        limit = _limit(p.get("limit"))
        ctx = _context(websocket)
        flt = lq.query.filter if ctx.extra is None else ast.And((ctx.extra, lq.query.filter))
        if hub is None:
            raise ApiError(503, "tail_unavailable", "live tail is not running on this server")
        sub = await hub.subscribe(to_text(ast.Query(flt)), ctx.scope, key_still_valid(websocket))
    except ApiError as exc:
        await websocket.accept()
        await websocket.send_text(orjson.dumps({"status": "error", "message": exc.message}).decode())
        await websocket.close(code=1008 if exc.status < 500 else 1013)
        return
    await websocket.accept()
    try:
        start = loki_time(p.get("start"), time.time_ns() - 3600 * NS)
        streams, _ = await run_in_threadpool(log_streams, ctx, lq, start, time.time_ns() + 1, limit,
                                             "forward")
        if streams:
            await websocket.send_text(orjson.dumps({"streams": streams}).decode())
        sender = asyncio.create_task(_tail_sender(websocket, sub, lq))
        receiver = asyncio.create_task(_tail_receiver(websocket))
        _, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    except (WebSocketDisconnect, OSError, ApiError):
        pass
    finally:
        hub.unsubscribe(sub)
        with contextlib.suppress(Exception):
            await websocket.close()


async def _tail_sender(websocket: WebSocket, sub: Any, lq: LogQuery) -> None:
    while not sub.closed:
        streams: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
        dropped: list[dict[str, Any]] = []
        for item in await sub.take():
            if isinstance(item, int):
                dropped.append({"labels": {}, "timestamp": str(time.time_ns()), "count": item})
                continue
            # exactjson: the hub's lines are exactjson's; orjson reads an integer beyond 64 bits
            # as a rounded float, and the label showed another number than the record's
            record = wire_to_record(exactjson.loads(item))
            labels = record_labels(record, lq)
            streams.setdefault(tuple(sorted(labels.items())), []).append(
                [str(record["timestamp"]), log_line(record, lq, labels)])
        message: dict[str, Any] = {"streams": [{"stream": dict(k), "values": v} for k, v in streams.items()]}
        if dropped:
            message["dropped_entries"] = dropped
        await websocket.send_text(orjson.dumps(message).decode())


async def _tail_receiver(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            if (await websocket.receive())["type"] == "websocket.disconnect":
                return
