"""Prometheus Alertmanager channel: ``POST <url>/api/v2/alerts``, as Prometheus and Loki's ruler
send alerts, so Alertmanager's routing, grouping, inhibition and silences apply to logharbor's
alerts as to every other.

Each alert of a notification is one ``postableAlert``: labels are ``alertname`` (the rule), the
rule's labels and the alert's (names outside Prometheus' ``[a-zA-Z_][a-zA-Z0-9_]*`` written with
``_``, as Prometheus does, since an Alertmanager before 0.27 refuses the whole request
otherwise), the annotations as they are, ``startsAt``, and for a resolved alert ``endsAt`` (its
end, in the past: Alertmanager resolves it). A firing alert has no ``endsAt``, so Alertmanager
resolves it by itself after its ``resolve_timeout`` (5 minutes by default) unless it is sent
again: give rules that notify Alertmanager a ``repeat_interval`` under that (Loki's ruler resends
every minute). A test send is an alert labelled ``logharbor_test="true"`` that ends a minute
later.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from logharbor.models import InputModel

from .base import Notification, _iso
from .http import HttpChannel, http_url, post

__all__ = ["AlertmanagerChannel", "AlertmanagerConfig", "postable_alerts"]

_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_]")
_MINUTE_NS = 60 * 1_000_000_000


class AlertmanagerConfig(InputModel):
    """Where Alertmanager listens (its base URL; the path /api/v2/alerts is added)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., description="Alertmanager's base URL, e.g. http://alertmanager:9093")
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. Authorization for a proxy")
    generator_url: str | None = Field(None, description="generatorURL of every alert (a link back)")
    timeout_s: float = Field(10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value).rstrip("/")


def _label_name(name: str) -> str:
    cleaned = _NOT_IN_NAME.sub("_", name) or "_"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def postable_alerts(config: AlertmanagerConfig, notification: Notification) -> list[dict[str, Any]]:
    """The body: one postableAlert per alert of the notification."""
    out = []
    for alert in notification.alerts:
        labels = {_label_name(k): str(v) for k, v in {**notification.rule_labels, **alert.labels}.items()}
        labels["alertname"] = notification.rule
        if notification.test:
            labels["logharbor_test"] = "true"
        item: dict[str, Any] = {"labels": labels,
                                "annotations": {_label_name(k): str(v) for k, v in alert.annotations.items()}}
        if alert.starts_ns is not None:
            item["startsAt"] = _iso(alert.starts_ns)
        if notification.test:
            item["endsAt"] = _iso(notification.sent_ns + _MINUTE_NS)
        elif alert.state == "resolved":
            item["endsAt"] = _iso(alert.ends_ns or notification.sent_ns)
        if config.generator_url:
            item["generatorURL"] = config.generator_url
        out.append(item)
    return out


class AlertmanagerChannel(HttpChannel):
    """Posts the alerts of a notification in one request."""

    kind: ClassVar[str] = "alertmanager"
    config_model: ClassVar[type[BaseModel]] = AlertmanagerConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("url", "headers")

    config: AlertmanagerConfig

    async def send(self, notification: Notification) -> None:
        """POST the alerts once (Alertmanager answers 200)."""
        body = orjson.dumps(postable_alerts(self.config, notification))
        await post("alertmanager", f"{self.config.url}/api/v2/alerts", body, hosts=self.hosts,
                   timeout_s=self.config.timeout_s, headers=dict(self.config.headers))
