"""Authentication and authorization as one pure-ASGI middleware.

Every request but the probes (and the UI's static assets) must carry a key:
``Authorization: Bearer lh_…``, ``X-API-Key: lh_…``, HTTP basic auth with the key as the
password (what Grafana and Elasticsearch shippers send), or ``Authorization: ApiKey
base64(id:lh_…)`` (Elastic shippers' ``api_key`` option). A missing or wrong key is 401, a key
whose role does not allow the endpoint is 403; both answer with the JSON error shape and say
nothing about other tenants. The caller's :class:`Principal` is put in ``scope["state"]`` for the
routes (query scoping, tenant stamping at ingest).

Which permission an endpoint needs is decided here, in one table, so no route can forget it;
an endpoint not in the table needs ``admin``.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.requests import HTTPConnection

from logharbor.server.errors import error_body
from logharbor.server.meta.keys import (
    OUTAGE_GRACE_S,
    KeyStore,
    MetadataUnavailable,
    Principal,
    outage_warning,
    request_remote,
)
from logharbor.server.scopes import GLOBAL
from logharbor.server.scopes import Scope as KeyScope

__all__ = ["AuthMiddleware", "RateLimiter", "actor_of", "key_still_valid", "principal_of",
           "required_permission", "scope_filter", "viewer_of"]

log = logging.getLogger("logharbor.server.auth")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# (methods or None for any, path pattern, permission or None for public); first match wins
_RULES: list[tuple[frozenset[str] | None, re.Pattern[str], str | None]] = [
    (None, re.compile(r"/(healthz|readyz)"), None),
    (frozenset({"GET", "HEAD"}), re.compile(r"/ui(/.*)?"), None),  # static page; its API calls need keys
    (frozenset({"GET", "HEAD"}), re.compile(r"/"), "public-probe"),  # ES version probe / redirect
    (frozenset({"GET", "HEAD"}), re.compile(r"/(api/docs(/[\w.-]+)?|api/openapi\.json)"), None),
    (None, re.compile(r"/metrics"), "metrics"),  # server-wide figures: unscoped keys only
    (frozenset({"GET", "HEAD"}), re.compile(r"/metrics/recorded"), "recorded"),  # filtered by scope
    # ingest: every shipper protocol
    (frozenset({"POST"}), re.compile(r"/api/v1/logs"), "write"),
    (frozenset({"POST", "PUT"}), re.compile(r"(/[^/_][^/]*)?/_bulk"), "write"),
    (frozenset({"POST"}), re.compile(r"/loki/api/v1/push"), "write"),
    (frozenset({"POST"}), re.compile(r"/v1/logs"), "write"),
    # administration (retention is one policy for the whole server: unscoped admins only)
    (None, re.compile(r"/api/v1/retention(/.*)?"), "server-admin"),
    (None, re.compile(r"/api/v1/(keys|audit|delete)(/.*)?"), "admin"),
    (frozenset({"POST", "PUT", "PATCH", "DELETE"}),
     re.compile(r"/api/v1/(alerts/rules|channels|silences|dashboards|saved-queries)(/.*)?"), "admin"),
    (frozenset({"POST"}), re.compile(r"/api/v1/clock/estimate"), "server-admin"),  # every tenant's clocks
    # reading
    (None, re.compile(r"/api/v1/(query|fields|explain|tail|traces|clock|services|alerts|dashboards|"
                      r"saved-queries|channels|silences|storage|whoami)(/.*)?"), "read"),
    (frozenset({"GET"}), re.compile(r"/loki/api/v1/.*|/ready"), "read"),
    # what Elasticsearch shippers call around _bulk (license, templates, HEAD index, one document,
    # refresh, health …)
    (None, re.compile(r"/(_license|_index_template/.*|_ilm/.*|_data_stream/.*|_xpack.*|_nodes.*|"
                      r"_cluster/.*|_template/.*|_component_template/.*|_ingest/.*|_cat/health|"
                      r"_refresh|_flush|_alias/[^/]+|_aliases|"
                      r"[^/_][^/]*(/(_doc(/[^/]+)?|_create/[^/]+|_refresh|_flush|_alias/[^/]+))?)"), "write"),
]


def required_permission(method: str, path: str, *, metrics_public: bool = False) -> str | None:
    """The permission an endpoint needs (``read``, ``write``, ``admin``, ``server-admin``,
    ``metrics``, ``recorded``: see ``meta.keys._ALLOWED``), or None if public."""
    for methods, pattern, permission in _RULES:
        if (methods is None or method in methods) and pattern.fullmatch(path):
            if permission in ("metrics", "recorded") and metrics_public:
                return None
            if permission == "public-probe":
                return None if path == "/" else "read"
            return permission
    return "admin"


def _credential(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            scheme, _, rest = text.partition(" ")
            if scheme.lower() == "bearer":
                return rest.strip()
            if scheme.lower() == "apikey":  # Elastic shippers' api_key: base64("id:key")
                try:
                    decoded = base64.b64decode(rest.strip(), validate=True).decode()
                except (ValueError, UnicodeDecodeError):
                    return rest.strip()
                return decoded.partition(":")[2] or decoded
            if scheme.lower() == "basic":
                try:
                    _, _, password = base64.b64decode(rest.strip()).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    return None
                return password
    return None


def scope_filter(principal: Principal) -> tuple[str, dict[str, Any]] | None:
    """The SQL condition (with parameters) that confines a scoped key to its records.

    The query compiler AND-s it into every query of the key, so the engine never returns another
    scope's rows: nothing is filtered afterwards in Python.
    """
    return principal.scope.sql()


def _forbidden_message(principal: Principal, permission: str) -> str:
    if permission == "server-admin" and principal.role == "admin":
        return ("this is server-wide (one retention policy for every tenant): it needs an admin key "
                "without a tenant or services")
    if permission == "metrics" and principal.allows("recorded"):
        return ("/metrics shows server-wide figures: it needs a metrics key or an unscoped reader; "
                "a scoped key reads its own figures at /api/v1/storage and /metrics/recorded")
    return f"this key's role ({principal.role}) may not do this ({permission})"


def principal_of(conn: HTTPConnection) -> Principal | None:
    """The caller of a request (None only where auth is off or the endpoint is public)."""
    return conn.scope.get("state", {}).get("principal")


def viewer_of(conn: HTTPConnection) -> KeyScope:
    """The caller's scope: the objects (rules, channels, silences, dashboards …) it sees and
    creates under; every object where auth is off."""
    principal = principal_of(conn)
    return principal.scope if principal is not None else GLOBAL


def actor_of(conn: HTTPConnection, default: str = "system") -> str:
    """Who the audit log names for a request: the key's prefix, or ``default`` where auth is off."""
    principal = principal_of(conn)
    return principal.prefix if principal is not None else default


