"""Receive syslog (``syslog``): RFC 5424 and RFC 3164 over UDP, TCP and TLS, on the agent's host.

Framing is :class:`logharbor.formats.syslog_framing.SyslogFramer` and parsing is
:func:`logharbor.formats.syslog.parse_syslog` — the same code as the server's own listener, so a
message means the same thing whichever of the two received it.

Threads: one for UDP, one accepting TCP/TLS connections, one per connection (at most
``max_connections``; more are refused by closing them, counted in
``logharbor_agent_connections_refused`` and logged once per burst). They put parsed records into one bounded
queue; the source's own thread turns the queue into chunks for the pipeline. When the sinks push
back, the queue fills: TCP readers stop reading (the senders' TCP windows close), and UDP
datagrams wait in the kernel's receive buffer until it overflows (dropped, as UDP must).

Delivery: syslog over UDP has no acknowledgement at all, and syslog over TCP has none above TCP's
own: a sender cannot know what the agent did with a message it read. Messages read but not yet
durable in every sink (delivered, or fsync'd in a disk buffer) are lost if the agent crashes; at
a clean stop (or a reload that changes the source), listeners take the connections the kernel
already completed (still in the listen backlog) and then stop accepting, each open connection is
read to the end of what its peer already sent (an unterminated last message included), the UDP
socket's receive queue is read until it is empty (at most its buffer size: closing the socket
would make the kernel discard datagrams it had accepted), and all of it is delivered within the
shutdown timeout.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from logharbor.agent import telemetry
from logharbor.agent.sources.common import SourceConfig, build_parser_for
from logharbor.agent.types import Ack, AgentError, Chunk
from logharbor.formats.syslog import parse_syslog
from logharbor.formats.syslog_framing import SyslogFramer
from logharbor.types import JsonObject, RawRecord

__all__ = ["Config", "SyslogSource", "parse_address"]

_BATCH = 1000
_WAIT_S = 0.05
_REFUSED_LOG_EVERY_S = 60.0  # while connections are refused, at most one log line per this
_CLOSE_SECS = 2.0  # on a stop, how long readers may take to hand over what peers already sent


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:514`` for IPv6) → (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not host:port (say 0.0.0.0:514 to listen on every address)")
    return host, int(port)


class Config(SourceConfig):
    """Options of the ``syslog`` source; at least one of ``udp``, ``tcp``, ``tls``."""

    type: Literal["syslog"]
    udp: str | None = None
    tcp: str | None = None
    tls: str | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    max_message_bytes: int = Field(default=64 * 1024, ge=256, le=16 * 1024 * 1024)
    max_connections: int = Field(default=256, ge=1)
    idle_timeout_secs: float = Field(default=600.0, gt=0)
    timezone: str = "UTC"
    queue_messages: int = Field(default=10000, ge=100)

    @model_validator(mode="after")
    def _check(self) -> Config:
        from logharbor.formats.syslog import SyslogOptions

        if not (self.udp or self.tcp or self.tls):
            raise ValueError("give at least one listener: udp, tcp or tls (host:port)")
        for key in ("udp", "tcp", "tls"):
            value = getattr(self, key)
            if value:
                try:
                    parse_address(value)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        if self.tls and not (self.tls_cert_file and self.tls_key_file):
            raise ValueError("tls: needs tls_cert_file and tls_key_file")
        for path in (self.tls_cert_file, self.tls_key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"no such file: {path}")
        SyslogOptions(timezone=self.timezone)  # an unknown zone fails here, named
        return self

    def parser_spec(self) -> tuple[str, JsonObject] | None:
        """None: syslog is parsed by the source; ``parser`` applies to the MSG part (see ``record``)."""
        return None


class SyslogSource:
    """The ``syslog`` source (see the module docstring)."""

    def __init__(self, name: str, cfg: Config, data_dir: Path, sinks: int) -> None:
        self.name = name
        self.cfg = cfg
        self.sinks = sinks
        self.meta = {"source": "syslog", **cfg.fields}
        self.agent_host = socket.gethostname()
        self.queue: queue.Queue[RawRecord] = queue.Queue(cfg.queue_messages)
        self._pending = 0
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._refused_since = 0  # refused connections not yet logged
        self._refused_logged_at: float | None = None
        self._socks: list[socket.socket] = []
        self.bound: dict[str, tuple[str, int]] = {}
        self.parser: Any = None
        spec = SourceConfig.parser_spec(cfg)
        if spec is not None:
            self.parser = build_parser_for(spec)
        self._tls: ssl.SSLContext | None = None
        self._bind_all()

    # -- the Source interface -------------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def _done(self, _ack: Ack) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        for sock in (*self._socks, *list(self._conns)):
            with contextlib.suppress(OSError):
                sock.close()

    def run(self, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        # the listener threads run until ``halt``, not ``stop``: on a stop they first read what
        # the peers already sent (and an unterminated last message) so it is shipped, not dropped
        halt, closing = threading.Event(), threading.Event()
        threads = self._listen(halt, closing)
        telemetry.event(20, "syslog listening", source=self.name,
                        **{k: f"{h}:{p}" for k, (h, p) in self.bound.items()})
        while not stop.is_set():
            self._drain(emit, wait=True)
        # the TCP/TLS listeners first take the connections the kernel already completed (their
        # peers may have sent everything), then close; closing a listener resets those instead
        closing.set()
        for kind, th in zip(self.bound, threads, strict=True):
            if kind != "udp":
                th.join(_CLOSE_SECS)
        for kind, sock in zip(self.bound, self._socks, strict=True):  # stop accepting
            if kind != "udp":  # (the UDP reader closes its socket once its queue is read)
                with contextlib.suppress(OSError):
                    sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # each reader sees end-of-stream after what is already buffered
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RD)
        deadline = time.monotonic() + _CLOSE_SECS
        while time.monotonic() < deadline and (self._readers_alive(threads) or not self.queue.empty()):
            self._drain(emit, wait=True)
        halt.set()
        for th in threads:
            th.join(0.5)
        for sock in self._socks:  # a UDP reader the deadline cut short
            with contextlib.suppress(OSError):
                sock.close()
        while not self.queue.empty():
            self._drain(emit, wait=False)

    def _readers_alive(self, threads: list[threading.Thread]) -> bool:
        with self._lock:
            if self._conns:
                return True
        return any(th.is_alive() for th in threads)

    def _drain(self, emit: Callable[[Chunk], None], wait: bool) -> None:
        records: list[RawRecord] = []
        try:
            records.append(self.queue.get(timeout=0.2) if wait else self.queue.get_nowait())
        except queue.Empty:
            return
        deadline = time.monotonic() + _WAIT_S
        while len(records) < _BATCH:
            left = deadline - time.monotonic()
            try:
                records.append(self.queue.get(timeout=left) if left > 0 and wait else self.queue.get_nowait())
            except queue.Empty:
                break
        ack = Ack(self.sinks, self._done)
        with self._lock:
            self._pending += 1
        telemetry.METRICS.lines_read.labels(self.name).inc(len(records))
        emit(Chunk([], ack, 0, dict(self.meta), records, time.time_ns()))

    # -- records --------------------------------------------------------------------------------

    def record(self, data: bytes, truncated: bool, peer: str | None, length: int | None = None) -> RawRecord:
        """One framed message as a record; ``parser`` (if any) reads its MSG part. A message cut
        at ``max_message_bytes`` is marked ``truncated`` (with its ``original_bytes`` when known:
        a datagram's), logged and counted.

        A field the parsed MSG names as the header did (``level`` beside the PRI's, ``host``,
        ``timestamp``) takes the MSG's value, and the header's other value is kept as
        ``<name>_syslog``: it used to be replaced without a word.
        """
        rec = parse_syslog(data.decode("utf-8", "replace"), self.cfg.timezone)
        if truncated:
            rec["truncated"] = True
            if length is not None:
                rec["original_bytes"] = length
            telemetry.line_truncated(self.name, peer or "", None, length, len(data))
        if not rec.get("host"):
            rec["host"] = peer or self.agent_host
        if peer:
            rec["peer"] = peer
        if self.parser is not None and "parse_error" not in rec and rec.get("message"):
            parsed = self.parser.parse(rec["message"])
            if "parse_error" in parsed:
                rec["parse_error"] = parsed["parse_error"]
            else:
                del rec["message"]
                displaced = [(key, rec[key]) for key, value in parsed.items()
                             if key in rec and rec[key] is not value
                             and (rec[key] != value or type(rec[key]) is not type(value))]
                rec.update(parsed)  # the MSG's own fields win their names
                for key, header in displaced:  # the header's other value is kept beside
                    kept, n = f"{key}_syslog", 2
                    while kept in rec and rec[kept] != header:
                        kept, n = f"{key}_syslog{n}", n + 1
                    rec[kept] = header
        return rec

    def _put(self, rec: RawRecord, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                self.queue.put(rec, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    # -- listeners ------------------------------------------------------------------------------

    def _bind_all(self) -> None:
        """Open every listener now: a busy port or a bad certificate stops the agent at start."""
        cfg = self.cfg
        kind, address = "tls", cfg.tls
        try:
            if cfg.tls:
                self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
                self._tls.load_cert_chain(str(cfg.tls_cert_file), str(cfg.tls_key_file))
            for kind, address in (("udp", cfg.udp), ("tcp", cfg.tcp), ("tls", cfg.tls)):
                if not address:
                    continue
                sock = _bind(socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM, address)
                self._socks.append(sock)
                if kind == "udp":
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
                else:
                    sock.listen(128)
                self.bound[kind] = sock.getsockname()[:2]
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise AgentError(f"sources.{self.name}: cannot listen on {kind} {address}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None

    def _listen(self, stop: threading.Event, closing: threading.Event) -> list[threading.Thread]:
        threads = []
        for kind, sock in zip(self.bound, self._socks, strict=True):
            if kind == "udp":
                target, args = self._udp, (sock, stop, closing)  # type: ignore[assignment]
            else:
                target, args = self._accept, (sock, self._tls if kind == "tls" else None, stop, closing)  # type: ignore[assignment]
            threads.append(threading.Thread(target=target, args=args, daemon=True,
                                            name=f"syslog-{kind}-{self.name}"))
        for th in threads:
            th.start()
        return threads

    def _udp(self, sock: socket.socket, stop: threading.Event, closing: threading.Event) -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            if closing.is_set():
                self._udp_drain(sock, stop)
                return
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._datagram(data, addr, stop):
                return

    def _datagram(self, data: bytes, addr: Any, stop: threading.Event) -> bool:
        """One datagram as a record (cut at ``max_message_bytes``, marked); False when stopped."""
        limit = self.cfg.max_message_bytes
        length = len(data.rstrip(b"\r\n\x00"))
        truncated = length > limit
        data = data[:limit].rstrip(b"\r\n\x00")
        return not data or self._put(self.record(data, truncated, addr[0] if addr else None,
                                                 length if truncated else None), stop)

    def _udp_drain(self, sock: socket.socket, stop: threading.Event) -> None:
        """At a stop: read what the kernel already queued on the UDP socket, then close it.

        Why: closing the socket makes the kernel discard its receive queue, datagrams the senders
        had long counted sent (a burst, or everything sent while the sinks pushed back). Bounded:
        at most the socket's buffer size in bytes (what the kernel could hold when the stop began,
        so a sender that keeps sending cannot hold the stop), and ``stop`` (the shutdown deadline).
        """
        taken = size = 0
        complete = False
        try:
            sock.setblocking(False)
            budget = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            while size < budget:
                try:
                    data, addr = sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    complete = True
                    break
                taken += 1
                size += len(data)
                if not self._datagram(data, addr, stop):
                    break
        except OSError:
            complete = True  # the socket is gone: nothing more to read
        finally:
            with contextlib.suppress(OSError):
                sock.close()
        if taken or not complete:  # not complete: the deadline or the bound came first
            telemetry.event(20 if complete else 30, "syslog udp: read the socket's receive queue at the stop",
                            source=self.name, datagrams=taken, complete=complete)

    def _accept(self, sock: socket.socket, tls: ssl.SSLContext | None, stop: threading.Event,
                closing: threading.Event) -> None:
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        try:
            while not stop.is_set():
                if closing.is_set():  # the source is stopping: take what waits, then close
                    self._accept_waiting(sock, tls, stop)
                    return
                if not sel.select(0.2):
                    continue
                try:
                    conn, addr = sock.accept()
                except OSError:
                    if stop.is_set():
                        return
                    continue
                self._take(conn, addr, tls, stop)
        finally:
            sel.close()

    def _accept_waiting(self, sock: socket.socket, tls: ssl.SSLContext | None, stop: threading.Event) -> None:
        """Take every connection waiting in the listen backlog, then close the listener."""
        try:
            sock.setblocking(False)
            while True:
                try:
                    conn, addr = sock.accept()
                except OSError:  # BlockingIOError: nothing waits any more
                    return
                self._take(conn, addr, tls, stop)
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _take(self, conn: socket.socket, addr: Any, tls: ssl.SSLContext | None,
              stop: threading.Event) -> None:
        """Read ``conn`` on a thread of its own, or close it when ``max_connections`` are open."""
        with self._lock:
            full = len(self._conns) >= self.cfg.max_connections
            if not full:
                self._conns.add(conn)
        if full:
            self._refused(addr[0])  # (said before the close: a sender that sees it can read the log)
            conn.close()
            return
        threading.Thread(target=self._connection, args=(conn, addr[0], tls, stop), daemon=True,
                         name=f"syslog-conn-{self.name}").start()

    def _refused(self, peer: str) -> None:
        """Count a refused connection; log it once per burst (the first, then at most one line a
        minute with the count since): a flood of connections must not flood the log as well."""
        telemetry.METRICS.connections_refused.labels(self.name).inc()
        self._refused_since += 1
        now = time.monotonic()
        if self._refused_logged_at is None or now - self._refused_logged_at >= _REFUSED_LOG_EVERY_S:
            telemetry.event(30, "syslog connections refused: max_connections reached", source=self.name,
                            refused=self._refused_since, last_peer=peer,
                            max_connections=self.cfg.max_connections)
            self._refused_logged_at = now
            self._refused_since = 0

    def _connection(self, conn: socket.socket, peer: str, tls: ssl.SSLContext | None,
                    stop: threading.Event) -> None:
        framer = SyslogFramer(self.cfg.max_message_bytes)
        raw = conn
        try:
            conn.settimeout(10.0)
            if tls is not None:
                conn = tls.wrap_socket(conn, server_side=True)
            conn.settimeout(0.5)
            idle = 0.0
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    idle += 0.5
                    if idle >= self.cfg.idle_timeout_secs:
                        return
                    continue
                idle = 0.0
                messages = framer.feed(data) if data else framer.close()
                for msg, truncated in messages:
                    if not self._put(self.record(msg, truncated, peer), stop):
                        return
                if not data:
                    return
        except (OSError, ssl.SSLError) as exc:
            telemetry.event(30, "syslog connection ended with an error", source=self.name, peer=peer,
                            error=str(exc))
        finally:
            with self._lock:
                self._conns.discard(raw)
            with contextlib.suppress(OSError):
                conn.close()


def _bind(kind: int, address: str) -> socket.socket:
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock
