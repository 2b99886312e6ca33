"""Webhook channel: POST the notification as JSON (or a Slack-compatible ``{"text"}`` body).

With a ``secret`` each request carries ``X-Logharbor-Signature-256: sha256=<hex>``, the
HMAC-SHA256 of the raw body under the secret (GitHub's scheme, so receivers have code for it);
the body carries ``sent_at`` so a receiver can refuse replays. 5xx, 429 and network errors are
retried by the dispatcher; other 4xx are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import ClassVar, Literal

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .base import Notification, Permanent, Retriable

__all__ = ["SIGNATURE_HEADER", "WebhookChannel", "WebhookConfig", "sign"]

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
        return value


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    """Sends one notification per call."""

    kind: ClassVar[str] = "webhook"
    config_model: ClassVar[type[BaseModel]] = WebhookConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("secret",)

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config

    def body(self, notification: Notification) -> bytes:
        """The request body: the JSON notification, or Slack's ``{"text"}``."""
        if self.config.format == "slack":
            emoji = {"firing": ":red_circle:", "resolved": ":large_green_circle:"}.get(notification.kind, "")
            return orjson.dumps({"text": f"{emoji} {notification.text()}".strip()})
        return orjson.dumps(notification.as_json())

    async def send(self, notification: Notification) -> None:
        """POST once; raise Retriable or Permanent by the answer."""
        body = self.body(notification)
        headers = {"content-type": "application/json", "user-agent": "logharbor-alerts/1",
                   **self.config.headers}
        if self.config.secret:
            headers[SIGNATURE_HEADER] = sign(self.config.secret, body)
        try:
            async with httpx.AsyncClient(timeout=self.config.timeout_s) as client:
                response = await client.post(self.config.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise Retriable(f"webhook {self.config.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise Retriable(f"webhook answered {response.status_code}")
        if response.status_code >= 300:
            raise Permanent(f"webhook answered {response.status_code}: {response.text[:200]}")
