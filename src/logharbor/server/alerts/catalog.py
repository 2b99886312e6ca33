"""Rules, channels, alert states and history in the metadata database.

The one place that reads and writes the alert tables, so the API, the evaluator and the
dispatcher agree on what a row means. An evaluation's outcome (new states, history lines and
outbox rows) is written in one transaction: a crash leaves either all of it or none, which is
what lets a restart neither re-fire nor forget an alert.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, delete, func, insert, select, update

from logharbor.server.meta.db import MetaStore

from .channels import KINDS, validate_config
from .rules import Rule, validation_message
from .tables import alert_channels, alert_history, alert_notifications, alert_rules, alert_states

__all__ = ["MASK", "Catalog", "CatalogError", "Evaluation", "StoredRule"]

MASK = "********"


class CatalogError(Exception):
    """A request the catalog refuses: ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StoredRule:
    """A rule as the evaluator sees it: id and version (bumped on every change) with the model."""

    id: int
    version: int
    rule: Rule
    last_eval_ns: int | None


@dataclass
class Evaluation:
    """What one evaluation of one rule changes, written together by :meth:`Catalog.save`."""

    rule_id: int
    rule_name: str
    at_ns: int
    duration_ms: float
    error: str | None = None
    upserts: list[dict[str, Any]] = field(default_factory=list)  # alert_states rows
    deletes: list[str] = field(default_factory=list)  # group keys whose state row goes
    history: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


def _now() -> int:
    return time.time_ns()


