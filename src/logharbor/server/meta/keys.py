"""API keys: created once with a secret shown once, stored as a hash, looked up by prefix.

A key reads ``lh_<prefix>_<secret>``: the prefix (12 hex) is public and indexes the row; only
the SHA-256 of the secret is stored. Keys carry a role (``admin``, ``writer``, ``reader``,
``metrics``) and an optional scope (a tenant and a list of services) that the query compiler
enforces. A key never creates a key wider than itself (scope, expiry, ingest rate), and a scoped
admin lists, revokes and audits only inside its scope (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from logharbor.server.meta.db import MetaStore, api_keys, audit_log
from logharbor.server.scopes import Scope
from logharbor.types import JsonObject

__all__ = ["ROLES", "KeyRequestError", "KeyScopeError", "KeyStore", "MetadataUnavailable", "NewKey",
           "Principal", "request_remote"]

ROLES = ("admin", "writer", "reader", "metrics")
#: what each role may do; admin may do everything. ``metrics`` is ``/metrics`` (server-wide
#: figures: held only by unscoped keys), ``recorded`` is ``/metrics/recorded`` (filtered by scope),
#: ``server-admin`` is what only an unscoped admin may do (retention: one policy for everybody)
_ALLOWED = {"admin": {"admin", "write", "read", "metrics", "recorded", "server-admin"},
            "writer": {"write"}, "reader": {"read", "metrics", "recorded"},
            "metrics": {"metrics", "recorded"}}
_UNSCOPED_ONLY = {"metrics", "server-admin"}
#: the client address of the request being served, for the audit log (set by the auth middleware)
request_remote: ContextVar[str | None] = ContextVar("request_remote", default=None)
_CACHE_S = 5.0  # a revoked key stops working on other servers within this long
#: while the metadata database cannot be reached, a key verified within this long keeps working
#: (ingest and queries go on through a PostgreSQL restart or failover); others get a 503
OUTAGE_GRACE_S = 600.0


log = logging.getLogger("logharbor.auth")
_last_warning = [0.0]


class MetadataUnavailable(RuntimeError):
    """The metadata database could not be reached to check a key."""


def outage_warning(text: str) -> None:
    """Log a metadata outage at most every 10 s (not once per request)."""
    now = time.monotonic()
    if now - _last_warning[0] >= 10.0:
        _last_warning[0] = now
        log.warning("%s", text)


class KeyRequestError(ValueError):
    """A key request is invalid (unknown role, bad expiry, unknown key)."""


class KeyScopeError(KeyRequestError):
    """A key asked for more than the key creating it has (403, not 400)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's public prefix, its role and its scope."""

    prefix: str
    role: str
    name: str = ""
    tenant: str | None = None
    services: tuple[str, ...] | None = None
    ingest_rate: int | None = None

    def allows(self, permission: str) -> bool:
        if permission in _UNSCOPED_ONLY and self.scoped:
            return False
        return permission in _ALLOWED.get(self.role, set())

    @property
    def scoped(self) -> bool:
        return self.tenant is not None or self.services is not None

    @property
    def scope(self) -> Scope:
        return Scope.of(self.tenant, self.services)


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``secret`` is the whole key, shown once and never stored."""

    secret: str
    principal: Principal
    expires_ns: int | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """``lh_<12 hex>_<secret>`` → (prefix, secret), or None when it is not of that shape."""
    if not key.startswith("lh_") or len(key) < 3 + 12 + 1 + 16 or key[15] != "_":
        return None
    prefix = key[3:15]
    if any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix, key[16:]


class KeyStore:
    """Creates, verifies, lists and revokes keys; writes the audit log of what it does."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        #: prefix → (checked at, not revoked, expires_ns), for :meth:`active`
        self._active: dict[str, tuple[float, bool, int | None]] = {}
        self._lock = threading.Lock()

    def create(self, *, role: str, name: str = "", tenant: str | None = None,
               services: list[str] | None = None, expires_ns: int | None = None,
               created_by: str = "system", ingest_rate: int | None = None,
               creator: Principal | None = None) -> NewKey:
        """A new key; with ``creator`` (the calling key) it is never wider than the creator."""
        if role not in ROLES:
            raise KeyRequestError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if expires_ns is not None and expires_ns <= time.time_ns():
            raise KeyRequestError("expiry must be in the future")
        if services is not None and (not services or any(not s for s in services)):
            raise KeyRequestError("services must be a non-empty list of non-empty names")
        if creator is not None:
            tenant, services, expires_ns, ingest_rate = self._within(
                creator, role, tenant, services, expires_ns, ingest_rate)
        if role == "metrics" and (tenant is not None or services is not None):
            raise KeyRequestError("a metrics key reads server-wide figures: it cannot have a tenant "
                                  "or services")
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self.meta.engine.begin() as conn:
            conn.execute(insert(api_keys).values(
                prefix=prefix, secret_hash=_hash(secret), name=name, role=role, tenant=tenant,
                services=services, created_ns=time.time_ns(), expires_ns=expires_ns,
                created_by=created_by, ingest_rate=ingest_rate))
            self._audit(conn, created_by, "key.create", prefix,
                        detail=f"role={role} tenant={tenant} services={services}")
        principal = Principal(prefix, role, name, tenant, tuple(services) if services else None, ingest_rate)
        return NewKey(f"lh_{prefix}_{secret}", principal, expires_ns)

    def _within(self, creator: Principal, role: str, tenant: str | None, services: list[str] | None,
                expires_ns: int | None, ingest_rate: int | None
                ) -> tuple[str | None, list[str] | None, int | None, int | None]:
        """What the creator may give: its own scope, expiry and rate unless narrowed (403 if wider)."""
        own = creator.scope
        wanted = own.narrow(tenant, services)
        if not own.covers(wanted):
            raise KeyScopeError(f"this key ({own.describe()}) cannot create a key outside its own "
                                f"scope ({wanted.describe()})")
        if role == "metrics" and not own.unscoped:
            raise KeyScopeError("a scoped key cannot create a metrics key (it reads server-wide figures)")
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(api_keys.c.expires_ns).where(
                api_keys.c.prefix == creator.prefix)).first()
        limit = row[0] if row is not None else None
        if limit is not None:
            if expires_ns is not None and expires_ns > limit:
                raise KeyScopeError("a key cannot outlive the key that creates it (expiry after the "
                                    "creator's)")
            expires_ns = expires_ns if expires_ns is not None else limit
        if creator.ingest_rate is not None:
            if ingest_rate is not None and ingest_rate > creator.ingest_rate:
                raise KeyScopeError(f"ingest_rate {ingest_rate} is over the creating key's "
                                    f"({creator.ingest_rate} records/s)")
            ingest_rate = ingest_rate if ingest_rate is not None else creator.ingest_rate
        return (wanted.tenant, list(wanted.services) if wanted.services is not None else None,
                expires_ns, ingest_rate)

    def verify(self, key: str) -> Principal | None:
        """The principal of a valid, unexpired, unrevoked key; None otherwise."""
        parts = split_key(key)
        if parts is None:
            return None
        prefix, secret = parts
        digest = _hash(secret)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < _CACHE_S:
            return cached[1]
        try:
            with self.meta.engine.connect() as conn:
                row = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).mappings().first()
        except SQLAlchemyError as exc:
            if cached is not None and cached[1] is not None and now - cached[0] < OUTAGE_GRACE_S:
                outage_warning(f"metadata database unreachable ({type(exc).__name__}): keys checked in "
                               f"the last {OUTAGE_GRACE_S:.0f} s are accepted from memory")
                return cached[1]  # the entry keeps its time: the grace runs from the last real check
            raise MetadataUnavailable(f"the metadata database is unreachable: {type(exc).__name__}") from exc
        principal = None
        if (row is not None and hmac.compare_digest(row["secret_hash"], digest)
                and row["revoked_ns"] is None
                and (row["expires_ns"] is None or row["expires_ns"] > time.time_ns())):
            services = tuple(row["services"]) if row["services"] else None
            principal = Principal(prefix, row["role"], row["name"], row["tenant"], services,
                                  row["ingest_rate"])
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, principal)
        return principal

    def active(self, prefix: str) -> bool:
        """Whether the key of ``prefix`` is still unrevoked and unexpired: what a stream opened
        with it (live tail) asks before each delivery, since :meth:`verify` runs only when a
        request starts. The database is read at most every ``_CACHE_S`` (a revoke on this server
        clears it at once); the expiry is compared with the clock at every call. While the
        metadata database is unreachable the last answer holds for ``OUTAGE_GRACE_S``, as in
        :meth:`verify`."""
        now = time.monotonic()
        with self._lock:
            cached = self._active.get(prefix)
        if cached is None or now - cached[0] >= _CACHE_S:
            try:
                with self.meta.engine.connect() as conn:
                    row = conn.execute(select(api_keys.c.revoked_ns, api_keys.c.expires_ns).where(
                        api_keys.c.prefix == prefix)).first()
            except SQLAlchemyError:
                if cached is None or now - cached[0] >= OUTAGE_GRACE_S:
                    return False
            else:
                cached = (now, row is not None and row[0] is None, row[1] if row is not None else None)
                with self._lock:
                    if len(self._active) > 10_000:
                        self._active.clear()
                    self._active[prefix] = cached
        _, unrevoked, expires_ns = cached
        return unrevoked and (expires_ns is None or expires_ns > time.time_ns())

    def revoke(self, prefix: str, *, actor: str, within: Scope | None = None) -> None:
        """Revoke a key; with ``within``, only a key that scope covers (others are "no such key")."""
        with self.meta.engine.begin() as conn:
            row = conn.execute(select(api_keys.c.tenant, api_keys.c.services).where(
                api_keys.c.prefix == prefix, api_keys.c.revoked_ns.is_(None))).first()
            if row is None or (within is not None and not within.covers(Scope.of(row[0], row[1]))):
                raise KeyRequestError(f"no active key with prefix {prefix!r}")
            conn.execute(update(api_keys).where(api_keys.c.prefix == prefix).values(
                revoked_ns=time.time_ns()))
            self._audit(conn, actor, "key.revoke", prefix)
        with self._lock:
            self._cache.clear()
            self._active.pop(prefix, None)

    def list(self, within: Scope | None = None) -> list[JsonObject]:
        """Every key (never a secret); with ``within``, the keys that scope covers."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings().all()
        return [
            {"prefix": r["prefix"], "name": r["name"], "role": r["role"], "tenant": r["tenant"],
             "services": r["services"], "created_ns": r["created_ns"], "expires_ns": r["expires_ns"],
             "revoked": r["revoked_ns"] is not None, "ingest_rate": r["ingest_rate"]}
            for r in rows if within is None or within.covers(Scope.of(r["tenant"], r["services"]))
        ]

    def count_active_admins(self) -> int:
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(api_keys.c.prefix).where(
                api_keys.c.role == "admin", api_keys.c.revoked_ns.is_(None))).all()
        return len(rows)

    def audit(self, actor: str, action: str, target: str | None = None, *,
              remote: str | None = None, detail: str | None = None) -> None:
        with self.meta.engine.begin() as conn:
            self._audit(conn, actor, action, target, remote=remote, detail=detail)

    @staticmethod
    def _audit(conn: Any, actor: str, action: str, target: str | None, *,
               remote: str | None = None, detail: str | None = None) -> None:
        """One audit row; ``remote`` defaults to the address of the request being served."""
        conn.execute(insert(audit_log).values(time_ns=time.time_ns(), actor=actor, action=action,
                                              target=target, remote=remote or request_remote.get(),
                                              detail=detail))

    def audit_entries(self, *, limit: int = 100, action: str | None = None,
                      within: Scope | None = None) -> list[JsonObject]:
        """Newest first; with ``within``, only what keys inside that scope did. ``actor_name`` is
        the name of the key whose prefix is the actor (None for ``system``, ``cli``, ``anonymous``
        and keys without a name), so a reader sees who, not only which prefix."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if action:
            query = query.where(audit_log.c.action == action)
        if within is not None:
            query = query.where(audit_log.c.actor.in_([k["prefix"] for k in self.list(within)]))
        with self.meta.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings().all()]
            actors = {r["actor"] for r in rows}
            names = dict(conn.execute(select(api_keys.c.prefix, api_keys.c.name)
                                      .where(api_keys.c.prefix.in_(actors))).all()) if actors else {}
        for row in rows:
            row["actor_name"] = names.get(row["actor"]) or None
        return rows
