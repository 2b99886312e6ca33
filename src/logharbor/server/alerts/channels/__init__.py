"""Channel kinds: one registry line per kind (a new kind is one file and one line here)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .base import Alert, Channel, DeliveryError, Notification, Permanent, Retriable
from .email import EmailChannel
from .webhook import WebhookChannel

__all__ = ["KINDS", "Alert", "Channel", "DeliveryError", "Notification", "Permanent", "Retriable",
           "build_channel", "validate_config"]

#: kind → class with ``config_model``, ``secret_fields`` and ``send``
KINDS: dict[str, Any] = {
    EmailChannel.kind: EmailChannel,
    WebhookChannel.kind: WebhookChannel,
}


def validate_config(kind: str, config: dict[str, Any]) -> BaseModel:
    """The validated config of ``kind`` (ValueError for an unknown kind, ValidationError for bad keys)."""
    cls = KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown channel kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    return cls.config_model.model_validate(config)


def build_channel(kind: str, config: dict[str, Any]) -> Channel:
    """A ready channel from a stored config."""
    return KINDS[kind](validate_config(kind, config))  # type: ignore[no-any-return]
