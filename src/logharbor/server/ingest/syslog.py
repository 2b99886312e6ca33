"""Syslog listeners: RFC 5424 and RFC 3164 over UDP, TCP and TLS (RFC 5425/6587).

TCP and TLS streams are framed either by octet counting (``LEN SP MSG``, RFC 6587 §3.4.1, what
rsyslog sends with ``TCP_Framing="octet-counted"``) or by a trailing LF (§3.4.2, the default of
most senders; a NUL ends a message too, as Python's ``SysLogHandler`` sends); the framing is
told apart per message, as rsyslog's own ``imtcp`` does. A message longer than
``max_line_bytes`` is cut there and marked ``truncated``. Each read of a stream is one
WAL write, awaited before the next read, so a full WAL slows the sender instead of losing lines.
UDP datagrams are gathered for a few milliseconds and written together; UDP cannot push back, so
when the WAL is full they are dropped and counted (``logharbor_records_rejected``), as every UDP
receiver must. A stop reads what the kernel already queued on the UDP socket before closing it
(bounded by the socket's buffer size and the stop's deadline): closing it would discard those
datagrams, which the kernel had accepted and the senders had long counted sent.

Parsing is :func:`logharbor.formats.syslog.parse_syslog`: PRI gives ``level`` and ``facility``,
HOSTNAME gives ``host`` (the sender's address when the message has none), APP-NAME/TAG gives
``service``. A line that is not syslog is still kept, whole, with its ``parse_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter

from logharbor.formats.syslog import parse_syslog
from logharbor.formats.syslog_framing import SyslogFramer
from logharbor.record import RecordError, normalize
from logharbor.server.connections import ConnectionCap
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.ingest.base import Ingestor, RecordLimits
from logharbor.server.ingest.listener import (
    AllowList,
    ChunkStream,
    StreamListener,
    parse_address,
    server_tls_context,
    write_with_backpressure,
)

__all__ = ["SyslogFramer", "SyslogIngest", "SyslogZones", "decode_syslog", "decode_syslog_groups"]

log = logging.getLogger("logharbor.server.ingest.syslog")
_OFFLOAD_BYTES = 64 * 1024
_UDP_BATCH = 2000
_UDP_WAIT_S = 0.02
_OFFLOAD_DATAGRAMS = 500
_UDP_RCVBUF = 8 * 1024 * 1024


@dataclass(frozen=True)
class SyslogZones:
    """The zone RFC 3164 times are read in (they carry none): ``default``, or the zone of the first
    of ``networks`` (``(CIDR, zone)`` pairs) holding the sender's address. Plain data, so it goes
    to the ingest worker processes with the messages."""

    default: str = "UTC"
    networks: tuple[tuple[str, str], ...] = ()

    def for_peer(self, peer: str | None) -> str:
        if not self.networks or not peer:
            return self.default
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return self.default
        for network, zone in self.networks:
            if address in _network(network):
                return zone
        return self.default

    @classmethod
    def parse(cls, default: str, entries: list[str]) -> SyslogZones:
        """``--syslog-timezone`` and its ``NETWORK=ZONE`` overrides; a bad entry raises naming it."""
        pairs = []
        for entry in entries:
            network, sep, zone = entry.partition("=")
            try:
                if not sep:
                    raise ValueError
                _network(network.strip())
            except ValueError:
                raise ValueError(f"syslog_timezones: {entry!r} is not NETWORK=ZONE "
                                 "(e.g. 10.1.0.0/16=Asia/Kolkata)") from None
            pairs.append((network.strip(), check_zone(zone.strip(), "syslog_timezones")))
        return cls(check_zone(default, "syslog_timezone"), tuple(pairs))


@functools.lru_cache(maxsize=256)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def check_zone(name: str, option: str) -> str:
    """An IANA zone name, or ValueError naming the option."""
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise ValueError(f"{option}: unknown time zone {name!r} (an IANA name such as "
                         "Europe/Berlin)") from None
    return name


def decode_syslog(messages: list[tuple[bytes, bool]], peer: str | None, received_ns: int,
                  limits: RecordLimits, timezone: str | SyslogZones = "UTC") -> tuple[bytes, int, int]:
    """Store rows (joined), accepted and rejected counts for framed messages from one peer."""
    rows: list[bytes] = []
    rejected = 0
    defaults = {"host": peer} if peer else None
    zone = timezone.for_peer(peer) if isinstance(timezone, SyslogZones) else timezone
    for data, truncated in messages:
        try:
            raw = parse_syslog(data.decode("utf-8", "replace"), zone, received_ns)
        except Exception as exc:  # one message's parser failure never costs the others beside it
            rejected += 1
            log.warning("syslog message from %s could not be parsed: %s: %s", peer, type(exc).__name__, exc)
            continue
        if truncated:
            raw["truncated"] = True
        try:
            problem = limits.check(raw, len(data))
            if problem is not None:
                raise RecordError(problem)
            rows.append(encode_row(normalize(raw, received_ns=received_ns, defaults=defaults)))
        except (RecordError, TypeError, orjson.JSONEncodeError) as exc:
            rejected += 1
            log.debug("syslog message from %s rejected: %s", peer, exc)
    return b"\n".join(rows), len(rows), rejected


def decode_syslog_groups(groups: list[tuple[str | None, list[tuple[bytes, bool]]]], received_ns: int,
                         limits: RecordLimits, timezone: str | SyslogZones = "UTC") -> tuple[bytes, int, int]:
    """:func:`decode_syslog` for the datagrams of several peers at once (one WAL write)."""
    payloads: list[bytes] = []
    accepted = rejected = 0
    for peer, messages in groups:
        payload, ok, bad = decode_syslog(messages, peer, received_ns, limits, timezone)
        if payload:
            payloads.append(payload)
        accepted += ok
        rejected += bad
    return b"\n".join(payloads), accepted, rejected


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SyslogIngest) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner.datagram(data, addr[0] if addr else None)


class SyslogIngest:
    """The syslog listeners; off unless an address is given for UDP, TCP or TLS."""

    name = "syslog"

    def __init__(self, *, udp: str | None = None, tcp: str | None = None, tls: str | None = None,
                 tls_cert: Path | None = None, tls_key: Path | None = None,
                 allow: list[str] | None = None, limits: RecordLimits | None = None,
                 timezone: str | SyslogZones = "UTC", max_connections: int = 1024) -> None:
        self.addresses = {"udp": udp, "tcp": tcp, "tls": tls}
        self.max_connections = max_connections  # per TCP/TLS listener (server/connections.py)
        #: counts a refused connection by listener name (the server's metrics; set before start)
        self.on_refused: Callable[[str], None] | None = None
        for text in self.addresses.values():
            if text:
                parse_address(text)  # fail at start, naming the bad address
        if tls and not (tls_cert and tls_key):
            raise ValueError("the syslog TLS listener needs a certificate and key (--listener-tls-cert/key)")
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.allow = AllowList(allow if allow is not None else ["127.0.0.0/8", "::1/128"])
        self.limits = limits or RecordLimits()
        self.timezone = timezone
        self.ingestor: Ingestor | None = None
        self.servers: list[StreamListener] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[str | None, list[tuple[bytes, bool]]] = {}
        self.pending_count = 0
        self.flusher: asyncio.Task[None] | None = None
        self.dropped = 0
        self.bound: dict[str, tuple[str, int]] = {}

    def router(self) -> APIRouter:
        return APIRouter()  # a listener, not an HTTP route

    @property
    def enabled(self) -> bool:
        return any(self.addresses.values())

    async def start(self, ingestor: Ingestor) -> None:
        """Open the configured sockets on the running event loop."""
        self.ingestor = ingestor
        loop = asyncio.get_running_loop()
        if self.addresses["udp"]:
            host, port = parse_address(self.addresses["udp"])
            transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self),
                                                               local_addr=(host, port))
            self.transport = transport
            sock = transport.get_extra_info("socket")
            if sock is not None:  # room for bursts while the loop is busy (the kernel caps it)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_RCVBUF)
            self.bound["udp"] = transport.get_extra_info("sockname")[:2]
        for kind in ("tcp", "tls"):
            if self.addresses[kind]:
                host, port = parse_address(self.addresses[kind])
                ctx = server_tls_context(self.tls_cert, self.tls_key) if kind == "tls" else None  # type: ignore[arg-type]
                cap = ConnectionCap(f"syslog {kind}", self.max_connections, "listener_max_connections",
                                    self.on_refused)
                server = StreamListener(self._connection, f"syslog {kind}", ctx, cap)
                self.bound[kind] = await server.start(host, port)
                self.servers.append(server)
        if self.bound:
            where = ", ".join(f"{k} {h}:{p}" for k, (h, p) in self.bound.items())
            log.warning("syslog listening on %s", where)

    async def stop(self, deadline: float | None = None) -> None:
        """Stop listening, write what every TCP/TLS peer had already sent (the listen backlog
        included; see :class:`StreamListener`) until ``deadline`` (``time.monotonic()``; by default
        5 s from now), and write what UDP had gathered."""
        if deadline is None:
            deadline = time.monotonic() + 5.0
        await asyncio.gather(*(server.stop(deadline) for server in self.servers))
        if self.transport is not None:
            await self._drain_udp(deadline)
            self.transport.close()
        if self.flusher is not None and not self.flusher.done():
            # let it finish: cancelled inside its WAL write, the datagrams it had taken were lost
            await asyncio.wait([self.flusher], timeout=max(0.0, deadline - time.monotonic()))
            if not self.flusher.done():
                log.warning("syslog udp: the last write did not finish by the shutdown deadline; "
                            "its datagrams are lost")
                self.flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.flusher
        await self._flush_udp()

    # UDP -------------------------------------------------------------------------------------

    def datagram(self, data: bytes, peer: str | None) -> None:
        if not self._gather(data, peer):
            return
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.get_running_loop().create_task(self._flush_later())

    def _gather(self, data: bytes, peer: str | None) -> bool:
        """Add one datagram to the next write; False when its sender is not allowed."""
        if not self.allow.allows(peer):
            self.dropped += 1
            return False
        truncated = len(data) > self.limits.max_line_bytes
        self.pending.setdefault(peer, []).append((data[: self.limits.max_line_bytes].rstrip(b"\r\n\x00"),
                                                  truncated))
        self.pending_count += 1
        return True

    async def _drain_udp(self, deadline: float) -> int:
        """Read and write what waits in the UDP socket's receive queue; how many datagrams.

        Why: the event loop reads a few dozen datagrams per turn, and a stop that closes the
        socket makes the kernel discard the rest (after a pause, a burst, a busy loop: thousands).
        Bounded: at most the socket's buffer size in bytes (what the kernel could hold when the
        stop began, so a sender that keeps sending cannot hold the stop) and until ``deadline``.
        The reads are on a duplicate of the socket's descriptor (uvloop's transport hands out no
        socket that can be read from); the transport itself no longer reads once it is closed.
        """
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        if sock is None or sock.fileno() < 0:
            return 0
        taken = size = 0
        with socket.socket(fileno=os.dup(sock.fileno())) as dup:
            dup.setblocking(False)
            budget = dup.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            empty = False
            while not empty and size < budget and time.monotonic() < deadline:
                for _ in range(_UDP_BATCH):
                    try:
                        data, addr = dup.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        empty = True
                        break
                    except OSError as exc:
                        log.warning("syslog udp: reading the receive queue at the stop failed: %s", exc)
                        empty = True
                        break
                    taken += 1
                    size += len(data)
                    self._gather(data, addr[0] if addr else None)
                await self._flush_udp()
        if taken:
            log.warning("syslog udp: stopping: wrote %d datagram(s) that were waiting in the socket's "
                        "receive queue%s", taken,
                        "" if empty else "; stopped reading there (the stop's bound), what senders "
                        "sent after it is not read")
        return taken

    async def _flush_later(self) -> None:
        while True:
            for _ in range(5):
                if self.pending_count >= _UDP_BATCH:
                    break
                await asyncio.sleep(_UDP_WAIT_S / 5)
            await self._flush_udp()
            if not self.pending_count:  # what arrived during the write goes in the next one
                return

    async def _flush_udp(self) -> None:
        pending, self.pending, self.pending_count = self.pending, {}, 0
        if not pending or self.ingestor is None:
            return
        received = time.time_ns()
        groups = list(pending.items())
        if sum(len(messages) for _, messages in groups) > _OFFLOAD_DATAGRAMS:
            payload, accepted, rejected = await self.ingestor.offload(
                decode_syslog_groups, groups, received, self.limits, self.timezone)
        else:
            payload, accepted, rejected = decode_syslog_groups(groups, received, self.limits,
                                                               self.timezone)
        try:
            await self.ingestor.write_payload(payload)
        except Exception as exc:  # UDP cannot push back: drop, count as rejected, keep serving
            self.dropped += accepted
            self.ingestor.count(self.name, 0, accepted + rejected)
            log.warning("syslog udp: %d messages dropped: %s", accepted, exc)
            return
        self.ingestor.count(self.name, accepted, rejected)

    # TCP / TLS -------------------------------------------------------------------------------

    async def _connection(self, stream: ChunkStream) -> None:
        peer = stream.peer
        if not self.allow.allows(peer):
            log.warning("syslog: connection from %s refused (not in the allow-list)", peer)
            return
        framer = SyslogFramer(self.limits.max_line_bytes)
        while True:
            data = await stream.read()
            messages = framer.feed(data) if data else framer.close()
            if messages:
                await self._write(messages, peer, sum(len(m) for m, _ in messages))
            if not data:
                return

    async def _write(self, messages: list[tuple[bytes, bool]], peer: str | None, size: int) -> None:
        assert self.ingestor is not None
        received = time.time_ns()
        if size > _OFFLOAD_BYTES:
            payload, accepted, rejected = await self.ingestor.offload(
                decode_syslog, messages, peer, received, self.limits, self.timezone)
        else:
            payload, accepted, rejected = decode_syslog(messages, peer, received, self.limits,
                                                        self.timezone)
        await write_with_backpressure(self.ingestor, payload, what=f"syslog from {peer}")
        self.ingestor.count(self.name, accepted, rejected)
