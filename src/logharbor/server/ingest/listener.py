"""What the socket listeners (syslog, Fluent forward) share: addresses, the network allow-list,
TLS, and writing rows to the WAL with backpressure instead of loss.

These protocols have no HTTP headers to carry an API key, so a listener admits a peer by its
network (an allow-list of CIDRs, loopback only unless told otherwise) and, for forward, by the
shared-key handshake; TLS protects both on the wire.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import ipaddress
import logging
import socket
import ssl
import termios
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from logharbor.server.connections import ConnectionCap
from logharbor.server.ingest.base import Backpressure, Ingestor
from logharbor.server.ingest.retries import Ticket

__all__ = ["AllowList", "ChunkStream", "StreamListener", "parse_address", "server_tls_context",
           "write_with_backpressure"]

log = logging.getLogger("logharbor.server.ingest")
_BACKLOG = 100  # what asyncio's servers listen with


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
                 high_water: int = 4 * 1024 * 1024, streams: set[ChunkStream] | None = None) -> None:
        self.handler = handler
        self.tasks = tasks
        self.streams = streams if streams is not None else set()
        #: set by :meth:`drain` at a stop: the stream ends once the peer has sent nothing more
        #: for this long and the kernel holds nothing more for it (None: wait for the peer)
        self.idle_s: float | None = None
        self.high_water = high_water
        self.chunks: collections.deque[bytes] = collections.deque()
        self.pending = 0
        self.paused = False
        self.ended = False
        self.ready = asyncio.Event()
        self.transport: Any = None
        self.peer: str | None = None
        #: called once when the stream's handler has ended (its listener counts open connections)
        self.on_end: Callable[[], None] | None = None

    def connection_made(self, transport: Any) -> None:  # uvloop's transports are not asyncio's classes
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else None
        self.streams.add(self)
        task = asyncio.get_running_loop().create_task(self._run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self) -> None:
        try:
            await self.handler(self)
        finally:
            self.streams.discard(self)
            self.close()
            if self.on_end is not None:
                self.on_end()

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
            if self.idle_s is None:
                await self.ready.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), self.idle_s)
            if not self.chunks and not self.ready.is_set() and not self._kernel_holds_more():
                return b""  # stopping, and the peer has sent nothing more: the end of this stream
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.pending = 0
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            self.paused = False
        return data

    def drain(self, idle_s: float) -> None:
        """The server is stopping: end the stream at the end of what the peer has already sent
        (a :meth:`read` then answers ``b""`` instead of waiting for more)."""
        self.idle_s = idle_s
        self.ready.set()  # a read waiting without a deadline looks again

    def _kernel_holds_more(self) -> bool:
        """Whether bytes wait in the socket's receive buffer (not yet handed to the protocol:
        a busy loop may take longer than the idle time to get to them)."""
        if self.paused:
            return True
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        try:
            fd = sock.fileno() if sock is not None else -1
            if fd < 0:
                return False
            waiting = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
        except (OSError, ValueError):
            return False
        return int.from_bytes(waiting, "little", signed=True) > 0

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class StreamListener:
    """A TCP or TLS listening socket whose connections are read by ``handler`` (one task each).

    A stop loses nothing a peer already sent: TCP took it, so rsyslog, syslog-ng and a Fluent
    forwarder without acks count it delivered. :meth:`stop` stops accepting, takes the
    connections the kernel already completed (still in the listen backlog, which closing the
    socket would reset), and lets every handler read what its peer sent until the peer closes or
    is idle for ``idle_s``, within a deadline; the handlers write it to the WAL as usual, so the
    batcher's shutdown flush stores it. Only a peer still sending at the deadline is cut off.
    The accepting is done here (not by an asyncio ``Server``) so that a stop can end it without
    losing a connection the loop was still setting up.

    At most ``cap.limit`` connections are open at once (:mod:`logharbor.server.connections`): one
    more is closed as soon as it is accepted (a reset: its sender gets an error, it never counts a
    line delivered), counted and logged once per burst; the open ones are never touched.
    """

    def __init__(self, handler: Callable[[ChunkStream], Awaitable[None]], what: str,
                 ssl_ctx: ssl.SSLContext | None = None, cap: ConnectionCap | None = None) -> None:
        self.handler = handler
        self.what = what
        self.ssl_ctx = ssl_ctx
        self.cap = cap
        self.tasks: set[asyncio.Task[Any]] = set()
        self.streams: set[ChunkStream] = set()
        self.sockets: list[socket.socket] = []
        self.opening: set[asyncio.Task[Any]] = set()
        self.open = 0  # accepted and not yet ended (setting up, or read by a handler)

    def _protocol(self) -> ChunkStream:
        stream = ChunkStream(self.handler, self.tasks, streams=self.streams)
        stream.on_end = self._ended
        return stream

    def _ended(self) -> None:
        self.open -= 1

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; the address bound (the port chosen when ``port`` is 0)."""
        loop = asyncio.get_running_loop()
        # asyncio binds (every address of ``host``, as it would for a server) without listening;
        # the sockets are then ours (a duplicate of each), accepted from by :meth:`_accept` when readable
        server = await loop.create_server(self._protocol, host, port, start_serving=False)
        self.sockets = [socket.socket(fileno=socket.dup(s.fileno())) for s in server.sockets]
        server.close()
        await server.wait_closed()
        for sock in self.sockets:
            sock.setblocking(False)
            sock.listen(_BACKLOG)
            loop.add_reader(sock.fileno(), self._accept, sock)
        return self.sockets[0].getsockname()[:2]

    def _accept(self, sock: socket.socket) -> int:
        """Take every connection waiting on ``sock`` (called when it is readable, and at the stop)."""
        taken = 0
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return taken
            except OSError as exc:  # out of descriptors, or the like: the next readiness tries again
                log.warning("%s: accept failed: %s", self.what, exc)
                return taken
            self._open(conn)
            taken += 1

    def _open(self, conn: socket.socket) -> None:
        """Start reading an accepted connection (its TLS handshake first, on a task of its own),
        or refuse it when ``cap.limit`` are open."""
        if self.cap is not None and self.cap.full(self.open):
            with contextlib.suppress(OSError):  # a reset, not a FIN: the sender knows at once
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            conn.close()
            return
        self.open += 1
        conn.setblocking(False)
        task = asyncio.get_running_loop().create_task(self._connect(conn))
        self.opening.add(task)
        task.add_done_callback(self.opening.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(self._protocol, conn, ssl=self.ssl_ctx)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.info("%s: connection not set up: %s", self.what, exc)
            conn.close()
            self.open -= 1  # (a stream that was made ends through its own on_end)

    async def stop(self, deadline: float, idle_s: float = 0.25) -> None:
        """Stop accepting, then read every connection to the end of what its peer sent (until
        ``deadline``, a ``time.monotonic()`` value); what still runs then is cancelled."""
        loop = asyncio.get_running_loop()
        taken = 0
        for sock in self.sockets:  # what waits in the backlog: closing the socket would reset it
            loop.remove_reader(sock.fileno())
            taken += self._accept(sock)
            sock.close()
        self.sockets = []
        if taken:
            log.warning("%s: stopping: reading %d connection(s) that were waiting in the listen "
                        "backlog", self.what, taken)
        if self.opening:  # TLS handshakes of the last accepted connections
            await asyncio.wait(list(self.opening), timeout=max(0.0, deadline - time.monotonic()))
        for stream in list(self.streams):
            stream.drain(idle_s)
        running = [t for t in (*self.opening, *self.tasks) if not t.done()]
        if not running:
            return
        _, still = await asyncio.wait(running, timeout=max(0.0, deadline - time.monotonic()))
        if still:
            log.warning("%s: %d connection(s) still sending at the shutdown deadline were cut off; "
                        "what they sent after their last write is lost", self.what, len(still))
        for task in still:
            task.cancel()
        for task in still:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
