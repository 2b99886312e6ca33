"""``POST /api/v1/query``: run a query, answer JSON, or stream NDJSON for exports.

Body ``{"q", "from", "to", "since", "limit"}`` (times as RFC 3339, epoch seconds, ``now-1h`` or
``15m``). The JSON answer is ``{"kind", "columns", "rows", "stats"}``; with
``Accept: application/x-ndjson`` rows are written one per line as the engine produces them, so an
export of millions of rows never sits in memory (an error after the first row is reported as a
last line ``{"error": …}``, since the status line has gone by then).

Records rows leave in the wire form of DESIGN §2 (``logharbor.server.engine.store.rows.stored_row_to_wire``);
``stats``/``timechart`` rows are plain objects keyed by ``columns``.

Hooks for other parts: ``request.state.query_scope`` — an ``(sql_fragment, params)`` pair the
auth layer may set — is AND-ed into the query; ``store.query_with_stats`` is used when the store
has it, for the real rows and bytes the engine read.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from logharbor import exactjson
from logharbor.server.engine.store import gate
from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.limits import query_settings

from .compiler import DEFAULT_LIMIT, CompiledQuery, compile_query
from .errors import QueryError
from .fieldstats import field_stats
from .service import GroupLookup, export_lines, query_error, run_compiled, store_error
from .window import request_window

__all__ = ["QueryRequest", "query_router"]

NDJSON = "application/x-ndjson"
_EXPORT_MAX = 2**62
_MAX_QUERY_CHARS = 64 * 1024


class QueryRequest(BaseModel):
    """The body of ``POST /api/v1/query``."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    q: str = Field("*", max_length=_MAX_QUERY_CHARS, description="the query text")
    # bool is listed so pydantic keeps JSON true/false a bool (it made them the ints 1/0, epoch
    # second 1) and parse_time_ns refuses them with the invalid_time 400 of any bad time
    from_: str | bool | int | float | None = Field(None, alias="from", description="start (inclusive)")
    to: str | bool | int | float | None = Field(None, description="end (exclusive), default now")
    since: str | None = Field(None, description="same as from, e.g. 15m or now-1h")
    limit: int | None = Field(None, ge=0, strict=True, description="row cap; default 100 for records")


def _limits(request: Request) -> tuple[int, int, dict[str, int | float]]:
    config = getattr(getattr(request.app.state, "runtime", None), "config", None)
    default = getattr(config, "query_default_limit", DEFAULT_LIMIT)
    max_limit = getattr(config, "query_max_limit", 10_000)
    return default, max_limit, query_settings(request)


def compile_request(
    body: QueryRequest, request: Request, store: Store, *, export: bool
) -> CompiledQuery:
    """Times, limits and scope of one request applied to its query text; 400 on any error."""
    now = time.time_ns()
    start, end = request_window(body.from_ if body.from_ is not None else body.since, body.to, now)
    default, max_limit, _ = _limits(request)
    if export:
        max_limit = _EXPORT_MAX
    scope = getattr(request.state, "query_scope", None)
    try:
        return compile_query(body.q, table=store.table, time_from_ns=start, time_to_ns=end,
                             patterns_table=quote_identifier(store.patterns_name),
                             free_text_table=quote_identifier(store.free_text_name)
                             if store.free_text_name else None,
                             limit=body.limit, max_limit=max_limit, scope_sql=scope,
                             default_limit=default, now_ns=now)
    except QueryError as exc:
        raise query_error(exc) from None


def _columns(compiled: CompiledQuery, rows: list[dict[str, Any]]) -> list[str]:
    if compiled.kind != "records":
        return compiled.columns
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _miner_groups(request: Request) -> GroupLookup | None:
    """The server's own miner's lookup (stored id → group id), when it mines."""
    batcher = getattr(getattr(request.app.state, "runtime", None), "batcher", None)
    miner = getattr(batcher, "miner", None)
    return miner.miner.group_of if miner is not None else None


def query_router() -> APIRouter:
    """The router the app factory mounts."""
    router = APIRouter(tags=["query"])

    @router.post("/api/v1/query", summary="Run a query (JSON, or NDJSON stream with Accept)")
    async def run_query(body: QueryRequest, request: Request) -> Response:
        store: Store = request.app.state.store
        export = NDJSON in request.headers.get("accept", "")
        compiled = compile_request(body, request, store, export=export)
        _, _, settings = _limits(request)
        if export:
            settings.pop("max_execution_time", None)  # an export runs while the client reads, up to
            budget = gate.current()                   # its own, longer budget
            config = getattr(getattr(request.app.state, "runtime", None), "config", None)
            if budget is not None and config is not None:
                budget.extend_to(config.query_export_timeout_s)
            body_iter = await run_in_threadpool(export_lines, store, compiled, settings,
                                                _miner_groups(request))
            return StreamingResponse(body_iter, media_type=NDJSON,
                                     headers={"X-Logharbor-Kind": compiled.kind})
        rows, stats = await run_in_threadpool(run_compiled, store, compiled, settings, _miner_groups(request))
        payload = {"kind": compiled.kind, "columns": _columns(compiled, rows), "rows": rows,
                   "stats": stats}
        # exactjson: an attribute may be an integer beyond 64 bits, written as its digits
        return Response(exactjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS),
                        media_type="application/json")

    @router.get("/api/v1/fields", summary="Fields of a search's matches, with their top values")
    async def fields(request: Request, q: str = Query("*", max_length=_MAX_QUERY_CHARS),
                     from_: str | None = Query(None, alias="from"), to: str | None = None,
                     since: str | None = None, top: int = Query(5, ge=1, le=100),
                     field: str | None = Query(None, max_length=1000)) -> Response:
        """The fields the matches of ``q`` have in the range (whole-match counts for the cheap
        canonical columns, a sample for the rest) and the query's unknown field names."""
        now = time.time_ns()
        start, end = request_window(from_ if from_ is not None else since, to, now)
        _, max_limit, settings = _limits(request)
        scope = getattr(request.state, "query_scope", None)
        store: Store = request.app.state.store

        def work() -> dict[str, Any]:
            try:
                return field_stats(store, q.strip() or "*", start=start, end=end, scope=scope,
                                   settings=settings, top=top, only=field, now_ns=now,
                                   max_limit=max_limit).to_json()
            except QueryError as exc:
                raise query_error(exc) from None
            except StoreError as exc:
                raise store_error(exc) from exc

        answer = await run_in_threadpool(work)
        return Response(exactjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS),
                        media_type="application/json")

    return router
