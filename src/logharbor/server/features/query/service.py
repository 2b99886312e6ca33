"""What the query API does, apart from HTTP: run a compiled query on the store and turn its rows
into the answer's (records in wire form with their groups' pattern ids, exact numbers of
``fields``/``stats``), whole, or as an NDJSON stream for exports; and the API error a store failure
of a read is answered with (``store_error``, which the explain API shares).

``routes.py`` reads the request (times, limits, the key's scope) into a :class:`CompiledQuery`
and shapes the answer; nothing here knows about the request.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

from logharbor import exactjson
from logharbor.server.diskspace import is_no_space
from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.engine.store.patterns import resolve_groups
from logharbor.server.engine.store.rows import stored_row_to_wire as row_to_wire
from logharbor.server.errors import ApiError
from logharbor.server.limits import query_refusal

from .compiler import CompiledQuery, exact_fields
from .errors import QueryError

__all__ = ["GroupLookup", "export_lines", "query_error", "run_compiled", "store_error"]


def query_error(exc: QueryError) -> ApiError:
    """The 400 a query that does not parse or compile is answered with: its code, message and
    detail, and where in the text (``position``); the same from every API that takes a query."""
    return ApiError(400, exc.code, exc.message, detail=exc.detail, extra={"position": exc.position})


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


def export_lines(store: Store, compiled: CompiledQuery, settings: Mapping[str, Any],
           groups: GroupLookup | None = None) -> Iterator[bytes]:
    """The NDJSON lines of a compiled query as the engine produces them. Pulls the first block
    before answering, so an engine error is still a proper 4xx/5xx."""
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


