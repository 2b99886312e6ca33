"""The request-wide limits of the HTTP API, as one pure-ASGI middleware (the outermost one).

Why one place: a limit a route must remember is a limit some route forgets. Every request here

- gets its query time budget (:mod:`logharbor.server.engine.store.gate`): the timeout starts when the
  request arrives, and every store read it makes is charged to its caller's key;
- has a body size limit: ``max_body_bytes`` on the ingest endpoints (those that need the
  ``write`` permission), ``max_request_bytes`` on every other one. A declared ``Content-Length``
  over it is a 413 before a byte is read; a chunked body is counted as it arrives and stopped at
  the limit (a 500 MB JSON body to ``/api/v1/query`` no longer sits in server memory);
- carries ``Strict-Transport-Security`` when the server speaks TLS;
- that its client abandons in the middle of the body (a shipper killed mid-upload) leaves one
  warning line, not a traceback.

Header sizes and read timeouts are the listener's business (:mod:`logharbor.server.http_protocol`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from logharbor.server.auth import required_permission
from logharbor.server.engine.store import gate
from logharbor.server.engine.store.base import QueryCancelled, StoreError
from logharbor.server.errors import ApiError, error_body

__all__ = ["RequestLimits", "query_refusal", "query_settings", "store_limit_handler"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("logharbor.server.http")


class _BodyTooLarge(Exception):
    """Raised from ``receive`` when a body passes its limit; answered as a 413."""


class RequestLimits:
    """Budget, body limit, HSTS and quiet client disconnects for every HTTP request."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_request_bytes: int, query_timeout_s: float,
                 hsts_max_age_s: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_request_bytes = max_request_bytes
        self.query_timeout_s = query_timeout_s
        self.hsts = f"max-age={hsts_max_age_s}".encode() if hsts_max_age_s else None

    def limit_for(self, method: str, path: str) -> tuple[int, str]:
        """The body limit of an endpoint and the setting it comes from."""
        if required_permission(method, path) == "write":
            return self.max_body_bytes, "max_body_bytes"
        return self.max_request_bytes, "max_request_bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        budget = gate.Budget(self.query_timeout_s, state=scope.setdefault("state", {}),
                             client=client[0] if client else None)
        token = gate.begin(budget)
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send)
        finally:
            gate.end(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit, setting = self.limit_for(scope.get("method", "GET"), scope["path"])
        declared = _content_length(scope)
        started = False
        if declared is not None and declared > limit:
            await _too_large(send, limit, setting, self.hsts)
            return
        seen = 0
        more = True
        over = False
        gone = False

        async def counted() -> Message:
            nonlocal seen, more, over, gone
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                more = bool(message.get("more_body", False))
                if seen > limit:
                    over = True
                    raise _BodyTooLarge
            elif message["type"] == "http.disconnect" and more:
                gone = True
            return message

        replaced = False

        async def sending(message: Message) -> None:
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                if over:  # the app turned our stop into its own error: answer the limit instead
                    replaced = True
                    await _too_large(send, limit, setting, self.hsts)
                    return
                started = True
                if self.hsts is not None:
                    message["headers"] = [*message.get("headers", []),
                                          (b"strict-transport-security", self.hsts)]
            elif replaced:
                return
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except _BodyTooLarge:
            if not started and not replaced:
                await _too_large(send, limit, setting, self.hsts)
        except Exception:  # ClientDisconnect, or whatever a route made of it
            if not gone:  # the client left mid-body: what broke after that is its leaving
                raise
        if gone:
            log.warning("client %s went away during the upload of %s %s (%d of %s bytes received)",
                        _client(scope), scope.get("method"), scope["path"], seen,
                        declared if declared is not None else "?")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "?"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int, setting: str, hsts: bytes | None) -> None:
    body = orjson.dumps(error_body("body_too_large", f"the request body is over the limit of {limit} bytes "
                                   f"({setting})", {"limit_bytes": limit, "setting": setting}))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    if hsts is not None:
        headers.append((b"strict-transport-security", hsts))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def query_settings(conn: HTTPConnection) -> dict[str, int | float]:
    """The engine settings each store read of a request runs under: the server's time and memory
    budget per query (``query_timeout_s``, ``query_max_memory_bytes``); none on an app without a
    runtime (a test mounting one router)."""
    config = getattr(getattr(conn.app.state, "runtime", None), "config", None)
    if config is None:
        return {}
    return {"max_execution_time": config.query_timeout_s, "max_memory_usage": config.query_max_memory_bytes}


def query_refusal(exc: StoreError) -> ApiError | None:
    """The answer for a store error caused by a query limit (None for other store errors).

    Each names the limits that stopped the query, so a client knows what to change.
    """
    if isinstance(exc, gate.QueueFull | gate.QueueTimeout):
        code = "too_many_queries" if isinstance(exc, gate.QueueFull) else "query_queue_timeout"
        return ApiError(429, code, str(exc), detail=exc.limits, headers={"Retry-After": "1"})
    if isinstance(exc, QueryCancelled):
        limits = dict(getattr(exc, "limits", None) or {})
        text = str(exc)
        if "Code: 241" in text or "code: 241" in text.lower():
            what = f"its memory budget of {limits.get('max_memory_bytes')} bytes (query_max_memory_bytes)"
        else:
            timeout = limits.get("timeout_s")
            shown = f"{timeout:g} s" if isinstance(timeout, int | float) and math.isfinite(timeout) else "?"
            what = f"its time budget of {shown} (query_timeout_s)"
        return ApiError(400, "query_cancelled", f"the query went over {what} and was cancelled; "
                        "narrow the time range or the filter", detail=limits or None)
    return None


async def store_limit_handler(request: Request, exc: Exception) -> JSONResponse:
    """A query limit that reached the app unhandled is still a 4xx naming the limit."""
    assert isinstance(exc, StoreError)
    refusal = query_refusal(exc)
    if refusal is None:
        return JSONResponse(error_body("store_error", "the store could not run the query"), status_code=500)
    return JSONResponse(error_body(refusal.code, refusal.message, refusal.detail),
                        status_code=refusal.status, headers=refusal.headers)