class Catalog:
    """CRUD for rules and channels; state, history and outbox for the evaluator."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta

    # ------------------------------------------------------------------------------- rules

    def put_rule(self, rule: Rule) -> tuple[dict[str, Any], bool]:
        """Create or replace the rule named ``rule.name``; (row, created)."""
        self._check_channels(rule.channels)
        now = _now()
        spec = rule.model_dump(by_alias=True)
        with self.meta.engine.begin() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.name == rule.name)).mappings().first()
            if row is None:
                conn.execute(insert(alert_rules).values(
                    name=rule.name, spec=spec, enabled=int(rule.enabled), created_ns=now, updated_ns=now,
                    version=1, skipped_runs=0))
                created = True
            else:
                old = Rule.model_validate(row["spec"])
                conn.execute(update(alert_rules).where(alert_rules.c.id == row["id"]).values(
                    spec=spec, enabled=int(rule.enabled), updated_ns=now, version=row["version"] + 1,
                    last_error=None))
                if old.group_labels() != rule.group_labels() or old.condition.type != rule.condition.type:
                    conn.execute(delete(alert_states).where(alert_states.c.rule_id == row["id"]))
                created = False
        return self.get_rule(rule.name) or {}, created

    def _check_channels(self, names: list[str]) -> None:
        if not names:
            return
        with self.meta.engine.connect() as conn:
            known = {r[0] for r in conn.execute(select(alert_channels.c.name).where(
                alert_channels.c.name.in_(names))).all()}
        missing = [n for n in names if n not in known]
        if missing:
            names_text = ", ".join(map(repr, missing))
            raise CatalogError(400, "invalid_rule", f"channels: no channel named {names_text}")

    def delete_rule(self, name: str) -> None:
        """Delete a rule, its states, and its notifications still waiting to be sent."""
        with self.meta.engine.begin() as conn:
            row = conn.execute(select(alert_rules.c.id).where(alert_rules.c.name == name)).first()
            if row is None:
                raise CatalogError(404, "not_found", f"no rule named {name!r}")
            conn.execute(delete(alert_rules).where(alert_rules.c.id == row[0]))
            conn.execute(delete(alert_states).where(alert_states.c.rule_id == row[0]))
            conn.execute(update(alert_notifications).where(
                alert_notifications.c.rule_id == row[0], alert_notifications.c.status == "pending").values(
                status="failed", error="rule deleted"))

    def get_rule(self, name: str) -> dict[str, Any] | None:
        """One rule with its status, or None."""
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.name == name)).mappings().first()
            counts = self._state_counts(conn, row["id"]) if row is not None else {}
        return _rule_out(dict(row), counts) if row is not None else None

    def list_rules(self) -> list[dict[str, Any]]:
        """Every rule with its status, by name."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(alert_rules).order_by(alert_rules.c.name)).mappings().all()
            return [_rule_out(dict(r), self._state_counts(conn, r["id"])) for r in rows]

    @staticmethod
    def _state_counts(conn: Any, rule_id: int) -> dict[str, int]:
        rows = conn.execute(select(alert_states.c.state, func.count()).where(
            alert_states.c.rule_id == rule_id).group_by(alert_states.c.state)).all()
        return {r[0]: r[1] for r in rows}

    def enabled_rules(self) -> list[StoredRule]:
        """Every enabled rule that still validates (a rule stored by an older version may not)."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(alert_rules).where(alert_rules.c.enabled == 1)).mappings().all()
        out = []
        for row in rows:
            try:
                rule = Rule.model_validate(row["spec"])
            except ValidationError as exc:
                self.record_error(row["id"], f"stored rule no longer validates: {validation_message(exc)}")
                continue
            out.append(StoredRule(row["id"], row["version"], rule, row["last_eval_ns"]))
        return out

    def record_error(self, rule_id: int, error: str) -> None:
        """Show ``error`` on the rule (a stored rule that no longer validates)."""
        with self.meta.engine.begin() as conn:
            conn.execute(update(alert_rules).where(alert_rules.c.id == rule_id).values(
                last_error=error[:4000]))

    def count_skip(self, rule_id: int) -> None:
        """Count a slot skipped because the rule's previous run was still going."""
        with self.meta.engine.begin() as conn:
            conn.execute(update(alert_rules).where(alert_rules.c.id == rule_id).values(
                skipped_runs=alert_rules.c.skipped_runs + 1))

    # ------------------------------------------------------------------------------- states

    def states(self, rule_id: int) -> dict[str, dict[str, Any]]:
        """The rule's state rows by group key."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(alert_states).where(
                alert_states.c.rule_id == rule_id)).mappings().all()
        return {r["group_key"]: dict(r) for r in rows}

    def save(self, ev: Evaluation) -> None:
        """Write one evaluation's outcome atomically (states, history, outbox, rule status)."""
        with self.meta.engine.begin() as conn:
            exists = conn.execute(select(alert_rules.c.id).where(alert_rules.c.id == ev.rule_id)).first()
            if exists is None:
                return  # deleted while it was being evaluated
            values: dict[str, Any] = {"last_eval_ns": ev.at_ns, "last_duration_ms": ev.duration_ms,
                                      "last_error": ev.error}
            conn.execute(update(alert_rules).where(alert_rules.c.id == ev.rule_id).values(**values))
            for key in ev.deletes:
                conn.execute(delete(alert_states).where(alert_states.c.rule_id == ev.rule_id,
                                                        alert_states.c.group_key == key))
            for row in ev.upserts:
                where = and_(alert_states.c.rule_id == ev.rule_id,
                             alert_states.c.group_key == row["group_key"])
                if conn.execute(select(alert_states.c.rule_id).where(where)).first() is None:
                    conn.execute(insert(alert_states).values(rule_id=ev.rule_id, **row))
                else:
                    conn.execute(update(alert_states).where(where).values(**row))
            if ev.history:
                conn.execute(insert(alert_history), [{"rule_id": ev.rule_id, "rule_name": ev.rule_name, **h}
                                                     for h in ev.history])
            for row in ev.outbox:
                seen = conn.execute(select(alert_notifications.c.id).where(
                    alert_notifications.c.dedup_key == row["dedup_key"],
                    alert_notifications.c.channel == row["channel"])).first()
                if seen is None:  # dedup: one notification per transition and channel, ever
                    conn.execute(insert(alert_notifications).values(**row))

    def count_state(self, state: str) -> int:
        """How many groups of all rules are in ``state`` (for /metrics)."""
        with self.meta.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alert_states).where(
                alert_states.c.state == state)).scalar() or 0)

    def alerts(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        """Current states joined with their rule's name and labels."""
        query = select(alert_states, alert_rules.c.name, alert_rules.c.spec).join(
            alert_rules, alert_rules.c.id == alert_states.c.rule_id).order_by(
            alert_rules.c.name, alert_states.c.group_key)
        if not include_inactive:
            query = query.where(alert_states.c.state != "inactive")
        with self.meta.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [{"rule": r["name"], "group": r["group_labels"], "state": r["state"], "value": r["value"],
                 "details": r["details"], "active_since_ns": r["active_since_ns"], "fired_ns": r["fired_ns"],
                 "resolved_ns": r["resolved_ns"],
                 "labels": {"alertname": r["name"], **r["spec"].get("labels", {}), **r["group_labels"]}}
                for r in rows]

    def history(self, *, rule: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """State transitions, newest first."""
        query = select(alert_history).order_by(alert_history.c.id.desc()).limit(limit)
        if rule:
            query = query.where(alert_history.c.rule_name == rule)
        with self.meta.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    # ------------------------------------------------------------------------------- channels

    def put_channel(self, name: str, kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or replace a channel; a masked secret (``********``) keeps the stored one."""
        now = _now()
        with self.meta.engine.begin() as conn:
            row = conn.execute(select(alert_channels).where(alert_channels.c.name == name)).mappings().first()
            if row is not None and row["kind"] == kind:
                for secret in getattr(KINDS.get(kind), "secret_fields", ()):
                    if config.get(secret) == MASK:
                        config[secret] = row["config"].get(secret)
            try:
                model = validate_config(kind, config)
            except ValidationError as exc:
                raise CatalogError(400, "invalid_channel", validation_message(exc)) from None
            except ValueError as exc:
                raise CatalogError(400, "invalid_channel", str(exc)) from None
            stored = model.model_dump(by_alias=True)
            if row is None:
                conn.execute(insert(alert_channels).values(name=name, kind=kind, config=stored,
                                                           created_ns=now, updated_ns=now))
            else:
                conn.execute(update(alert_channels).where(alert_channels.c.id == row["id"]).values(
                    kind=kind, config=stored, updated_ns=now))
        return self.get_channel(name) or {}, row is None

    def channel(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """(kind, config with secrets) of a channel, for sending."""
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(alert_channels.c.kind, alert_channels.c.config).where(
                alert_channels.c.name == name)).first()
        return (row[0], dict(row[1])) if row is not None else None

    def get_channel(self, name: str) -> dict[str, Any] | None:
        """One channel as the API shows it (secrets masked), or None."""
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(alert_channels).where(alert_channels.c.name == name)).mappings().first()
        return _channel_out(dict(row)) if row is not None else None

    def list_channels(self) -> list[dict[str, Any]]:
        """Every channel as the API shows it (secrets masked)."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(alert_channels).order_by(alert_channels.c.name)).mappings().all()
        return [_channel_out(dict(r)) for r in rows]

    def delete_channel(self, name: str) -> None:
        """Delete a channel no rule uses (409 otherwise)."""
        users = [r["name"] for r in self.list_rules() if name in r["spec"].get("channels", [])]
        if users:
            raise CatalogError(409, "in_use", f"channel {name!r} is used by rules: {', '.join(users)}")
        with self.meta.engine.begin() as conn:
            done = conn.execute(delete(alert_channels).where(alert_channels.c.name == name))
        if done.rowcount == 0:
            raise CatalogError(404, "not_found", f"no channel named {name!r}")

    # ------------------------------------------------------------------------------- outbox

    def notifications(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """The outbox, newest first."""
        query = select(alert_notifications).order_by(alert_notifications.c.id.desc()).limit(limit)
        with self.meta.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]


def _rule_out(row: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    return {"name": row["name"], "spec": row["spec"], "enabled": bool(row["enabled"]),
            "version": row["version"], "created_ns": row["created_ns"], "updated_ns": row["updated_ns"],
            "last_eval_ns": row["last_eval_ns"], "last_duration_ms": row["last_duration_ms"],
            "last_error": row["last_error"], "skipped_runs": row["skipped_runs"], "states": counts}


def _channel_out(row: dict[str, Any]) -> dict[str, Any]:
    config = dict(row["config"])
    for secret in getattr(KINDS.get(row["kind"]), "secret_fields", ()):
        if config.get(secret):
            config[secret] = MASK
    return {"name": row["name"], "kind": row["kind"], "config": config,
            "created_ns": row["created_ns"], "updated_ns": row["updated_ns"]}
