"""The ``Channel`` protocol (DESIGN §1: one interface per pluggable kind) and what crosses it.

A channel turns one :class:`Notification` (one rule, one kind — firing or resolved — and the
alerts of one evaluation, grouped) into a message somewhere. It raises :class:`Retriable` when
trying again may work (connection refused, 5xx, 429) and :class:`Permanent` when it will not
(bad address, 4xx); the dispatcher owns retries, backoff and bookkeeping, so a channel stays a
single attempt.

What a failure *says* is one sentence, :data:`UNDELIVERED`, whatever happened after the host
check: the receiver's body, banner or status never reaches the API or the outbox (they go to the
server log), and a refused port reads exactly like an open one that speaks something else, so a
channel cannot be used to map the private network. :class:`Blocked` (the host rules refused the
destination) is the one other answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

__all__ = ["UNDELIVERED", "Alert", "Blocked", "Channel", "DeliveryError", "Notification", "Permanent",
           "Retriable"]

#: the whole of what the API and the outbox say about a failed delivery
UNDELIVERED = ("not delivered: the receiver could not be reached, did not speak the protocol, or did "
               "not accept the message (the server log has the details)")


class DeliveryError(Exception):
    """A notification could not be delivered; the message is safe to store and show."""


class Retriable(DeliveryError):
    """Trying again later may work."""


class Permanent(DeliveryError):
    """Trying again will not work until someone changes the channel or the receiver."""


class Blocked(Permanent):
    """The destination is outside ``--channel-allow-hosts`` / inside ``--channel-deny-hosts``."""


@dataclass(frozen=True)
class Alert:
    """One alert of a notification: its labels, filled-in annotations, value and times."""

    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    state: str  # firing | resolved
    starts_ns: int | None
    ends_ns: int | None = None
    #: what else the condition found: an anomaly's median, mad, k, threshold and baseline;
    #: a new pattern's template, sample, count and first_seen
    details: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """The alert as the webhook body carries it (times as RFC 3339)."""
        out = {"labels": self.labels, "annotations": self.annotations, "value": self.value,
               "state": self.state, "starts_at": _iso(self.starts_ns), "ends_at": _iso(self.ends_ns)}
        if self.details is not None:
            out["details"] = self.details
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alert:
        """An alert from its outbox row."""
        return cls(data["labels"], data["annotations"], data.get("value"), data["state"],
                   data.get("starts_ns"), data.get("ends_ns"), data.get("details"))


@dataclass(frozen=True)
class Notification:
    """What one channel is asked to deliver: every alert of one rule that changed in one slot."""

    rule: str
    kind: str  # firing | resolved
    alerts: list[Alert]
    sent_ns: int
    test: bool = False
    rule_labels: dict[str, str] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """``[FIRING] rule: summary`` (``(+N more)`` when grouped); ``[TEST]`` for test sends."""
        tag = "TEST" if self.test else self.kind.upper()
        first = self.alerts[0] if self.alerts else None
        summary = first.annotations.get("summary", "") if first else ""
        more = f" (+{len(self.alerts) - 1} more)" if len(self.alerts) > 1 else ""
        return f"[{tag}] {self.rule}" + (f": {summary}" if summary else "") + more

    def text(self) -> str:
        """A plain-text body: one paragraph per alert."""
        lines = [self.subject, ""]
        for alert in self.alerts:
            group = ", ".join(f"{k}={v}" for k, v in alert.labels.items() if k != "alertname")
            lines.append(f"- {alert.state}: {group or '(all records)'}")
            value = alert.value
            shown = "n/a" if value is None else str(int(value)) if float(value).is_integer() else f"{value:g}"
            lines.append(f"  value: {shown}")
            for key, item in (alert.details or {}).items():
                if key != "baseline":
                    lines.append(f"  {key}: {item:g}" if isinstance(item, float) else f"  {key}: {item}")
            lines.append(f"  since: {_iso(alert.starts_ns)}")
            if alert.ends_ns:
                lines.append(f"  resolved: {_iso(alert.ends_ns)}")
            for key, value in alert.annotations.items():
                lines.append(f"  {key}: {value}")
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:
        """The webhook body: Alertmanager-like, versioned."""
        return {"version": "1", "status": "test" if self.test else self.kind, "rule": self.rule,
                "labels": self.rule_labels, "sent_at": _iso(self.sent_ns),
                "alerts": [a.as_json() for a in self.alerts]}


@runtime_checkable
class Channel(Protocol):
    """One kind of receiver; instances are built from a stored config and used for one send."""

    kind: ClassVar[str]

    async def send(self, notification: Notification) -> None:
        """Deliver once, or raise :class:`Retriable` / :class:`Permanent`."""


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
