"""What the socket listeners (syslog, Fluent forward) share: addresses, the network allow-list,
TLS, and writing rows to the WAL with backpressure instead of loss.

These protocols have no HTTP headers to carry an API key, so a listener admits a peer by its
network (an allow-list of CIDRs, loopback only unless told otherwise) and, for forward, by the
shared-key handshake; TLS protects both on the wire.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import Iterable
from pathlib import Path

from logharbor.server.errors import ApiError
from logharbor.server.ingest.base import Ingestor

__all__ = ["AllowList", "parse_address", "server_tls_context", "write_with_backpressure"]

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
    return ctx


async def write_with_backpressure(ingestor: Ingestor, payload: bytes, *, what: str) -> None:
    """Write rows, waiting while the WAL is full: the sender is held back, nothing is lost.

    A stream listener calls this before it reads more from the socket, so a full WAL fills the
    TCP window and the shipper slows down, as it would against a slow Elasticsearch.
    """
    delay = 0.05
    while True:
        try:
            await ingestor.write_payload(payload)
            return
        except ApiError as exc:
            if exc.status != 429:
                raise
            log.warning("%s: the WAL is full, holding the sender back for %.2f s", what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, float(ingestor.retry_after_s))
