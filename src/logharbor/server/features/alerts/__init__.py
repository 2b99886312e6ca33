"""Alerting (DESIGN §3 "Alerts and retention"): rules in the query language, a scheduler that
evaluates them on a fixed grid, persisted alert states, and notifications by email and webhook.

Rooms: ``rules`` (the model and how a rule becomes queries), ``evaluator`` (schedule and state
machine), ``catalog`` (the metadata tables' reads and writes), ``notify`` (the outbox
dispatcher: grouping, silences, rate limit, retries), ``silences``, ``channels/`` (one file per
``Channel`` kind, registered in ``channels.KINDS``), ``routes`` (the API) and ``service`` (what
the app starts and stops).
"""

from __future__ import annotations

from .catalog import Catalog, CatalogError
from .channels import KINDS, Alert, Channel, DeliveryError, Notification, Permanent, Retriable
from .evaluator import Clock, Evaluator, ManualClock, SystemClock
from .rules import Condition, Rule
from .service import AlertService

__all__ = [
    "KINDS", "Alert", "AlertService", "Catalog", "CatalogError", "Channel", "Clock", "Condition",
    "DeliveryError", "Evaluator", "ManualClock", "Notification", "Permanent", "Retriable", "Rule",
    "SystemClock",
]
