"""One JSON POST to a receiver, as every HTTP channel kind sends it (webhook, PagerDuty,
Alertmanager, Teams).

The host rules are checked after DNS resolution and the connection goes to the address they
checked, with the URL's name kept for ``Host`` and TLS (SNI and certificate); a redirect is never
followed (it could lead past the host rules). 5xx, 408, 429 and network errors are
:class:`Retriable`, any other status from 300 up :class:`Permanent`; either way the exception
says only :data:`UNDELIVERED` and the receiver's answer goes to the server log.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from .base import UNDELIVERED, Blocked, Permanent, Retriable
from .hosts import HostNotAllowed, HostPolicy, Unresolvable

__all__ = ["HttpChannel", "destination_of", "http_url", "post"]

log = logging.getLogger("logharbor.alerts")


def destination_of(url: str) -> tuple[str, int]:
    """(host, port) a URL connects to."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


async def post(what: str, url: str, body: bytes, *, hosts: HostPolicy, timeout_s: float,
               headers: dict[str, str] | None = None) -> int:
    """POST ``body`` once to ``url`` (``what`` names the kind in the log); the status when it
    is under 300, else raise Retriable/Permanent/Blocked."""
    host, port = destination_of(url)
    try:
        addresses = await asyncio.to_thread(hosts.check, host, port)
    except Unresolvable as exc:
        log.warning("%s to %s:%d not delivered: %s", what, host, port, exc)
        raise Retriable(UNDELIVERED) from None
    except HostNotAllowed as exc:
        raise Blocked(str(exc)) from None
    parts = urlsplit(url)
    pinned = addresses[0] if ":" not in addresses[0] else f"[{addresses[0]}]"
    target = urlunsplit((parts.scheme, f"{pinned}:{port}", parts.path, parts.query, ""))
    name = parts.hostname or ""
    sent = {"content-type": "application/json", "user-agent": "logharbor-alerts/1", **(headers or {})}
    if not any(k.lower() == "host" for k in sent):  # the URL's name, not the pinned address
        sent["host"] = name if parts.port is None else f"{name}:{parts.port}"
    if parts.username is not None and not any(k.lower() == "authorization" for k in sent):
        # credentials in the URL: basic auth, as a client given the URL itself would send them
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        sent["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    extensions = {"sni_hostname": name} if parts.scheme == "https" else {}
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
            response = await client.post(target, content=body, headers=sent, extensions=extensions)
    except httpx.HTTPError as exc:
        log.warning("%s to %s:%d not delivered: %s", what, name, port, type(exc).__name__)
        raise Retriable(UNDELIVERED) from exc
    if response.status_code >= 300:
        log.warning("%s to %s:%d not delivered: it answered HTTP %d", what, name, port, response.status_code)
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise Retriable(UNDELIVERED)
    if response.status_code >= 300:
        raise Permanent(UNDELIVERED)
    return response.status_code


def http_url(value: str) -> str:
    """``value`` when it is an http(s) URL with a host (a channel's ``url`` validator)."""
    if not value.startswith(("http://", "https://")) or not destination_of(value)[0]:
        raise ValueError("url must be an http(s) URL with a host")
    return value


class HttpChannel:
    """What every channel that POSTs to a ``url`` shares: its config, the host rules it connects
    under, and the (host, port) the API checks against those rules when the channel is saved."""

    def __init__(self, config: Any, hosts: HostPolicy | None = None) -> None:
        self.config = config
        self.hosts = hosts or HostPolicy()

    @staticmethod
    def destination(config: Any) -> tuple[str, int]:
        """(host, port) the channel connects to."""
        return destination_of(config.url)
