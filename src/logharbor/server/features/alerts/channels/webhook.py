"""Webhook channel: POST the notification as JSON (or a Slack-compatible ``{"text"}`` body).

With a ``secret`` each request carries ``X-Logharbor-Signature-256: sha256=<hex>``, the
HMAC-SHA256 of the raw body under the secret (GitHub's scheme, so receivers have code for it);
the body carries ``sent_at`` so a receiver can refuse replays. 5xx, 429 and network errors are
retried by the dispatcher; other 4xx are permanent, and so is a redirect (never followed: it
could lead past the host rules). The connection goes to the addresses the host rules checked
(``hosts.py``), with the name kept for ``Host`` and TLS (SNI and certificate).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import ClassVar, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from logharbor.models import InputModel

from .base import Notification
from .http import HttpChannel, post

__all__ = ["SIGNATURE_HEADER", "WebhookChannel", "WebhookConfig", "sign"]

SIGNATURE_HEADER = "X-Logharbor-Signature-256"


class WebhookConfig(InputModel):
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


class WebhookChannel(HttpChannel):
    """Sends one notification per call."""

    kind: ClassVar[str] = "webhook"
    config_model: ClassVar[type[BaseModel]] = WebhookConfig
    #: the url (Slack-style URLs carry their token), headers (Authorization, …) and the HMAC key
    secret_fields: ClassVar[tuple[str, ...]] = ("url", "headers", "secret")

    config: WebhookConfig

    def body(self, notification: Notification) -> bytes:
        """The request body: the JSON notification, or Slack's ``{"text"}``."""
        if self.config.format == "slack":
            emoji = {"firing": ":red_circle:", "resolved": ":large_green_circle:"}.get(notification.kind, "")
            return orjson.dumps({"text": f"{emoji} {notification.text()}".strip()})
        return orjson.dumps(notification.as_json())

    async def send(self, notification: Notification) -> None:
        """POST once; raise Retriable or Permanent by the answer (saying only UNDELIVERED)."""
        body = self.body(notification)
        headers = dict(self.config.headers)
        if self.config.secret:
            headers[SIGNATURE_HEADER] = sign(self.config.secret, body)
        await post("webhook", self.config.url, body, hosts=self.hosts, timeout_s=self.config.timeout_s,
                   headers=headers)
