"""PagerDuty channel: the Events API v2 (``POST https://events.pagerduty.com/v2/enqueue``).

Each alert of a notification is one event: ``trigger`` while it fires, ``resolve`` when it is
resolved, under one ``dedup_key`` per alert group (the rule and the alert's labels, hashed), so
PagerDuty keeps one incident per group: a repeated trigger adds to it, the resolve closes it.
A test send triggers and then resolves its own key, so it leaves no incident open. The
``severity`` of an event is the alert's ``severity`` label when it is one PagerDuty knows
(critical, error, warning, info), else the channel's. PagerDuty answers 202; a 400 (a bad
routing key, a body it refuses) is permanent, 429 and 5xx are retried (``http.py``).
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from logharbor.models import InputModel

from .base import Alert, Notification, _iso
from .http import HttpChannel, http_url, post

__all__ = ["EVENTS_URL", "PagerDutyChannel", "PagerDutyConfig", "dedup_key", "events"]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_SEVERITIES = ("critical", "error", "warning", "info")


class PagerDutyConfig(InputModel):
    """An Events API v2 integration (a service's "Events API V2" integration key)."""

    model_config = ConfigDict(extra="forbid")

    routing_key: str = Field(..., min_length=1, max_length=64, description="the integration key")
    url: str = Field(EVENTS_URL, description="the Events API v2 endpoint (another for EU or a proxy)")
    severity: Literal["critical", "error", "warning", "info"] = Field(
        "error", description="unless the alert's severity label is one of these")
    source: str = Field("logharbor", min_length=1, description="payload.source: where the alert comes from")
    timeout_s: float = Field(10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


def dedup_key(rule: str, labels: dict[str, str]) -> str:
    """One key per alert group: the same rule and labels give the same key, run after run."""
    digest = hashlib.sha256(orjson.dumps([rule, sorted(labels.items())])).hexdigest()[:32]
    return f"logharbor-{digest}"


def _summary(notification: Notification, alert: Alert) -> str:
    group = ", ".join(f"{k}={v}" for k, v in alert.labels.items() if k != "alertname")
    head = f"[TEST] {notification.rule}" if notification.test else notification.rule
    text = alert.annotations.get("summary") or (f"{head}: {group}" if group else head)
    if notification.test and not text.startswith("[TEST]"):
        text = f"[TEST] {text}"
    return text[:1024]  # the API's limit for payload.summary


def events(config: PagerDutyConfig, notification: Notification) -> list[dict[str, Any]]:
    """The Events API v2 bodies of one notification, in the order they are sent."""
    out: list[dict[str, Any]] = []
    for alert in notification.alerts:
        key = dedup_key(notification.rule, {**alert.labels, **({"test": "1"} if notification.test else {})})
        if alert.state == "resolved" and not notification.test:
            out.append({"routing_key": config.routing_key, "event_action": "resolve", "dedup_key": key})
            continue
        label = alert.labels.get("severity", "").lower()
        details: dict[str, Any] = {"value": alert.value, "labels": alert.labels, **alert.annotations}
        if alert.details:
            details["details"] = alert.details
        payload: dict[str, Any] = {
            "summary": _summary(notification, alert),
            "source": config.source,
            "severity": label if label in _SEVERITIES else config.severity,
            "component": alert.labels.get("service") or None,
            "group": alert.labels.get("alertname") or notification.rule,
            "class": "logharbor-alert",
            "custom_details": details,
        }
        if alert.starts_ns is not None:
            payload["timestamp"] = _iso(alert.starts_ns)
        payload = {k: v for k, v in payload.items() if v is not None}
        out.append({"routing_key": config.routing_key, "event_action": "trigger", "dedup_key": key,
                    "payload": payload, "client": "logharbor"})
        if notification.test:  # a test leaves nothing open
            out.append({"routing_key": config.routing_key, "event_action": "resolve", "dedup_key": key})
    return out


class PagerDutyChannel(HttpChannel):
    """Sends each alert of a notification as one event."""

    kind: ClassVar[str] = "pagerduty"
    config_model: ClassVar[type[BaseModel]] = PagerDutyConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("routing_key",)

    config: PagerDutyConfig

    async def send(self, notification: Notification) -> None:
        """POST every event once, in order; a failure stops there and the dispatcher retries the
        whole notification (a trigger or resolve sent twice under one key changes nothing)."""
        for event in events(self.config, notification):
            await post("pagerduty", self.config.url, orjson.dumps(event), hosts=self.hosts,
                       timeout_s=self.config.timeout_s)
