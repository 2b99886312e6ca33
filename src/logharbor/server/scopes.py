"""Key scopes: a tenant and/or a list of services, and the one rule that compares them.

A key's scope confines what it reads (the query compiler ANDs :meth:`Scope.sql` into every
query) and, for objects (rules, channels, silences, dashboards, saved queries), what it sees:
an object carries the scope of the key that created it, and a key sees it when its own scope
:meth:`covers <Scope.covers>` the object's. The same rule bounds the keys a key may create.
Kept free of server imports so every layer (auth, metadata, alerting) can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GLOBAL", "Scope"]


@dataclass(frozen=True)
class Scope:
    """``tenant`` None means every tenant; ``services`` None means every service."""

    tenant: str | None = None
    services: tuple[str, ...] | None = None

    @classmethod
    def of(cls, tenant: str | None = None, services: Iterable[str] | None = None) -> Scope:
        """A scope from stored values (an empty list is stored by nobody; it means none given)."""
        listed = tuple(dict.fromkeys(services)) if services else None  # order kept, repeats dropped
        return cls(tenant or None, listed)

    @property
    def unscoped(self) -> bool:
        return self.tenant is None and self.services is None

    def covers(self, other: Scope) -> bool:
        """Whether everything ``other`` may reach is inside this scope."""
        if self.tenant is not None and other.tenant != self.tenant:
            return False
        if self.services is None:
            return True
        return other.services is not None and set(other.services) <= set(self.services)

    def narrow(self, tenant: str | None, services: Iterable[str] | None) -> Scope:
        """The scope asked for, with what it leaves open filled in from this one.

        ``POST /api/v1/keys {"role": "reader"}`` by an ``acme`` admin makes an ``acme`` reader,
        not an unscoped one (Elasticsearch's API keys likewise take their owner's privileges
        when none are given). Whether the result is inside this scope is the caller's check.
        """
        return Scope.of(tenant if tenant is not None else self.tenant,
                        services if services is not None else self.services)

    def sql(self) -> tuple[str, dict[str, Any]] | None:
        """The SQL condition (with parameters) that confines a query to this scope, or None.

        Parameter names are fixed (``scope_tenant``, ``scope_service_<i>``) so that a stored
        condition can be read back by :meth:`from_sql_params`.
        """
        parts: list[str] = []
        params: dict[str, Any] = {}
        if self.tenant is not None:
            parts.append("tenant = {scope_tenant:String}")
            params["scope_tenant"] = self.tenant
        if self.services is not None:
            names = [f"scope_service_{i}" for i in range(len(self.services))]
            parts.append("service IN (" + ", ".join(f"{{{n}:String}}" for n in names) + ")")
            params.update(zip(names, self.services, strict=True))
        if not parts:
            return None
        return "(" + " AND ".join(parts) + ")", params

    @classmethod
    def from_sql_params(cls, params: Mapping[str, Any] | None) -> Scope:
        """The scope whose :meth:`sql` gave ``params`` (a stored delete job's condition)."""
        if not params:
            return GLOBAL
        services = [v for k, v in params.items() if k.startswith("scope_service_")]
        return cls.of(params.get("scope_tenant"), services or None)

    def columns(self) -> dict[str, Any]:
        """The ``scope_tenant`` / ``scope_services`` column values of an object row."""
        return {"scope_tenant": self.tenant,
                "scope_services": list(self.services) if self.services is not None else None}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Scope:
        """The scope stored on an object row (rows older than scoping are server-wide)."""
        return cls.of(row.get("scope_tenant"), row.get("scope_services"))

    def sees(self, row: Mapping[str, Any] | None) -> bool:
        """Whether an object row (rule, channel, silence, dashboard, saved query) is there for a
        key of this scope: it exists and this scope covers the scope stored on it. What a key
        does not see is absent to it (a 404, left out of a list)."""
        return row is not None and self.covers(Scope.from_row(row))

    def as_json(self) -> dict[str, Any] | None:
        """How the API shows an object's scope (None: server-wide)."""
        if self.unscoped:
            return None
        return {"tenant": self.tenant, "services": list(self.services) if self.services else None}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> Scope:
        """The scope :meth:`as_json` showed (a rule as the API lists it, an alert in the outbox)."""
        return cls.of(**(value or {}))

    def describe(self) -> str:
        """For error messages: ``tenant acme, services checkout, api`` or ``no scope``."""
        parts = []
        if self.tenant is not None:
            parts.append(f"tenant {self.tenant}")
        if self.services is not None:
            parts.append("services " + ", ".join(self.services))
        return ", ".join(parts) or "no scope"

    def labels_inside(self, labels: Mapping[str, Any]) -> bool:
        """Whether an alert's labels place it inside this scope (``tenant`` and ``service``)."""
        if self.services is not None and labels.get("service") not in self.services:
            return False
        return self.tenant is None or labels.get("tenant") == self.tenant


GLOBAL = Scope()
