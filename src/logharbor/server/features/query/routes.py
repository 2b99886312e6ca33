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

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from logharbor import exactjson
from logharbor.server.diskspace import is_no_space
from logharbor.server.engine.store import gate
from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.engine.store.patterns import resolve_groups
from logharbor.server.engine.store.rows import stored_row_to_wire as row_to_wire
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.errors import ApiError
from logharbor.server.limits import query_refusal

from .compiler import DEFAULT_LIMIT, CompiledQuery, compile_query, exact_fields
from .errors import QueryError
from .fieldstats import field_stats
from .timeparse import TimeParseError, parse_time_ns

__all__ = ["QueryRequest", "query_router", "request_time", "run_compiled", "store_error"]

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
    settings: dict[str, int | float] = {}
    if config is not None:
        settings["max_execution_time"] = config.query_timeout_s
        settings["max_memory_usage"] = config.query_max_memory_bytes
    return default, max_limit, settings


def request_time(value: str | bool | int | float | None, name: str, now_ns: int) -> int | None:
    """A time given in a request (``from``, ``to`` …) in ns, None when absent; a 400
    ``invalid_time`` naming the parameter when it is not a time (the query, explain and trace
    APIs read their times alike)."""
    if value is None or value == "":
        return None
    try:
        return parse_time_ns(value, now_ns=now_ns)
    except TimeParseError as exc:
        raise ApiError(400, "invalid_time", f"'{name}': {exc}") from None


def compile_request(
    body: QueryRequest, request: Request, store: Store, *, export: bool
) -> CompiledQuery:
    """Times, limits and scope of one request applied to its query text; 400 on any error."""
    now = time.time_ns()
    start = request_time(body.from_ if body.from_ is not None else body.since, "from", now)
    end = request_time(body.to, "to", now)
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "invalid_time", "'to' must be after 'from'")
    default, max_limit, _ = _limits(request)
    if export:
        max_limit = _EXPORT_MAX
    scope = getattr(request.state, "query_scope", None)
    try:
        return compile_query(body.q, table=store.table, time_from_ns=start, time_to_ns=end,
                             patterns_table=quote_identifier(store.patterns_name),
                             limit=body.limit, max_limit=max_limit, scope_sql=scope,
                             default_limit=default, now_ns=now)
    except QueryError as exc:
        raise ApiError(400, exc.code, exc.message, detail=exc.detail,
                       extra={"position": exc.position}) from None


def store_error(exc: StoreError) -> ApiError:
    """The API error a store failure of a read is answered with (the query and explain APIs)."""
    text = str(exc)
    refusal = query_refusal(exc)  # over a limit: a 4xx that names it
    if refusal is not None:
        return refusal
    if "Code: 427." in text:  # CANNOT_COMPILE_REGEXP: an RE2 feature Python accepted
        return ApiError(400, "invalid_regex", "the regex does not compile in RE2")
    if is_no_space(exc):  # a query spilling to disk (sort, join) on a full disk
        return ApiError(507, "insufficient_storage", "the store's disk is full; retry later",
                        headers={"Retry-After": "5"})
    return ApiError(500, "store_error", "the store could not run the query")


GroupLookup = Callable[[str, str, str], str | None]


