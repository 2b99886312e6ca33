"""Microsoft Teams channel: an Adaptive Card posted to a Teams Workflows webhook ("Post to a
channel when a webhook request is received"; the Office 365 connectors it replaces are retired).

The body is the message Teams documents for it: ``{"type": "message", "attachments": [{
"contentType": "application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard 1.4>}]}``; the
card has the subject as a heading (red while firing, green when resolved) and, per alert, its
group, value, start (and end) and annotations as a FactSet. The URL carries the workflow's
signature, so it is a write-only secret. The workflow answers 202 Accepted.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from logharbor.models import InputModel

from .base import Notification, _iso
from .http import HttpChannel, http_url, post

__all__ = ["CARD_TYPE", "TeamsChannel", "TeamsConfig", "message"]

CARD_TYPE = "application/vnd.microsoft.card.adaptive"


class TeamsConfig(InputModel):
    """The workflow's HTTP POST URL."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., description="the Teams workflow's webhook URL")
    timeout_s: float = Field(10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


def _value(value: float | None) -> str:
    if value is None:
        return "n/a"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def message(notification: Notification) -> dict[str, Any]:
    """The Teams message with its Adaptive Card."""
    color = {"firing": "Attention", "resolved": "Good"}.get(notification.kind, "Default")
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": notification.subject, "weight": "Bolder",
                                   "size": "Medium", "wrap": True, "color": "Accent" if notification.test
                                   else color}]
    for alert in notification.alerts:
        group = ", ".join(f"{k}={v}" for k, v in alert.labels.items() if k != "alertname")
        facts = [{"title": "state", "value": alert.state},
                 {"title": "group", "value": group or "(all records)"},
                 {"title": "value", "value": _value(alert.value)}]
        if alert.starts_ns is not None:
            facts.append({"title": "since", "value": _iso(alert.starts_ns) or ""})
        if alert.ends_ns:
            facts.append({"title": "resolved", "value": _iso(alert.ends_ns) or ""})
        facts += [{"title": k, "value": str(v)} for k, v in alert.annotations.items()]
        body.append({"type": "FactSet", "facts": facts, "separator": True})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body, "msteams": {"width": "Full"}}
    attachment = {"contentType": CARD_TYPE, "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


class TeamsChannel(HttpChannel):
    """Posts one card per notification."""

    kind: ClassVar[str] = "teams"
    config_model: ClassVar[type[BaseModel]] = TeamsConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("url",)

    config: TeamsConfig

    async def send(self, notification: Notification) -> None:
        """POST the card once."""
        await post("teams", self.config.url, orjson.dumps(message(notification)), hosts=self.hosts,
                   timeout_s=self.config.timeout_s)
