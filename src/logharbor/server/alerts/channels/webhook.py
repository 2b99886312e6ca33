"""Webhook channel: POST the notification as JSON (or a Slack-compatible ``{"text"}`` body).

With a ``secret`` each request carries ``X-Logharbor-Signature-256: sha256=<hex>``, the
HMAC-SHA256 of the raw body under the secret (GitHub's scheme, so receivers have code for it);
the body carries ``sent_at`` so a receiver can refuse replays. 5xx, 429 and network errors are
retried by the dispatcher; other 4xx are permanent, and so is a redirect (never followed: it
could lead past the host rules). The connection goes to the addresses the host rules checked
(``hosts.py``), with the name kept for ``Host`` and TLS (SNI and certificate).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from typing import ClassVar, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .base import UNDELIVERED, Blocked, Notification, Permanent, Retriable
from .hosts import HostNotAllowed, HostPolicy, Unresolvable

__all__ = ["SIGNATURE_HEADER", "WebhookChannel", "WebhookConfig", "sign"]

log = logging.getLogger("logharbor.alerts")

SIGNATURE_HEADER = "X-Logharbor-Signature-256"


class WebhookConfig(BaseModel):
    """Where and how to POST."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., description="http(s) URL of the receiver")
    format: Literal["json", "slack"] = Field("json", description="slack: {'text': …} for incoming webhooks")
    secret: str | None = Field(None, min_length=8, description="HMAC-SHA256 key for the signature header")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number in range
        except ValueError:
            raise ValueError("url: the port is not a number from 1 to 65535") from None
        if not parts.hostname:
            raise ValueError("url: no host")
        return value


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    """Sends one notification per call."""

    kind: ClassVar[str] = "webhook"
    config_model: ClassVar[type[BaseModel]] = WebhookConfig
    #: the url (Slack-style URLs carry their token), headers (Authorization, …) and the HMAC key
    secret_fields: ClassVar[tuple[str, ...]] = ("url", "headers", "secret")

    def __init__(self, config: WebhookConfig, hosts: HostPolicy | None = None) -> None:
        self.config = config
        self.hosts = hosts or HostPolicy()

    @staticmethod
    def destination(config: BaseModel) -> tuple[str, int]:
        """(host, port) the channel connects to."""
        parts = urlsplit(config.url)  # type: ignore[attr-defined]
        return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)

    def body(self, notification: Notification) -> bytes:
        """The request body: the JSON notification, or Slack's ``{"text"}``."""
        if self.config.format == "slack":
            emoji = {"firing": ":red_circle:", "resolved": ":large_green_circle:"}.get(notification.kind, "")
            return orjson.dumps({"text": f"{emoji} {notification.text()}".strip()})
        return orjson.dumps(notification.as_json())

    async def send(self, notification: Notification) -> None:
        """POST once; raise Retriable or Permanent by the answer (saying only UNDELIVERED)."""
        body = self.body(notification)
        host, port = self.destination(self.config)
        try:
            addresses = await asyncio.to_thread(self.hosts.check, host, port)
        except Unresolvable as exc:
            log.warning("webhook to %s:%d not delivered: %s", host, port, exc)
            raise Retriable(UNDELIVERED) from None
        except HostNotAllowed as exc:
            raise Blocked(str(exc)) from None
        parts = urlsplit(self.config.url)
        pinned = addresses[0] if ":" not in addresses[0] else f"[{addresses[0]}]"
        url = urlunsplit((parts.scheme, f"{pinned}:{port}", parts.path, parts.query, ""))
        name = parts.hostname or ""
        headers = {"content-type": "application/json", "user-agent": "logharbor-alerts/1",
                   **self.config.headers}
        if not any(k.lower() == "host" for k in headers):  # the URL's name, not the pinned address
            headers["host"] = name if parts.port is None else f"{name}:{parts.port}"
        if parts.username is not None and not any(k.lower() == "authorization" for k in headers):
            # credentials in the URL: basic auth, as a client given the URL itself would send them
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        if self.config.secret:
            headers[SIGNATURE_HEADER] = sign(self.config.secret, body)
        extensions = {"sni_hostname": name} if parts.scheme == "https" else {}
        try:
            async with httpx.AsyncClient(timeout=self.config.timeout_s, follow_redirects=False,
                                         trust_env=False) as client:
                response = await client.post(url, content=body, headers=headers, extensions=extensions)
        except httpx.HTTPError as exc:
            log.warning("webhook to %s:%d not delivered: %s", name, port, type(exc).__name__)
            raise Retriable(UNDELIVERED) from exc
        if response.status_code >= 300:
            log.warning("webhook to %s:%d not delivered: it answered HTTP %d", name, port,
                        response.status_code)
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise Retriable(UNDELIVERED)
        if response.status_code >= 300:
            raise Permanent(UNDELIVERED)