def run_compiled(store: Store, compiled: CompiledQuery, settings: Mapping[str, Any],
                 groups: GroupLookup | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of a compiled query (records in wire form, each with its group's ``pattern_id``;
    ``groups`` is the server's own miner, asked before the patterns table) and the scan
    statistics."""
    began = time.perf_counter()
    stats: dict[str, Any] = {"rows_scanned": None, "bytes_scanned": None}
    try:
        rows, engine = store.query_with_stats(compiled.sql, compiled.params, settings=settings)
        stats["rows_scanned"] = engine.get("rows_read")
        stats["bytes_scanned"] = engine.get("bytes_read")
    except StoreError as exc:
        raise store_error(exc) from exc
    if compiled.kind == "records":
        if not compiled.groups_resolved:
            _resolve_groups(store, rows, groups)
        rows = [row_to_wire(row) for row in rows]
    elif compiled.exact:
        rows = [exact_fields(compiled, row) for row in rows]
    stats["elapsed_ms"] = round((time.perf_counter() - began) * 1000, 3)
    return rows, stats


def _columns(compiled: CompiledQuery, rows: list[dict[str, Any]]) -> list[str]:
    if compiled.kind != "records":
        return compiled.columns
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _resolve_groups(store: Store, rows: list[dict[str, Any]], groups: GroupLookup | None) -> None:
    """Stored pattern ids → their groups' (a store without the patterns table keeps them)."""
    if not any(row.get("pattern_id") for row in rows):
        return
    try:
        resolve_groups(store, rows, groups)
    except StoreError as exc:
        raise store_error(exc) from exc


def _ndjson_lines(chunks: Iterator[bytes], convert: Callable[[dict[str, Any]], dict[str, Any]] | None,
                  resolve: Callable[[list[dict[str, Any]]], None] | None = None) -> Iterator[bytes]:
    """Whole lines out of engine chunks, each row converted on the way (records to wire form;
    ``resolve`` gives each block's rows their group ids first)."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if not cut:
            continue
        block = data[:cut]
        if convert is None:
            yield block
            continue
        rows = [orjson.loads(line) for line in block.splitlines() if line]
        if resolve is not None:
            resolve(rows)
        yield b"".join(exactjson.dumps(convert(row)) + b"\n" for row in rows)
    if rest.strip():
        if convert is None:
            yield rest + b"\n"
            return
        row = orjson.loads(rest)
        if resolve is not None:
            resolve([row])
        yield exactjson.dumps(convert(row)) + b"\n"


def _export(store: Store, compiled: CompiledQuery, settings: Mapping[str, Any],
            groups: GroupLookup | None = None) -> Iterator[bytes]:
    """Pulls the first block before answering, so an engine error is still a proper 4xx/5xx."""
    convert = row_to_wire if compiled.kind == "records" else \
        functools.partial(exact_fields, compiled) if compiled.exact else None
    resolve = None
    if compiled.kind == "records" and not compiled.groups_resolved:
        def resolve(rows: list[dict[str, Any]]) -> None:
            _resolve_groups(store, rows, groups)
    lines = _ndjson_lines(store.stream(compiled.sql, compiled.params, settings=settings), convert, resolve)
    try:
        first = next(lines, b"")
    except StoreError as exc:
        raise store_error(exc) from exc

    def rest() -> Iterator[bytes]:
        if first:
            yield first
        try:
            yield from lines
        except StoreError as exc:
            error = store_error(exc)
            yield orjson.dumps({"error": {"code": error.code, "message": error.message}}) + b"\n"

    return rest()


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
            body_iter = await run_in_threadpool(_export, store, compiled, settings, _miner_groups(request))
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
        start = request_time(from_ if from_ is not None else since, "from", now)
        end = request_time(to, "to", now)
        if start is not None and end is not None and end <= start:
            raise ApiError(400, "invalid_time", "'to' must be after 'from'")
        _, max_limit, settings = _limits(request)
        scope = getattr(request.state, "query_scope", None)
        store: Store = request.app.state.store

        def work() -> dict[str, Any]:
            try:
                return field_stats(store, q.strip() or "*", start=start, end=end, scope=scope,
                                   settings=settings, top=top, only=field, now_ns=now,
                                   max_limit=max_limit).to_json()
            except QueryError as exc:
                raise ApiError(400, exc.code, exc.message, detail=exc.detail,
                               extra={"position": exc.position}) from None
            except StoreError as exc:
                raise store_error(exc) from exc

        answer = await run_in_threadpool(work)
        return Response(exactjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS),
                        media_type="application/json")

    return router
