"""API keys: created once with a secret shown once, stored as a hash, looked up by prefix.

A key reads ``lh_<prefix>_<secret>``: the prefix (12 hex) is public and indexes the row; only
the SHA-256 of the secret is stored. Keys carry a role (``admin``, ``writer``, ``reader``) and an
optional scope (a tenant and a list of services) that the query compiler enforces.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from logharbor.server.meta.db import MetaStore, api_keys, audit_log

__all__ = ["ROLES", "KeyRequestError", "KeyStore", "MetadataUnavailable", "NewKey", "Principal"]

ROLES = ("admin", "writer", "reader")
#: what each role may do; admin may do everything
_ALLOWED = {"admin": {"admin", "write", "read"}, "writer": {"write"}, "reader": {"read"}}
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
        return permission in _ALLOWED.get(self.role, set())

    @property
    def scoped(self) -> bool:
        return self.tenant is not None or self.services is not None


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
        self._lock = threading.Lock()

    def create(self, *, role: str, name: str = "", tenant: str | None = None,
               services: list[str] | None = None, expires_ns: int | None = None,
               created_by: str = "system", ingest_rate: int | None = None) -> NewKey:
        if role not in ROLES:
            raise KeyRequestError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if expires_ns is not None and expires_ns <= time.time_ns():
            raise KeyRequestError("expiry must be in the future")
        if services is not None and (not services or any(not s for s in services)):
            raise KeyRequestError("services must be a non-empty list of non-empty names")
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

    def revoke(self, prefix: str, *, actor: str) -> None:
        with self.meta.engine.begin() as conn:
            done = conn.execute(update(api_keys).where(
                api_keys.c.prefix == prefix, api_keys.c.revoked_ns.is_(None)).values(
                revoked_ns=time.time_ns()))
            if done.rowcount == 0:
                raise KeyRequestError(f"no active key with prefix {prefix!r}")
            self._audit(conn, actor, "key.revoke", prefix)
        with self._lock:
            self._cache.clear()

    def list(self) -> list[dict[str, Any]]:
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings().all()
        return [
            {"prefix": r["prefix"], "name": r["name"], "role": r["role"], "tenant": r["tenant"],
             "services": r["services"], "created_ns": r["created_ns"], "expires_ns": r["expires_ns"],
             "revoked": r["revoked_ns"] is not None, "ingest_rate": r["ingest_rate"]}
            for r in rows
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
        conn.execute(insert(audit_log).values(time_ns=time.time_ns(), actor=actor, action=action,
                                              target=target, remote=remote, detail=detail))

    def audit_entries(self, *, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if action:
            query = query.where(audit_log.c.action == action)
        with self.meta.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]