def key_still_valid(conn: HTTPConnection) -> Callable[[], bool] | None:
    """For a stream that outlives its request: whether the caller's key is still valid (a key
    revoked or expired while its tail was open kept receiving records); None when auth is off."""
    principal = principal_of(conn)
    keys = getattr(getattr(conn.app.state, "runtime", None), "keys", None)
    if principal is None or keys is None:
        return None
    prefix = principal.prefix
    return lambda: keys.active(prefix)


class AuthMiddleware:
    """Checks the key of every HTTP and WebSocket request against the key store."""

    def __init__(self, app: ASGIApp, *, keys: Callable[[], KeyStore | None],
                 metrics_public: bool = False, enabled: bool = True) -> None:
        self.app = app
        self.keys = keys
        self.metrics_public = metrics_public
        self.enabled = enabled
        self._last_failure_audit = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = request_remote.set(client[0] if client else None)  # the audit log's ``remote``
        try:
            if self.enabled:
                await self._checked(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            request_remote.reset(token)

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        permission = required_permission(method, scope["path"], metrics_public=self.metrics_public)
        if permission is None:
            await self.app(scope, receive, send)
            return
        store = self.keys()
        credential = _credential(scope.get("headers", []))
        try:
            principal = store.verify(credential) if (store is not None and credential) else None
        except MetadataUnavailable as exc:
            outage_warning(f"{exc}; a key not checked in the last {OUTAGE_GRACE_S:.0f} s is refused (503)")
            await _deny(scope, receive, send, 503, "metadata_unavailable",
                        "the server cannot check API keys right now (its metadata database is "
                        "unreachable); retry later", {"Retry-After": "5"})
            return
        if principal is None:
            self._audit_failure(store, scope, "missing key" if not credential else "invalid key")
            await _deny(scope, receive, send, 401, "unauthorized",
                        "a valid API key is required (Authorization: Bearer lh_… or X-API-Key)",
                        {"WWW-Authenticate": 'Bearer realm="logharbor"'})
            return
        if not principal.allows(permission):
            await _deny(scope, receive, send, 403, "forbidden", _forbidden_message(principal, permission), {})
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        query_scope = scope_filter(principal)
        if query_scope is not None:
            state["query_scope"] = query_scope
        await self.app(scope, receive, send)

    def _audit_failure(self, store: KeyStore | None, scope: Scope, why: str) -> None:
        """Failed authentications go to the audit log, at most a few per second."""
        now = time.monotonic()
        if store is None or now - self._last_failure_audit < 0.2:
            return
        self._last_failure_audit = now
        client = scope.get("client")
        try:
            store.audit("anonymous", "auth.failed", scope["path"][:200],
                        remote=client[0] if client else None, detail=why)
        except Exception as exc:  # a full disk or an unreachable database: the answer is still 401
            log.warning("could not write the audit record of a failed authentication: %s", exc)


async def _deny(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str,
                headers: dict[str, str]) -> None:
    body = orjson.dumps(error_body(code, message))
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4401 if status == 401 else 4403, "reason": message})
        return
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """Token buckets of records per second, one per key (429 + Retry-After when empty)."""

    def __init__(self, default_rate: int | None) -> None:
        self.default_rate = default_rate
        self._buckets: dict[str, tuple[float, float]] = {}  # prefix → (tokens, last refill)

    def rate_for(self, principal: Principal | None) -> int | None:
        """The records/s (and so the burst: one second's worth) of a caller, None when unlimited."""
        if principal is None:
            return None
        return (principal.ingest_rate if principal.ingest_rate else None) or self.default_rate

    def take(self, principal: Principal | None, records: int) -> float:
        """Take ``records`` tokens; 0.0 when allowed, else the seconds to wait."""
        rate = self.rate_for(principal)
        if principal is None or not rate:
            return 0.0
        now = time.monotonic()
        tokens, last = self._buckets.get(principal.prefix, (float(rate), now))
        tokens = min(float(rate), tokens + (now - last) * rate)  # burst of one second
        if records > tokens:
            self._buckets[principal.prefix] = (tokens, now)
            return max((records - tokens) / rate, 0.001)
        self._buckets[principal.prefix] = (tokens - records, now)
        return 0.0
