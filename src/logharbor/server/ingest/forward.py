"""Fluent forward protocol v1 over TCP (and TLS): what Fluentd, Fluent Bit and the fluent-logger
libraries send with ``out_forward``.

Every mode of the spec is read: Message ``[tag, time, record, option?]``, Forward
``[tag, [[time, record], …], option?]``, PackedForward ``[tag, <msgpack stream>, option?]`` and
CompressedPackedForward (the same, gzip'd, ``option.compressed == "gzip"``). ``time`` is an
integer of seconds or an EventTime (msgpack ext type 0: seconds and nanoseconds). When the option
carries a ``chunk`` id, ``{"ack": chunk}`` is sent only after the records are fsync'd in the WAL,
so a shipper with ``require_ack_response`` resends exactly what was not kept.

Admission: the peer's address must be in the allow-list; with a shared key configured the server
opens with ``HELO`` and the peer must answer ``PING`` with ``sha512(salt + hostname + nonce +
key)``, which the server checks and answers with ``PONG`` (proving it knows the key too).

Records: the tag becomes the attribute ``tag``, the event time the timestamp (unless the record
has its own ``timestamp``); the record's keys fold like any JSON record (``log``/``message`` →
message, ``level`` …).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import orjson
from fastapi import APIRouter

from logharbor.record import RecordError, keep_aside
from logharbor.server.connections import ConnectionCap
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.ingest.attrnames import set_beside
from logharbor.server.ingest.base import Ingestor, RecordLimits
from logharbor.server.ingest.encoding import BadEncoding, BodyTooLarge, gunzip_members
from logharbor.server.ingest.idempotency import EntryKey, request_digest, request_fingerprint
from logharbor.server.ingest.listener import (
    AllowList,
    ChunkStream,
    StreamListener,
    parse_address,
    server_tls_context,
    write_with_backpressure,
)
from logharbor.server.ingest.retries import Ticket

__all__ = ["ForwardIngest", "decode_each", "decode_entries"]

log = logging.getLogger("logharbor.server.ingest.forward")
#: more entries than this in one read are decoded in the ingest worker processes
_OFFLOAD_ENTRIES = 500


class ForwardError(ValueError):
    """A message that does not follow the forward protocol (the connection is closed)."""


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0 and len(data) == 8:  # EventTime: big-endian uint32 seconds, uint32 nanoseconds
        return int.from_bytes(data[:4], "big") * 1_000_000_000 + int.from_bytes(data[4:], "big")
    return msgpack.ExtType(code, data)


def _unpacker(max_bytes: int) -> msgpack.Unpacker:
    return msgpack.Unpacker(raw=False, unicode_errors="surrogateescape", ext_hook=_ext_hook,
                            max_buffer_size=max_bytes, strict_map_key=False)


def _clean(value: Any) -> Any:
    """JSON-safe copy: bytes and undecodable text become UTF-8 text (invalid bytes replaced)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(_clean(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, msgpack.ExtType):
        return value.data.hex()
    return value


def _gunzip(data: bytes, limit: int) -> bytes:
    """Every gzip member in ``data`` (Fluentd appends one per chunk), at most ``limit`` bytes."""
    try:
        return gunzip_members(data, limit)
    except BodyTooLarge:
        raise ForwardError(f"compressed entries are over {limit} bytes") from None
    except BadEncoding as exc:
        raise ForwardError(f"compressed entries are not valid gzip: {exc}") from None


def _unpack_all(data: bytes, max_bytes: int) -> list[Any]:
    """Every entry of a PackedForward stream; a stream that ends inside an entry is an error
    (the partial entry would otherwise be dropped without a word)."""
    unpacker = _unpacker(max_bytes)
    unpacker.feed(data)
    entries: list[Any] = []
    end = 0  # tell() after a failed unpack counts the partial entry's bytes too
    for entry in unpacker:
        entries.append(entry)
        end = unpacker.tell()
    if end != len(data):
        raise ForwardError(f"packed entries end inside an entry: {len(data) - end} bytes "
                           f"after entry {len(entries)} are not a whole entry")
    return entries


def decode_entries(tag: str, entries: list[Any], received_ns: int, limits: RecordLimits
                   ) -> tuple[bytes, int, int]:
    """Store rows (joined), accepted and rejected counts for ``[time, record]`` entries."""
    rows: list[bytes] = []
    rejected = 0
    first = ""
    for entry in entries:
        if not isinstance(entry, list | tuple) or len(entry) < 2 or not isinstance(entry[1], dict):
            rejected += 1
            first = first or "an entry is not [time, record]"
            continue
        stamp, record = entry[0], entry[1]
        raw = dict(record)
        set_beside(raw, "tag", tag, "forward")  # a record's own "tag" keeps the name
        event_time = stamp if isinstance(stamp, int | float) and not isinstance(stamp, bool) and stamp > 0 \
            else None
        row = _fold(raw, received_ns, limits, event_time)
        if isinstance(row, bytes):
            rows.append(row)
        else:
            rejected += 1
            first = first or row
    if rejected:  # the chunk is acknowledged all the same: the one place this shows is here
        log.warning("forward: %d record(s) of tag %r refused (their chunk is acknowledged); first: %s",
                    rejected, tag, first)
    return b"\n".join(rows), len(rows), rejected


def _is_http(key: str) -> bool:
    return key == "http" or key.startswith("http.")


def _is_time(key: str) -> bool:
    return key in ("timestamp", "@timestamp")


def _fold(raw: dict[Any, Any], received_ns: int, limits: RecordLimits, event_time: Any) -> bytes | str:
    """The store row of one record, or why it cannot be stored.

    Forward cannot refuse one record of a chunk it acknowledges, so refusing one lost it (a DEBUG
    line and a counter were all that showed it): a value that must fold but does not (an ``http``
    status that is not a number, then a ``timestamp`` that is not a time) is kept aside as sent
    (``http_attribute``, ``timestamp_attribute`` …), the reason in ``forward_error``, and the record
    stored (with the event time when its own is set aside)."""
    timed = raw if "timestamp" in raw or event_time is None else {**raw, "timestamp": event_time}
    problem = limits.check(timed, limits.max_field_bytes + 1)
    if problem is not None:
        return problem
    try:
        return _encode(timed, received_ns)
    except (TypeError, ValueError, orjson.JSONEncodeError) as exc:
        if not isinstance(exc, RecordError):
            return str(exc)
        reason = str(exc)
    kept = dict(raw)
    for must_fold in (_is_http, _is_time):  # HTTP values first: the record keeps its own time if it can
        moved = [k for k in kept if isinstance(k, str) and must_fold(k)]
        if not moved:
            continue
        for key in moved:
            keep_aside(kept, key, kept.pop(key))
        attempt = dict(kept)
        set_beside(attempt, "forward_error", reason, "forward")
        if "timestamp" not in attempt and event_time is not None:
            attempt["timestamp"] = event_time
        try:
            return _encode(attempt, received_ns)
        except (TypeError, ValueError, orjson.JSONEncodeError) as again:  # RecordError too
            reason = str(again)
    return reason


def _encode(raw: dict[Any, Any], received_ns: int) -> bytes:
    try:
        return encode_record(raw, received_ns=received_ns)
    except (TypeError, UnicodeError, orjson.JSONEncodeError):  # bytes or broken UTF-8 from msgpack
        return encode_record(_clean(raw), received_ns=received_ns)


def decode_each(groups: list[tuple[str, list[Any]]], received_ns: int, limits: RecordLimits
                ) -> list[tuple[bytes, int, int]]:
    """:func:`decode_entries` of each ``(tag, entries)`` apart; picklable for the worker processes."""
    return [decode_entries(tag, entries, received_ns, limits) for tag, entries in groups]


def _as_packable(value: Any) -> Any:
    """What msgpack cannot pack again (only for a fingerprint): its text."""
    return repr(value)


class _Connection:
    """One forward connection: handshake, then messages, acks after the WAL write."""

    def __init__(self, owner: ForwardIngest, stream: ChunkStream) -> None:
        self.owner = owner
        self.stream = stream
        self.peer = stream.peer
        self.unpacker = _unpacker(owner.max_bytes)

    async def _next(self) -> Any:
        """The next whole msgpack object, reading as needed; None at end of stream."""
        while True:
            try:
                return self.unpacker.unpack()
            except msgpack.OutOfData:
                pass
            data = await self.stream.read()
            if not data:
                return None
            self.unpacker.feed(data)

    async def handshake(self, key: bytes) -> bool:
        nonce = os.urandom(16)
        self.stream.write(msgpack.packb(["HELO", {"nonce": nonce, "auth": b"", "keepalive": True}]))
        ping = await asyncio.wait_for(self._next(), timeout=30)
        if not (isinstance(ping, list) and len(ping) >= 4 and ping[0] == "PING"):
            return False
        hostname, salt, digest = (_as_bytes(ping[1]), _as_bytes(ping[2]), _as_text(ping[3]))
        expected = hashlib.sha512(salt + hostname + nonce + key).hexdigest()
        ok = hmac.compare_digest(expected, digest)
        me = self.owner.hostname.encode()
        proof = hashlib.sha512(salt + me + nonce + key).hexdigest() if ok else ""
        reason = "" if ok else "shared key mismatch"
        self.stream.write(msgpack.packb(["PONG", ok, reason, self.owner.hostname, proof]))
        return ok

    async def serve(self) -> None:
        while True:
            first = await self._next()
            if first is None:
                return
            batch = [first]
            while True:  # every message already buffered goes into the same WAL write
                try:
                    batch.append(self.unpacker.unpack())
                except msgpack.OutOfData:
                    break
            await self._store(batch)

    async def _store(self, messages: list[Any]) -> None:
        owner = self.owner
        ingestor = owner.ingestor
        assert ingestor is not None
        received = time.time_ns()
        groups: list[tuple[str, list[Any]]] = []
        chunks: list[Any] = []  # per group: its chunk id, or None
        broken: Exception | None = None
        for message in messages:
            try:
                tag, entries, option = self._entries(message)
            except (ForwardError, msgpack.UnpackException, ValueError) as exc:
                broken = exc  # keep (and ack) the good messages before it, then hang up
                break
            groups.append((tag, entries))
            chunks.append(option.get("chunk") if isinstance(option, dict) else None)
        ticket = Ticket()
        try:
            keys = await self._chunk_keys(groups, chunks, ticket)
            fresh = [(group, key) for group, key in zip(groups, keys, strict=True) if key is not None]
            if sum(len(entries) for (_, entries), _ in fresh) > _OFFLOAD_ENTRIES:
                decoded = await ingestor.offload(decode_each, [g for g, _ in fresh], received, owner.limits)
            else:
                decoded = decode_each([g for g, _ in fresh], received, owner.limits)
            plain = b"\n".join(payload for (payload, _, _), (_, key) in zip(decoded, fresh, strict=True)
                               if payload and not key)
            for (payload, _, _), (_, key) in zip(decoded, fresh, strict=True):
                if key:  # a chunk: an entry of its own, whose key says the chunk is stored
                    await write_with_backpressure(ingestor, payload, what=f"forward from {self.peer}",
                                                  key=key, ticket=ticket)
            await write_with_backpressure(ingestor, plain, what=f"forward from {self.peer}")
        finally:
            ingestor.close_ticket(ticket)
        ingestor.count(owner.name, sum(a for _, a, _ in decoded), sum(r for _, _, r in decoded))
        for chunk in chunks:
            if chunk is not None:
                self.stream.write(msgpack.packb({"ack": chunk}))
        if broken is not None:
            raise ForwardError(str(broken))

    async def _chunk_keys(self, groups: list[tuple[str, list[Any]]], chunks: list[Any], ticket: Ticket,
                          ) -> list[bytes | None]:
        """Per message: the WAL entry key that records its chunk as stored (b"" for a message
        without a chunk id), or None for a chunk already stored within the window.

        Fluentd sends a chunk again, under the same ``chunk`` id, when its ack was lost (a crash
        between the WAL fsync and the ack); the first copy is acked again and not stored twice.
        A copy is the same id *and* the same records, within one read as across reads: two
        messages of one read that shared an id with other records were acked and the second
        dropped.
        """
        index = self.owner.ingestor.keys  # type: ignore[union-attr]
        if not index.enabled or not any(c is not None for c in chunks):
            return [b""] * len(groups)
        digests = [request_digest("forward", _as_text(c)) if c is not None else b"" for c in chunks]
        await self.owner.ingestor.gate.hold(ticket, [d for d in digests if d])  # type: ignore[union-attr]
        keys: list[bytes | None] = []
        here: dict[bytes, set[bytes]] = {}  # chunk digests of this read → their fingerprints
        now = int(time.time())
        for (tag, entries), digest in zip(groups, digests, strict=True):
            if not digest:
                keys.append(b"")
                continue
            fingerprint = request_fingerprint(tag, msgpack.packb(entries, default=_as_packable,
                                                                 unicode_errors="surrogateescape"))
            if fingerprint in here.get(digest, ()) or index.request(digest) == fingerprint:
                index.replays += 1
                keys.append(None)
                continue
            here.setdefault(digest, set()).add(fingerprint)
            keys.append(EntryKey(now, (digest, fingerprint)).encode())
        return keys

    def _entries(self, message: Any) -> tuple[str, list[Any], Any]:
        if not isinstance(message, list | tuple) or len(message) < 2 or not isinstance(message[0], str):
            raise ForwardError("a forward message must be [tag, ...]")
        tag, second = _as_text(message[0]), message[1]
        if isinstance(second, list):  # Forward mode
            return tag, second, message[2] if len(message) > 2 else None
        if isinstance(second, bytes | str):  # PackedForward / CompressedPackedForward
            option = message[2] if len(message) > 2 else None
            data = second if isinstance(second, bytes) else second.encode("utf-8", "surrogateescape")
            if isinstance(option, dict) and option.get("compressed") == "gzip":
                data = _gunzip(data, self.owner.max_bytes)
            return tag, _unpack_all(data, self.owner.max_bytes), option
        if len(message) >= 3:  # Message mode
            return tag, [[second, message[2]]], message[3] if len(message) > 3 else None
        raise ForwardError("a forward message has no record")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def _as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class ForwardIngest:
    """The forward listener; off unless an address is given."""

    name = "forward"

    def __init__(self, *, address: str | None = None, tls: bool = False, tls_cert: Path | None = None,
                 tls_key: Path | None = None, shared_key: str | None = None,
                 allow: list[str] | None = None, limits: RecordLimits | None = None,
                 max_bytes: int = 64 * 1024 * 1024, max_connections: int = 1024) -> None:
        if address:
            parse_address(address)
        if tls and not (tls_cert and tls_key):
            raise ValueError("the forward TLS listener needs a certificate and key (--listener-tls-cert/key)")
        self.address = address
        self.tls = tls
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.shared_key = shared_key.encode() if shared_key else None
        self.allow = AllowList(allow if allow is not None else ["127.0.0.0/8", "::1/128"])
        self.limits = limits or RecordLimits()
        self.max_bytes = max_bytes
        self.max_connections = max_connections  # (server/connections.py)
        #: counts a refused connection by listener name (the server's metrics; set before start)
        self.on_refused: Callable[[str], None] | None = None
        self.hostname = socket.gethostname()
        self.ingestor: Ingestor | None = None
        self.server: StreamListener | None = None
        self.bound: tuple[str, int] | None = None

    def router(self) -> APIRouter:
        return APIRouter()  # a listener, not an HTTP route

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    async def start(self, ingestor: Ingestor) -> None:
        """Open the listening socket on the running event loop."""
        self.ingestor = ingestor
        if not self.address:
            return
        host, port = parse_address(self.address)
        ctx = server_tls_context(self.tls_cert, self.tls_key) if self.tls else None  # type: ignore[arg-type]
        cap = ConnectionCap("forward", self.max_connections, "listener_max_connections", self.on_refused)
        self.server = StreamListener(self._connection, "forward", ctx, cap)
        self.bound = await self.server.start(host, port)
        log.warning("forward listening on %s:%s%s", *self.bound, " (TLS)" if self.tls else "")

    async def stop(self, deadline: float | None = None) -> None:
        """Stop listening; what every peer had already sent is written (and acknowledged when it
        asked for acks) until ``deadline`` (``time.monotonic()``; by default 5 s from now): a
        client in no-ack mode counts a chunk delivered once TCP took it (see
        :class:`StreamListener`)."""
        if self.server is not None:
            await self.server.stop(time.monotonic() + 5.0 if deadline is None else deadline)

    async def _connection(self, stream: ChunkStream) -> None:
        peer = stream.peer
        conn = _Connection(self, stream)
        try:
            if not self.allow.allows(peer):
                log.warning("forward: connection from %s refused (not in the allow-list)", peer)
                return
            if self.shared_key is not None and not await conn.handshake(self.shared_key):
                log.warning("forward: %s failed the shared-key handshake", peer)
                return
            await conn.serve()
        except (ForwardError, msgpack.UnpackException, ValueError) as exc:
            log.warning("forward: bad data from %s, closing: %s", peer, exc)
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.info("forward: connection from %s ended: %s", peer, exc)
