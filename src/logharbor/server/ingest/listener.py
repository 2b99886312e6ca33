"""What the socket listeners (syslog, Fluent forward) share: addresses, the network allow-list,
TLS, and writing rows to the WAL with backpressure instead of loss.

These protocols have no HTTP headers to carry an API key, so a listener admits a peer by its
network (an allow-list of CIDRs, loopback only unless told otherwise) and, for forward, by the
shared-key handshake; TLS protects both on the wire.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from logharbor.server.ingest.base import Backpressure, Ingestor
from logharbor.server.ingest.retries import Ticket

__all__ = ["AllowList", "ChunkStream", "parse_address", "server_tls_context", "write_with_backpressure"]

log = logging.getLogger("logharbor.server.ingest")


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:5514`` for IPv6) as a pair; ValueError names what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address {text!r} must be host:port")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104  # a bare ":port" means every interface
    return host, int(port)


class AllowList:
    """Which peers a listener talks to: an address must fall in one of the networks."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip()]

    def allows(self, address: str | None) -> bool:
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 or newer) from PEM files."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    # no TLS 1.3 session tickets: syslog senders never read, and a ticket left unread in their
    # socket makes their close() a TCP reset that discards the last lines they sent
    ctx.num_tickets = 0
    return ctx


async def write_with_backpressure(ingestor: Ingestor, payload: bytes, *, what: str, key: bytes = b"",
                                  ticket: Ticket | None = None) -> None:
    """Write rows (one WAL entry, with its entry ``key``), waiting while the WAL or its disk is full:
    the sender is held back, nothing is lost and nothing is acknowledged (a forward ``ack``)
    before it is written.

    A stream listener calls this before it reads more from the socket, so a full WAL fills the
    TCP window and the shipper slows down, as it would against a slow Elasticsearch.
    """
    if not payload:
        return
    delay = 0.05
    waited = 0
    while True:
        try:
            await ingestor.write_entries([(payload, key)], ticket)
            if waited:
                log.warning("%s: writing again after %d refused attempts", what, waited)
            return
        except Backpressure as exc:  # the WAL or its disk is full, or the WAL failed: not now
            if waited == 0 or waited % 50 == 0:
                log.warning("%s: %s (%s); holding the sender back", what, exc.message, exc.reason)
            waited += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, float(ingestor.retry_after_s))


class ChunkStream(asyncio.Protocol):
    """One accepted connection as a stream of byte chunks, read by a handler coroutine.

    Why not ``asyncio.StreamReader``: when a TLS peer hangs up without ``close_notify`` (most
    syslog senders do), the reader raises and the bytes it had already buffered are lost. Here
    every decrypted byte is handed over before the end is reported. Reading pauses while more
    than ``high_water`` bytes wait for the handler, so a slow WAL holds the sender back.
    """

    def __init__(self, handler: Callable[[ChunkStream], Awaitable[None]], tasks: set[asyncio.Task[Any]],
                 high_water: int = 4 * 1024 * 1024) -> None:
        self.handler = handler
        self.tasks = tasks
        self.high_water = high_water
        self.chunks: collections.deque[bytes] = collections.deque()
        self.pending = 0
        self.paused = False
        self.ended = False
        self.ready = asyncio.Event()
        self.transport: Any = None
        self.peer: str | None = None

    def connection_made(self, transport: Any) -> None:  # uvloop's transports are not asyncio's classes
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else None
        task = asyncio.get_running_loop().create_task(self._run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self) -> None:
        try:
            await self.handler(self)
        finally:
            self.close()

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.pending += len(data)
        if self.pending > self.high_water and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
        self.ready.set()

    def eof_received(self) -> bool | None:
        self.ended = True
        self.ready.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.ready.set()

    async def read(self) -> bytes:
        """Everything received so far (waiting for some); ``b""`` once the peer is gone."""
        while not self.chunks:
            if self.ended:
                return b""
            self.ready.clear()
            await self.ready.wait()
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.pending = 0
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            self.paused = False
        return data

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
