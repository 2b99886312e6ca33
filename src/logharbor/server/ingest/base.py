"""What every ingest protocol shares: reading a bounded body, and writing rows through the WAL.

An ingest protocol (native NDJSON, Elasticsearch ``_bulk``, Loki, OTLP, syslog, forward) turns a
request into normalized records plus per-item errors; :class:`Ingestor` then encodes the records
to store rows, appends them to the write-ahead log and returns only once they are fsync'd. So
every protocol has the same durability and the same backpressure: when a write cannot be taken
now (the WAL or the disk guard refuses, the disk is full, the WAL failed) the ingestor raises
:class:`Backpressure`, and each protocol says "not now" in its own terms: HTTP answers 429, 507 or
503 with ``Retry-After`` (:func:`http_error`), syslog and forward stop reading their socket and
write again (``listener.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from logharbor.record import stamp_tenant  # re-exported: a scoped writer's tenant wins, the sent one is kept
from logharbor.server.auth import RateLimiter
from logharbor.server.engine.store.rows import encode_row, set_patterns
from logharbor.server.engine.wal import WalFull, WalNoSpace, WriteAheadLog
from logharbor.server.errors import ApiError, api_error_handler
from logharbor.server.ingest.decodepool import DecodeFailed, DecodePool, Mode
from logharbor.server.ingest.encoding import ENCODINGS, BadEncoding, BodyTooLarge, decode_content
from logharbor.server.ingest.idempotency import KeyIndex
from logharbor.server.ingest.retries import RetryGate, Ticket, pack_entries
from logharbor.server.meta.keys import Principal
from logharbor.types import JsonObject, RawRecord, Record

__all__ = ["Backpressure", "IngestProtocol", "Ingestor", "ItemError", "RecordLimits", "backpressure_handler",
           "http_error", "line_count", "read_body", "stamp_tenant"]

T = TypeVar("T")
log = logging.getLogger("logharbor.server.ingest")


class IngestProtocol(Protocol):
    """One wire protocol a shipper speaks; built-ins register the same way a plugin would."""

    name: str

    def router(self) -> APIRouter:
        """The HTTP routes of this protocol (listener-based protocols return an empty router)."""


@dataclass
class ItemError:
    """One rejected item: its 1-based line (or item index) and why."""

    line: int
    error: str

    def as_dict(self) -> JsonObject:
        return {"line": self.line, "error": self.error}


@dataclass(frozen=True)
class RecordLimits:
    """Per-record limits every protocol applies (security issue: a record cannot be a weapon)."""

    max_line_bytes: int = 1024 * 1024
    max_fields: int = 1000
    max_field_bytes: int = 256 * 1024
    #: objects and arrays nested deeper than this reject the record: the encoder (orjson: 254
    #: levels) and Python's recursion would fail on it later, as a 500 or a batch the store refuses
    max_depth: int = 100

    def check(self, obj: RawRecord, size: int) -> str | None:
        """Why ``obj`` (decoded from ``size`` bytes) breaks a limit, or None."""
        if len(obj) > self.max_fields:
            return f"record has {len(obj)} fields, over the limit of {self.max_fields}"
        # only a long enough text can nest deep (two bytes a level) or hold a long value
        if size > self.max_field_bytes or size >= 2 * self.max_depth:
            depth, longest = _shape(obj, self.max_depth)
            if depth > self.max_depth:
                return f"record nests objects or arrays more than {self.max_depth} levels deep"
            if longest > self.max_field_bytes:
                return f"a field value is {longest} bytes, over the limit of {self.max_field_bytes}"
        return None


def _shape(record: RawRecord, max_depth: int) -> tuple[int, int]:
    """The nesting depth of ``record`` (the record itself is 1; stops counting past
    ``max_depth``) and the UTF-8 length of its longest string; a loop, never recursion."""
    depth, longest = 1, 0
    stack: list[tuple[Any, int]] = [(record, 1)]
    while stack:
        value, level = stack.pop()
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            if isinstance(item, str):
                if len(item) * 4 > longest:  # only then can its UTF-8 be longer
                    longest = max(longest, len(item.encode("utf-8", "surrogatepass")))
            elif isinstance(item, dict | list):
                if level + 1 > max_depth:
                    return level + 1, longest
                depth = max(depth, level + 1)
                stack.append((item, level + 1))
    return depth, longest


def _note_key(index: KeyIndex, key: bytes, future: Future[int]) -> None:
    """Done-callback of a keyed WAL write (on the WAL's thread): remember a durable entry's key."""
    if not future.cancelled() and future.exception() is None:
        index.note(key)


class Backpressure(Exception):
    """The ingestor cannot take a write now: the sender should hold back and send it again.

    ``reason``: ``wal_full`` (the WAL, or the disk guard before the disk fills, refuses new
    entries: nothing of the entry was written), ``disk_full`` (the WAL met ENOSPC) or
    ``wal_failed`` (an I/O error; the WAL cut what it had half written) or ``decode_failed`` (the
    worker process decoding the body died, twice: nothing of it was written).
    """

    def __init__(self, reason: Literal["wal_full", "disk_full", "wal_failed", "decode_failed"], message: str,
                 detail: str,
                 retry_after_s: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail
        self.retry_after_s = retry_after_s


#: how HTTP says each reason (status, error code)
_HTTP = {"wal_full": (429, "backpressure"), "disk_full": (507, "insufficient_storage"),
         "wal_failed": (503, "wal_unavailable"), "decode_failed": (503, "decode_failed")}


def http_error(exc: Backpressure) -> ApiError:
    """The HTTP answer to :class:`Backpressure`: 429, 507 or 503, each with ``Retry-After``."""
    status, code = _HTTP[exc.reason]
    return ApiError(status, code, exc.message, detail=exc.detail,
                    headers={"Retry-After": str(exc.retry_after_s)})


async def backpressure_handler(request: Request, exc: Exception) -> Response:
    """The app's exception handler for :class:`Backpressure` raised in an HTTP ingest route."""
    assert isinstance(exc, Backpressure)
    return await api_error_handler(request, http_error(exc))


class Ingestor:
    """Encodes records to store rows and makes them durable in the WAL before returning.

    Decoding a large body is CPU work; it runs in the :class:`DecodePool` (``decode``: ``auto``,
    ``threads`` or ``processes``, with ``workers`` threads or worker processes; see decodepool.py):
    worker processes are how a decoder that holds the GIL uses more than one core, threads of
    this process serve one that releases it without pickling bodies and rows between processes.
    ``refusal`` (the disk guard's) says why no write may be taken now, or None: it is asked
    before each WAL entry. ``worker_init(patterns)`` starts each worker process with the
    server's choice of pattern ids (the decoder's ``set_patterns``, which also reaches the
    compiled row encoder).
    """

    def __init__(self, wal: WriteAheadLog, *, on_accept: Callable[[str, int, int], None] | None = None,
                 retry_after_s: int = 1, workers: int = 0, limiter: RateLimiter | None = None,
                 patterns: bool = True, keys: KeyIndex | None = None,
                 refusal: Callable[[], str | None] | None = None,
                 worker_init: Callable[[bool], None] = set_patterns,
                 decode: Mode = "processes", releases_gil: bool = False) -> None:
        self.wal = wal
        self.refusal = refusal
        self.limiter = limiter
        #: recently stored requests and documents (Idempotency-Key, ``_id``); see idempotency.py
        self.keys = keys if keys is not None else KeyIndex(Path(os.devnull), window_s=0, max_keys=0)
        self.gate = RetryGate(self.keys)
        self.on_accept = on_accept
        self.retry_after_s = retry_after_s
        self._listeners: list[Callable[[bytes], None]] = []
        #: when the WAL last refused for lack of space (monotonic s), None after a write went in
        self.no_space_at: float | None = None
        # worker processes encode rows too: they get the server's choice of per-message pattern ids
        self.decoding = DecodePool(decode, workers, releases_gil=releases_gil, worker_init=worker_init,
                                   initargs=(patterns,))

    def admit(self, principal: Principal | None, records: int) -> None:
        """Charge ``records`` to the caller's ingest rate; 429 with Retry-After when over it.

        A batch larger than the whole burst (one second's worth) could never pass, so it is a 413
        that names the limit, without Retry-After: shippers split a 413 batch (the agent and the
        sdk do) instead of retrying it forever.
        """
        if self.limiter is None:
            return
        rate = self.limiter.rate_for(principal)
        if rate is not None and records > rate:
            raise ApiError(413, "batch_over_rate",
                           f"this batch has {records} records, more than this key's ingest rate lets "
                           f"through at once ({rate} records/s); send batches of at most {rate} records",
                           detail={"records": records, "ingest_rate": rate, "max_batch_records": rate})
        wait = self.limiter.take(principal, records)
        if wait > 0:
            raise ApiError(429, "rate_limited", "this key is over its ingest rate; retry later",
                           detail={"retry_after_s": round(wait, 3)},
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def add_listener(self, listener: Callable[[bytes], None]) -> None:
        """Call ``listener(payload)`` with the store rows (JSONEachRow) of every durable write.

        Runs on the event loop right after the fsync, so it must only hand the bytes on (live tail
        queues them); an exception in it is logged and never fails the request.
        """
        self._listeners.append(listener)

    async def offload(self, fn: Callable[..., T], *args: Any, releases_gil: bool = False) -> T:
        """Run a picklable CPU-bound function in the decode pool (a thread or a worker process).

        ``releases_gil``: ``fn`` releases the GIL (the compiled NDJSON decoder says so), so under
        ``ingest_decode = auto`` it runs in a thread. A body lost with its worker process twice is
        a :class:`Backpressure` ``decode_failed`` (HTTP 503, Retry-After): nothing was written.
        """
        try:
            return await self.decoding.run(fn, *args, releases_gil=releases_gil)
        except DecodeFailed as exc:
            raise Backpressure("decode_failed", "the server lost the process decoding this body; "
                               "send it again", str(exc), self.retry_after_s) from None

    def close(self) -> None:
        self.decoding.close()

    async def write_rows(self, rows: list[bytes]) -> None:
        """Append encoded rows as one WAL entry and wait for its fsync (:class:`Backpressure`)."""
        if rows:
            await self.write_payload(b"\n".join(rows))

    async def write_payload(self, payload: bytes, *, ticket: Ticket | None = None) -> None:
        """Append rows already joined by newlines as one WAL entry and wait for its fsync.

        With a ``ticket`` (:meth:`open_ticket`) the entry carries the request's idempotency key;
        a replayed request writes nothing.
        """
        if ticket is None:
            await self.write_entries([(payload, b"")] if payload else [])
        elif not ticket.replay:
            await self.write_entries(pack_entries(ticket, [], [payload] if payload else []), ticket)

    async def write_entries(self, entries: list[tuple[bytes, bytes]], ticket: Ticket | None = None) -> None:
        """Append ``(payload, entry key)`` entries in order and wait until all are fsync'd.

        :class:`Backpressure` when the WAL or the disk guard refuses, the disk is full or the WAL
        failed. An entry's key is noted in the key index from the WAL's thread the moment the entry
        is durable, whatever happens to this request afterwards.
        """
        futures: list[Future[int]] = []
        full = "the server's write-ahead log is full; retry later"
        for payload, key in entries:
            refused = self.refusal() if self.refusal is not None else None
            if refused is not None:
                raise Backpressure("wal_full", full, refused, self.retry_after_s)
            try:
                future = self.wal.submit(payload, key=key)
            except WalFull as exc:
                raise Backpressure("wal_full", full, str(exc), self.retry_after_s) from None
            if key:
                future.add_done_callback(partial(_note_key, self.keys, key))
            if ticket is not None:
                ticket.writes.append(future)
            futures.append(future)
        for future, (payload, _) in zip(futures, entries, strict=True):
            try:
                await asyncio.wrap_future(future)
            except WalNoSpace as exc:
                self.no_space_at = time.monotonic()  # /readyz: not ready until the disk has room
                raise Backpressure("disk_full", "the server's disk is full; retry later", str(exc),
                                   self.retry_after_s) from None
            except OSError as exc:  # an I/O error: the WAL cut what it had half written
                raise Backpressure("wal_failed", "the server could not write its write-ahead log; "
                                   "send it again later", str(exc), self.retry_after_s) from None
            self.no_space_at = None
            for listener in self._listeners:
                try:
                    listener(payload)
                except Exception:
                    log.exception("an ingest listener failed")

    async def open_ticket(self, request: Request, body: bytes) -> Ticket:
        """Claim the request's ``Idempotency-Key`` (if any); close the ticket in a ``finally``."""
        return await self.gate.open(request, body)

    def close_ticket(self, ticket: Ticket) -> None:
        self.gate.close(ticket)

    async def write_records(self, records: Iterable[Record]) -> int:
        rows = [encode_row(r) for r in records]
        await self.write_rows(rows)
        return len(rows)

    def count(self, protocol: str, accepted: int, rejected: int) -> None:
        if self.on_accept is not None:
            self.on_accept(protocol, accepted, rejected)


#: compressed bodies above this are decompressed on a thread, not on the event loop
_INLINE_DECOMPRESS_BYTES = 64 * 1024
_TEXT_TYPES = ("application/x-ndjson", "application/json", "text/plain", "application/jsonl",
               "application/x-json-stream", "application/ndjson")


def line_count(body: bytes) -> int:
    """Lines in a request body, as a request limit counts them: a final newline ends the last line,
    it does not start another (an N-record body ending in a newline is N lines, not N + 1)."""
    if not body:
        return 0
    return body.count(b"\n") + (body[-1:] != b"\n")


async def read_body(request: Request, *, limit: int, content_types: tuple[str, ...] = _TEXT_TYPES) -> bytes:
    """The request body, decompressed, refusing more than ``limit`` bytes either side.

    413 over the limit (also for a body that decompresses past it: a zip bomb is stopped early),
    415 for a content type or encoding we do not take, 400 for a broken compressed stream.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in content_types:
        hint = ""
        if ctype == "application/x-www-form-urlencoded" and content_types[0] not in ("", ctype):
            # what curl -d/--data-binary sends unless told otherwise: say how to tell it
            hint = f" (curl sends it by default: add -H 'content-type: {content_types[0]}')"
        raise ApiError(415, "unsupported_media_type",
                       f"content type {ctype!r} is not accepted here{hint}",
                       detail={"accepted": list(content_types)})
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"request body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"request body is over {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if len(body) > _INLINE_DECOMPRESS_BYTES:  # zlib and zstd release the GIL: the loop goes on
        return await asyncio.to_thread(decompress, body, encoding, limit)
    return decompress(body, encoding, limit)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, zstd, deflate; every member or frame) with an output limit.

    A corrupt or truncated body, or one with trailing bytes that are not part of its coding, is a
    400 that names the problem; nothing of such a body is decoded, so nothing of it is stored.
    """
    try:
        return decode_content(body, encoding, limit)
    except LookupError as exc:
        raise ApiError(415, "unsupported_encoding", f"content encoding {exc.args[0]!r} is not supported",
                       detail={"accepted": list(ENCODINGS)}) from None
    except BodyTooLarge as exc:
        raise ApiError(413, "body_too_large", str(exc)) from None
    except BadEncoding as exc:
        raise ApiError(400, "bad_encoding", f"body is not valid {encoding}: {exc}") from None
