"""The metadata tables of alerting, dashboards and saved queries.

Defined on the shared ``metadata`` object of :mod:`logharbor.server.meta.db`, so
``MetaStore.create()`` creates them with the rest (the alert routes import this module before the
runtime opens). Rule, channel and dashboard bodies are JSON documents validated by pydantic on
the way in; the tables only index what the server looks rows up by.

Rules, channels, silences, dashboards and saved queries carry the scope of the key that created
them (``scope_tenant``, ``scope_services``; null: server-wide, as every row made before scoping).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, String, Table, Text, UniqueConstraint

from logharbor.server.meta.db import metadata

__all__ = [
    "alert_channels", "alert_history", "alert_leases", "alert_notifications", "alert_rules", "alert_states",
    "dashboards", "saved_queries", "silences",
]


def _scope_columns() -> list[Column]:  # type: ignore[type-arg]
    """Who may see a row: the tenant and services of the key that created it (null: everybody's)."""
    return [Column("scope_tenant", String(200), nullable=True), Column("scope_services", JSON, nullable=True)]

alert_rules = Table(
    "alert_rules", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("spec", JSON, nullable=False),  # the Rule model as JSON
    Column("enabled", Integer, nullable=False, default=1),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("version", Integer, nullable=False, default=1),  # bumped on every change
    Column("last_eval_ns", BigInteger, nullable=True),  # the slot last evaluated
    Column("last_duration_ms", Float, nullable=True),
    Column("last_error", Text, nullable=True),  # null when the last evaluation worked
    Column("skipped_runs", Integer, nullable=False, default=0),  # slots missed (previous run still busy)
    *_scope_columns(),
)

alert_states = Table(
    "alert_states", metadata,
    Column("rule_id", Integer, primary_key=True),
    Column("group_key", String(1000), primary_key=True),  # canonical JSON of the group's values
    Column("group_labels", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # inactive | pending | firing | resolved
    Column("value", Float, nullable=True),
    Column("active_since_ns", BigInteger, nullable=True),  # condition true since (pending/firing)
    Column("fired_ns", BigInteger, nullable=True),
    Column("resolved_ns", BigInteger, nullable=True),
    Column("last_notified_ns", BigInteger, nullable=True),
    Column("updated_ns", BigInteger, nullable=False),
    # what the condition saw besides the value (anomaly: median, mad, k; new_pattern: template)
    Column("details", JSON, nullable=True),
)

alert_history = Table(
    "alert_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", Integer, nullable=False),
    Column("rule_name", String(200), nullable=False),
    Column("group_key", String(1000), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("value", Float, nullable=True),
    Column("time_ns", BigInteger, nullable=False),
    Index("ix_alert_history_time", "time_ns"),
    Index("ix_alert_history_rule", "rule_id", "time_ns"),
)

alert_channels = Table(
    "alert_channels", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("config", JSON, nullable=False),  # everything but the secrets
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    # the secret fields as one sealed JSON document (sealing.py; base64), null when none
    Column("secrets", Text, nullable=True),
    *_scope_columns(),
)

# the outbox: one row per (alert transition, channel); sent at least once, deduplicated by key
alert_notifications = Table(
    "alert_notifications", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(1200), nullable=False),
    Column("channel", String(200), nullable=False),
    Column("rule_id", Integer, nullable=False),
    Column("rule_name", String(200), nullable=False),
    Column("batch", BigInteger, nullable=False),  # evaluation slot: alerts of one slot go out together
    Column("kind", String(16), nullable=False),  # firing | resolved
    Column("alert", JSON, nullable=False),  # labels, annotations, value, times
    # pending | sent | failed | silenced | rate_limited | skipped (a resolve whose firing was not sent)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_ns", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("delivered_ns", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("dedup_key", "channel", name="uq_alert_notification"),
    Index("ix_alert_notifications_due", "status", "next_attempt_ns"),
    Index("ix_alert_notifications_rule", "rule_id", "delivered_ns"),
)

silences = Table(
    "silences", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", JSON, nullable=False),
    Column("starts_ns", BigInteger, nullable=False),
    Column("ends_ns", BigInteger, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("created_by", String(64), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    *_scope_columns(),
)

saved_queries = Table(
    "saved_queries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("spec", JSON, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    *_scope_columns(),
)

dashboards = Table(
    "dashboards", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("spec", JSON, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    *_scope_columns(),
)

# which server runs the evaluator and the dispatcher when several share the metadata database
alert_leases = Table(
    "alert_leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_ns", BigInteger, nullable=False),
)
