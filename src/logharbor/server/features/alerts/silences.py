"""Silences: label matchers with an end time; a matching alert's notifications are held back.

An alert's labels are ``alertname`` (the rule's name), the rule's ``labels`` and its group-by
values. A silence matches when every one of its matchers does (``=``, ``!=``, ``=~``, ``!~``;
regexes match the whole value and are RE2, as in Alertmanager). Silences expire by themselves at
``ends_at``; deleting one ends it early. The alert keeps changing state while silenced — only
the notifications are suppressed, and they are recorded as ``silenced``.

A silence carries the scope of the key that made it: it is listed only to keys whose scope covers
it, and it holds back only alerts of rules inside its scope (an ``acme`` admin cannot silence
another tenant's alerts).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, insert, select, update

from logharbor.server.features.query import TimeParseError, parse_time_ns
from logharbor.server.features.query.regex_re2 import compile_re2, re2_error
from logharbor.server.meta.db import MetaStore
from logharbor.server.scopes import GLOBAL, Scope

from .tables import silences

__all__ = ["Matcher", "SilenceCreate", "SilenceStore", "matches"]


class Matcher(BaseModel):
    """One label test."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200)
    value: str = Field(..., max_length=2000)
    op: Literal["=", "!=", "=~", "!~"] = "="

    @model_validator(mode="after")
    def _regex(self) -> Matcher:
        if self.op in ("=~", "!~"):
            problem = re2_error(self.value)
            if problem is not None:
                raise ValueError(f"matcher {self.name}: bad regex: {problem}")
        return self

    def test(self, labels: dict[str, str]) -> bool:
        """Whether this matcher holds for ``labels`` (a missing label is the empty string)."""
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        # RE2, as Alertmanager's Go regexp: linear time whatever the pattern (Python's re could be
        # made to backtrack for minutes on a label value, holding every notification back)
        hit = compile_re2(self.value, dot_nl=False).fullmatch(value) is not None
        return hit if self.op == "=~" else not hit


def matches(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    """Whether every matcher holds for ``labels``."""
    return all(m.test(labels) for m in matchers)


class SilenceCreate(BaseModel):
    """A silence to create; ``ends_at`` is a time (RFC 3339, epoch, ``now+2h``) or a duration from now."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[Matcher] = Field(..., min_length=1, max_length=50)
    # bool: kept a bool (pydantic made JSON true the int 1) so parse_time_ns refuses it (400)
    starts_at: str | bool | int | None = None
    ends_at: str | bool | int
    comment: str = Field("", max_length=2000)

    def times(self, now_ns: int) -> tuple[int, int]:
        """(starts, ends) in ns at ``now_ns``; ValueError when the end is not in the future."""
        try:
            starts = parse_time_ns(self.starts_at, now_ns=now_ns) if self.starts_at is not None else now_ns
            text = self.ends_at
            if isinstance(text, str) and not text.startswith("now") and text[:1].isdigit() and \
                    text[-1:] in "smhdw" and "T" not in text:
                text = f"now+{text}"  # "2h" means "for two hours", not "two hours ago"
            ends = parse_time_ns(text, now_ns=now_ns)
        except TimeParseError as exc:
            raise ValueError(str(exc)) from None
        if ends <= max(starts, now_ns):
            raise ValueError("ends_at must be in the future and after starts_at")
        return starts, ends


class SilenceStore:
    """Silences in the metadata database, with a small cache for the dispatcher."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta

    def create(self, body: SilenceCreate, *, actor: str, now_ns: int | None = None,
               owner: Scope = GLOBAL) -> dict[str, Any]:
        """Store a silence (scoped like ``owner``, the creating key) and return it as the API shows it."""
        now = time.time_ns() if now_ns is None else now_ns
        starts, ends = body.times(now)
        with self.meta.engine.begin() as conn:
            result = conn.execute(insert(silences).values(
                matchers=[m.model_dump() for m in body.matchers], starts_ns=starts, ends_ns=ends,
                comment=body.comment, created_by=actor, created_ns=now, **owner.columns()))
            new_id = result.inserted_primary_key[0]
        return self.get(int(new_id)) or {}

    def get(self, silence_id: int, viewer: Scope = GLOBAL) -> dict[str, Any] | None:
        """One silence as the API shows it, or None (also when ``viewer`` does not cover it)."""
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(silences).where(silences.c.id == silence_id)).mappings().first()
        return _out(dict(row)) if row is not None and viewer.sees(row) else None

    def list(self, *, include_expired: bool = False, now_ns: int | None = None,
             viewer: Scope = GLOBAL) -> list[dict[str, Any]]:
        """Active (and pending) silences ``viewer`` covers; with ``include_expired`` the ended ones too."""
        now = time.time_ns() if now_ns is None else now_ns
        query = select(silences).order_by(silences.c.id)
        if not include_expired:
            query = query.where(silences.c.ends_ns > now)
        with self.meta.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_out(dict(r), now) for r in rows if viewer.sees(r)]

    def expire(self, silence_id: int, *, now_ns: int | None = None, viewer: Scope = GLOBAL) -> bool:
        """End a silence now (kept for the record); False when there is no such active silence."""
        now = time.time_ns() if now_ns is None else now_ns
        if self.get(silence_id, viewer) is None:
            return False
        with self.meta.engine.begin() as conn:
            done = conn.execute(update(silences).where(silences.c.id == silence_id,
                                                       silences.c.ends_ns > now).values(ends_ns=now))
        return done.rowcount > 0

    def prune(self, older_than_ns: int) -> None:
        """Delete silences that ended before ``older_than_ns``."""
        with self.meta.engine.begin() as conn:
            conn.execute(delete(silences).where(silences.c.ends_ns < older_than_ns))

    def active_matchers(self, now_ns: int) -> list[tuple[int, list[Matcher], Scope]]:
        """(id, matchers, scope) of every silence in force at ``now_ns``."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(silences.c.id, silences.c.matchers, silences.c.scope_tenant,
                                       silences.c.scope_services).where(
                silences.c.starts_ns <= now_ns, silences.c.ends_ns > now_ns)).all()
        return [(r[0], [Matcher.model_validate(m) for m in r[1]], Scope.of(r[2], r[3])) for r in rows]

    def silenced_by(self, labels: dict[str, str], now_ns: int, rule_scope: Scope = GLOBAL) -> int | None:
        """The id of an active silence matching ``labels`` whose scope covers the alert's rule, or None."""
        for silence_id, matchers, scope in self.active_matchers(now_ns):
            if scope.covers(rule_scope) and matches(matchers, labels):
                return silence_id
        return None


def _out(row: dict[str, Any], now_ns: int | None = None) -> dict[str, Any]:
    now = time.time_ns() if now_ns is None else now_ns
    state = "expired" if row["ends_ns"] <= now else "pending" if row["starts_ns"] > now else "active"
    return {"id": row["id"], "matchers": row["matchers"], "starts_ns": row["starts_ns"],
            "ends_ns": row["ends_ns"], "comment": row["comment"], "created_by": row["created_by"],
            "state": state, "scope": Scope.from_row(row).as_json()}
