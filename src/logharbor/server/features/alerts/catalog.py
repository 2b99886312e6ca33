"""Rules, channels, alert states and history in the metadata database.

The one place that reads and writes the alert tables, so the API, the evaluator and the
dispatcher agree on what a row means. An evaluation's outcome (new states, history lines and
outbox rows) is written in one transaction: a crash leaves either all of it or none, which is
what lets a restart neither re-fire nor forget an alert.

Rules and channels carry the scope of the key that created them (``owner``); every read and
change takes the caller's scope (``viewer``) and treats what it does not cover as absent. A rule
runs inside its scope and may name only channels its scope covers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, delete, func, insert, select, update

from logharbor.server.meta.db import MetaStore
from logharbor.server.scopes import GLOBAL, Scope

from .channel_rows import CatalogError, ChannelRows, taken
from .channels.secrets import MASK, SecretBox
from .rules import Rule, validation_message
from .tables import alert_channels, alert_history, alert_notifications, alert_rules, alert_states

__all__ = ["MASK", "Catalog", "CatalogError", "Evaluation", "StoredRule", "alert_visible"]

log = logging.getLogger("logharbor.alerts")


@dataclass(frozen=True)
class StoredRule:
    """A rule as the evaluator sees it: id and version (bumped on every change) with the model."""

    id: int
    version: int
    rule: Rule
    last_eval_ns: int | None
    scope: Scope = GLOBAL  # the rule's query runs inside it


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


class Catalog(ChannelRows):
    """CRUD for rules and channels (``channel_rows.py``); state, history and outbox for the evaluator."""

    def __init__(self, meta: MetaStore, secrets: SecretBox,
                 check_host: Callable[[str, BaseModel], None] | None = None) -> None:
        self.meta = meta
        self.secrets = secrets
        #: raises ValueError when a channel's host is not allowed (``channels/hosts.py``)
        self.check_host = check_host

    # ------------------------------------------------------------------------------- rules

    def put_rule(self, rule: Rule, owner: Scope = GLOBAL) -> tuple[dict[str, Any], bool]:
        """Create (scoped like ``owner``) or replace (keeping its scope; ``owner`` must cover it)
        the rule named ``rule.name``; (row, created)."""
        now = _now()
        spec = rule.model_dump(by_alias=True)
        with self.meta.engine.begin() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.name == rule.name)).mappings().first()
            scope = owner if row is None else Scope.from_row(row)
            if not owner.covers(scope):
                raise taken("rule", rule.name)
            self._check_channels(conn, rule.channels, scope)
            if row is None:
                conn.execute(insert(alert_rules).values(
                    name=rule.name, spec=spec, enabled=int(rule.enabled), created_ns=now, updated_ns=now,
                    version=1, skipped_runs=0, **owner.columns()))
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

    @staticmethod
    def _check_channels(conn: Any, names: list[str], scope: Scope) -> None:
        """Every channel named exists and lies inside the rule's scope (else it is "no channel")."""
        if not names:
            return
        rows = conn.execute(select(alert_channels).where(alert_channels.c.name.in_(names))).mappings().all()
        known = {r["name"] for r in rows if scope.sees(r)}
        missing = [n for n in names if n not in known]
        if missing:
            names_text = ", ".join(map(repr, missing))
            raise CatalogError(400, "invalid_rule", f"channels: no channel named {names_text}")

    def delete_rule(self, name: str, viewer: Scope = GLOBAL) -> None:
        """Delete a rule, its states, and its notifications still waiting to be sent."""
        with self.meta.engine.begin() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.name == name)).mappings().first()
            if not viewer.sees(row):
                raise CatalogError(404, "not_found", f"no rule named {name!r}")
            row = (row["id"],)
            conn.execute(delete(alert_rules).where(alert_rules.c.id == row[0]))
            conn.execute(delete(alert_states).where(alert_states.c.rule_id == row[0]))
            conn.execute(update(alert_notifications).where(
                alert_notifications.c.rule_id == row[0], alert_notifications.c.status == "pending").values(
                status="failed", error="rule deleted"))

    def get_rule(self, name: str, viewer: Scope = GLOBAL) -> dict[str, Any] | None:
        """One rule with its status, or None (also when ``viewer`` does not cover it)."""
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.name == name)).mappings().first()
            if not viewer.sees(row):
                return None
            return _rule_out(dict(row), self._state_counts(conn, row["id"]))

    def name_taken(self, table: Any, name: str) -> bool:
        """Whether any row of ``table`` (rules or channels), visible or not, has this name."""
        with self.meta.engine.connect() as conn:
            return conn.execute(select(table.c.id).where(table.c.name == name)).first() is not None

    def list_rules(self, viewer: Scope = GLOBAL) -> list[dict[str, Any]]:
        """Every rule ``viewer`` covers, with its status, by name."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(alert_rules).order_by(alert_rules.c.name)).mappings().all()
            return [_rule_out(dict(r), self._state_counts(conn, r["id"])) for r in rows if viewer.sees(r)]

    def rule_scopes(self) -> dict[int, Scope]:
        """The scope of every rule by id (to place history rows)."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(alert_rules.c.id, alert_rules.c.scope_tenant,
                                       alert_rules.c.scope_services)).all()
        return {r[0]: Scope.of(r[1], r[2]) for r in rows}

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
            out.append(StoredRule(row["id"], row["version"], rule, row["last_eval_ns"], Scope.from_row(row)))
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

    def alerts(self, *, include_inactive: bool = False, viewer: Scope = GLOBAL) -> list[dict[str, Any]]:
        """Current states joined with their rule's name and labels (those ``viewer`` sees:
        :func:`alert_visible`)."""
        query = select(alert_states, alert_rules.c.name, alert_rules.c.spec, alert_rules.c.scope_tenant,
                       alert_rules.c.scope_services).join(
            alert_rules, alert_rules.c.id == alert_states.c.rule_id).order_by(
            alert_rules.c.name, alert_states.c.group_key)
        if not include_inactive:
            query = query.where(alert_states.c.state != "inactive")
        with self.meta.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        alerts = [{"rule": r["name"], "group": r["group_labels"], "state": r["state"], "value": r["value"],
                   "details": r["details"], "active_since_ns": r["active_since_ns"],
                   "fired_ns": r["fired_ns"], "resolved_ns": r["resolved_ns"],
                   "labels": {"alertname": r["name"], **r["spec"].get("labels", {}), **r["group_labels"]}}
                  for r in rows]
        return [a for a, r in zip(alerts, rows, strict=True)
                if viewer.unscoped or alert_visible(viewer, a["labels"], Scope.from_row(r))]

    def history(self, *, rule: str | None = None, limit: int = 200,
                viewer: Scope = GLOBAL) -> list[dict[str, Any]]:
        """The newest ``limit`` state transitions ``viewer`` sees, newest first."""
        return self.history_page(rule=rule, limit=limit, viewer=viewer)[0]

    def history_page(self, *, rule: str | None = None, limit: int = 200,
                     viewer: Scope = GLOBAL) -> tuple[list[dict[str, Any]], bool]:
        """The newest ``limit`` state transitions ``viewer`` sees (newest first), and whether
        older ones were cut. Read in pages until enough are visible: the scope filtered one
        capped read, so a scoped key saw fewer (or none) whenever other rules had ``limit`` newer."""
        scopes = self.rule_scopes() if not viewer.unscoped else {}
        out: list[dict[str, Any]] = []
        before: int | None = None
        while len(out) <= limit:
            query = select(alert_history).order_by(alert_history.c.id.desc()).limit(limit + 1)
            if rule:
                query = query.where(alert_history.c.rule_name == rule)
            if before is not None:
                query = query.where(alert_history.c.id < before)
            with self.meta.engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(query).mappings().all()]
            out += [r for r in rows if viewer.unscoped
                    or alert_visible(viewer, orjson.loads(r["group_key"]), scopes.get(r["rule_id"]))]
            if len(rows) <= limit:
                break
            before = rows[-1]["id"]
        return out[:limit], len(out) > limit

    # ------------------------------------------------------------------------------- outbox

    def notifications(self, *, rule: str | None = None, limit: int = 100,
                      viewer: Scope = GLOBAL) -> list[dict[str, Any]]:
        """The outbox, newest first (one rule's with ``rule``): the last ``limit``, then those
        ``viewer`` sees (by the scope and labels of the alert each carries)."""
        query = select(alert_notifications).order_by(alert_notifications.c.id.desc()).limit(limit)
        if rule:
            query = query.where(alert_notifications.c.rule_name == rule)
        with self.meta.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings().all()]
        return [r for r in rows if viewer.unscoped or alert_visible(
            viewer, r["alert"]["labels"], Scope.from_json(r["alert"].get("scope")))]


def alert_visible(viewer: Scope, labels: Mapping[str, Any], rule_scope: Scope | None) -> bool:
    """An alert is shown to a key that sees its rule, or, for a server-wide rule (grouped by
    tenant/service), whose scope its labels place it in. A scoped rule's labels place nothing: its
    admin writes them (``tenant: acme`` on a globex rule would show globex's alerts to acme). A rule
    no longer known (``None``: deleted) is shown to unscoped keys only."""
    if rule_scope is None:
        return viewer.unscoped
    return viewer.covers(rule_scope) or (rule_scope.unscoped and viewer.labels_inside(labels))


def _rule_out(row: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    return {"name": row["name"], "spec": row["spec"], "enabled": bool(row["enabled"]),
            "version": row["version"], "created_ns": row["created_ns"], "updated_ns": row["updated_ns"],
            "last_eval_ns": row["last_eval_ns"], "last_duration_ms": row["last_duration_ms"],
            "last_error": row["last_error"], "skipped_runs": row["skipped_runs"], "states": counts,
            "scope": Scope.from_row(row).as_json()}
