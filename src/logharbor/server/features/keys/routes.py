"""Admin endpoints for API keys and the audit log, and ``whoami`` for any key.

A scoped admin works inside its scope: it creates keys its scope covers, lists and revokes only
those, and reads only what they did in the audit log (docs/security.md, "Scoped admins").
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter
from pydantic import ConfigDict, Field
from starlette.requests import Request

from logharbor.models import InputModel
from logharbor.server.auth import actor_of, principal_of
from logharbor.server.bounds import INT64_MAX
from logharbor.server.errors import ApiError
from logharbor.server.features.query.timeparse import TimeParseError, parse_duration_ns
from logharbor.server.meta.keys import KeyRequestError, KeyScopeError, Principal
from logharbor.server.scopes import Scope

__all__ = ["keys_router"]


class KeyCreate(InputModel):
    """A key to create; ``expires`` is a duration such as ``30d`` or ``12h``.

    An unknown field is a 400 naming it: ignored, ``{"role": "reader", "tenant": "acme",
    "service": "checkout"}`` made a reader of every acme service, ``{"scope": {...}}`` or
    ``{"tennant": "acme"}`` an unscoped one, and ``{"expires_ns": …}`` a key that never expires."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["admin", "writer", "reader", "metrics"]
    name: str = Field("", max_length=200)
    tenant: str | None = Field(None, min_length=1, max_length=200)
    services: list[str] | None = None
    expires: str | None = None
    ingest_rate: int | None = Field(None, ge=1, le=INT64_MAX, description="records per second for this key")


def within(principal: Principal | None) -> Scope | None:
    """The scope a caller's admin actions are confined to (None: unscoped, or auth is off)."""
    return principal.scope if principal is not None and principal.scoped else None


def keys_router() -> APIRouter:
    router = APIRouter(tags=["keys"])

    @router.get("/api/v1/keys", summary="List API keys (never their secrets)")
    async def list_keys(request: Request) -> dict:  # type: ignore[type-arg]
        return {"keys": request.app.state.runtime.keys.list(within(principal_of(request)))}

    @router.post("/api/v1/keys", status_code=201, summary="Create an API key; the secret is shown once")
    async def create_key(body: KeyCreate, request: Request) -> dict:  # type: ignore[type-arg]
        runtime = request.app.state.runtime
        actor = principal_of(request)
        expires_ns = None
        if body.expires:
            try:
                expires_ns = time.time_ns() + parse_duration_ns(body.expires)
            except TimeParseError as exc:
                raise ApiError(400, "invalid_request", str(exc)) from None
        try:
            new = runtime.keys.create(role=body.role, name=body.name, tenant=body.tenant,
                                      services=body.services, expires_ns=expires_ns,
                                      created_by=actor_of(request),
                                      ingest_rate=body.ingest_rate, creator=actor)
        except KeyScopeError as exc:
            raise ApiError(403, "forbidden", str(exc)) from None
        except KeyRequestError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        p = new.principal
        return {"key": new.secret, "prefix": p.prefix, "role": p.role, "tenant": p.tenant,
                "services": list(p.services) if p.services else None, "expires_ns": new.expires_ns}

    @router.delete("/api/v1/keys/{prefix}", summary="Revoke an API key")
    async def revoke_key(prefix: str, request: Request) -> dict:  # type: ignore[type-arg]
        actor = principal_of(request)
        try:
            request.app.state.runtime.keys.revoke(prefix, actor=actor_of(request),
                                                  within=within(actor))
        except KeyRequestError as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        return {"revoked": prefix}

    @router.get("/api/v1/audit", summary="The audit log, newest first")
    async def audit(request: Request, limit: int = 100, action: str | None = None) -> dict:  # type: ignore[type-arg]
        limit = max(1, min(limit, 10_000))
        return {"entries": request.app.state.runtime.keys.audit_entries(
            limit=limit, action=action, within=within(principal_of(request)))}

    @router.get("/api/v1/whoami", summary="The calling key's role and scope")
    async def whoami(request: Request) -> dict:  # type: ignore[type-arg]
        p = principal_of(request)
        if p is None:
            return {"auth": "disabled"}
        return {"prefix": p.prefix, "role": p.role, "name": p.name, "tenant": p.tenant,
                "services": list(p.services) if p.services else None}

    return router
