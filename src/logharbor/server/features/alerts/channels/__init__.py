"""Channel kinds: one registry line per kind (a new kind is one file and one line here)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .alertmanager import AlertmanagerChannel
from .base import UNDELIVERED, Alert, Blocked, Channel, DeliveryError, Notification, Permanent, Retriable
from .email import EmailChannel
from .hosts import HostNotAllowed, HostPolicy
from .pagerduty import PagerDutyChannel
from .teams import TeamsChannel
from .webhook import WebhookChannel

__all__ = ["KINDS", "UNDELIVERED", "Alert", "Blocked", "Channel", "DeliveryError", "HostNotAllowed",
           "HostPolicy", "Notification", "Permanent", "Retriable", "build_channel", "check_destination",
           "validate_config"]

#: kind → class with ``config_model``, ``secret_fields``, ``destination(config)`` and ``send``
KINDS: dict[str, Any] = {
    EmailChannel.kind: EmailChannel,
    WebhookChannel.kind: WebhookChannel,
    PagerDutyChannel.kind: PagerDutyChannel,
    AlertmanagerChannel.kind: AlertmanagerChannel,
    TeamsChannel.kind: TeamsChannel,
}


def validate_config(kind: str, config: dict[str, Any]) -> BaseModel:
    """The validated config of ``kind`` (ValueError for an unknown kind, ValidationError for bad keys)."""
    cls = KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown channel kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    return cls.config_model.model_validate(config)


def build_channel(kind: str, config: dict[str, Any], hosts: HostPolicy | None = None) -> Channel:
    """A ready channel from a stored config, confined to ``hosts`` (default: the default lists)."""
    return KINDS[kind](validate_config(kind, config), hosts or HostPolicy())  # type: ignore[no-any-return]


def check_destination(hosts: HostPolicy, kind: str, config: BaseModel) -> None:
    """Raise HostNotAllowed when a channel being saved aims at a host ``hosts`` refuses."""
    host, port = KINDS[kind].destination(config)
    hosts.check_saved(host, port)
