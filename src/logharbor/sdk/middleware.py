"""Request-context middleware for ASGI (FastAPI, Starlette …) and WSGI (Flask, Django …) apps.

Why middleware: the request's identity must be in every line the app logs while serving it, and
the one place that sees every request first and its response last is the outermost layer. For
each request it:

- takes the ids from the headers — ``X-Request-ID`` for ``request_id``; ``traceparent`` (W3C)
  or ``X-Amzn-Trace-Id`` (its Root, normalized by :func:`logharbor.record.normalize_trace_id`)
  for ``trace_id`` — and generates what is absent (a request id that is already a 32-hex trace
  id doubles as the trace id, so NGINX's ``$request_id`` correlates without a trace header);
- binds them (and a fresh ``span_id`` for this hop) into the logging context for the request;
- echoes ``X-Request-ID`` on the response;
- logs one access record (logger ``logharbor.access``): method, path, route template when the
  framework knows it, status, duration_ms, client ip, user agent, bytes sent. Its timestamp is
  the end of its duration, within :data:`STAMP_SLACK_S` (the duration is read, the record is
  stamped, and both are taken again if more than that passed in between — a process descheduled
  under load): the server's clock-skew estimate reads ``timestamp − duration_ms`` as the moment
  the request reached the app (``server/features/traces/skew.py``).

The client ip is the socket peer unless the peer is a trusted proxy, in which case
``X-Forwarded-For`` is walked from the right, skipping trusted addresses. Only loopback is
trusted by default (as uvicorn and gunicorn do); pass ``trusted_proxies`` for your load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from types import MappingProxyType
from typing import Any

from logharbor.record import normalize_trace_id, traceparent_span_id
from logharbor.sdk.context import _context, new_request_id, new_span_id, new_trace_id
from logharbor.types import HttpFields

__all__ = ["STAMP_SLACK_S", "ASGIMiddleware", "DjangoRouteMiddleware", "RequestIdentity", "WSGIMiddleware",
           "client_ip", "identity_from_headers"]

#: an access record is stamped at most this long after its duration ends (see the module docstring)
STAMP_SLACK_S = 0.0001
#: times the duration and the stamp are taken again when more than STAMP_SLACK_S passed between them
_STAMP_TRIES = 10

access_logger = logging.getLogger("logharbor.access")
_DEFAULT_TRUSTED = ("127.0.0.1/32", "::1/128")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RequestIdentity(dict[str, Any]):
    """The ids of one request: trace_id, span_id, request_id (+ parent_span_id, trace_header)."""


def identity_from_headers(get: Callable[[str], str | None]) -> RequestIdentity:
    """Read (or make up) a request's ids; ``get`` looks a header up by lower-case name."""
    ident = RequestIdentity()
    request_id = (get("x-request-id") or "").strip()[:200]
    traceparent = get("traceparent")
    amzn = get("x-amzn-trace-id")
    trace_id = None
    if traceparent:
        trace_id = normalize_trace_id(traceparent) if traceparent.strip()[:2] != "ff" else None
        parent = traceparent_span_id(traceparent) if trace_id else None
        if parent:
            ident["parent_span_id"] = parent
    if trace_id is None and amzn:
        trace_id = normalize_trace_id(amzn)
        if trace_id:
            ident["trace_header"] = amzn.strip()[:300]
    if trace_id is None and request_id:
        trace_id = normalize_trace_id(request_id) if len(request_id) == 32 else None
    ident["trace_id"] = trace_id or new_trace_id()
    ident["span_id"] = new_span_id()
    ident["request_id"] = request_id or new_request_id()
    return ident


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) of trusted proxies; a bad entry raises naming it."""
    out = []
    for item in items:
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"trusted_proxies: {item!r} is not an IP address or network") from None
    return tuple(out)


def _trusted(addr: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(peer: str | None, forwarded_for: str | None, networks: tuple[Network, ...]) -> str | None:
    """The client's address: the peer, or — when the peer is a trusted proxy — the right-most
    untrusted address of ``X-Forwarded-For`` (left-most entries can be forged by anyone)."""
    if not peer or not forwarded_for or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def _level_for(status: int) -> int:
    return logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO


def _log_access(http: HttpFields, logger: logging.Logger, error: BaseException | None, start: float) -> None:
    """Log the access record: its duration (from ``start``, a ``perf_counter`` reading) ends when
    it is stamped, within STAMP_SLACK_S. Between the two readings there used to be the rest of the
    record's fields and the logging call, and a process descheduled there (a loaded machine) gave a
    stamp milliseconds after the duration's end: ``timestamp − duration_ms`` then lay after the
    request's real start, and the clock-skew estimate's interval missed the true offset."""
    status = http["status"]
    level = _level_for(status)
    if not logger.isEnabledFor(level):
        return
    message = f"{http['method']} {http['path']} {status}"
    exc_info = (type(error), error, error.__traceback__) if error is not None else None
    fn, lno, func, _ = logger.findCaller(False, 1)  # where logger.log() would say it was called
    for _ in range(_STAMP_TRIES):
        end = time.perf_counter()
        http["duration_ms"] = round((end - start) * 1000, 3)
        record = logger.makeRecord(logger.name, level, fn, lno, message, (), exc_info, func, {"http": http})
        if time.perf_counter() - end <= STAMP_SLACK_S:
            break
    logger.handle(record)
    if error is not None:
        # the server will log the same exception again without the request's ids; the sdk's
        # handler skips that second record (one exception, one record)
        try:
            error._logharbor_logged = True  # type: ignore[attr-defined]
        except AttributeError:
            pass


# ---------------------------------------------------------------------------------------------
# ASGI

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ASGIMiddleware:
    """Pure ASGI middleware: ``app.add_middleware(ASGIMiddleware)`` or ``ASGIMiddleware(app)``.

    ``access_log=False`` keeps the context and header but writes no access record;
    ``exclude_paths`` (exact paths, e.g. ``/healthz``) get no access record either.
    """

    def __init__(self, app: ASGIApp, *, trusted_proxies: Iterable[str] = _DEFAULT_TRUSTED,
                 access_log: bool = True, exclude_paths: Iterable[str] = (),
                 logger: logging.Logger | None = None) -> None:
        self.app = app
        self.trusted = parse_networks(trusted_proxies)
        self.access_log = access_log
        self.exclude = frozenset(exclude_paths)
        self.logger = logger or access_logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope.get("headers") or ():
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]},{text}" if name in headers else text
        ident = identity_from_headers(headers.get)
        token = _context.set(_merged(_context.get(), ident))
        start = time.perf_counter()
        state: dict[str, Any] = {"status": None, "bytes": 0}
        request_id = ident["request_id"].encode("latin-1", "replace")

        async def send_wrapper(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                state["status"] = message["status"]
                raw = list(message.get("headers") or ())
                if not any(k.lower() == b"x-request-id" for k, _ in raw):
                    raw.append((b"x-request-id", request_id))
                    message = {**message, "headers": raw}
            elif kind == "http.response.body":
                state["bytes"] += len(message.get("body") or b"")
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            error = exc
            if state["status"] is None and scope["type"] == "http" and isinstance(exc, Exception):
                await _unhandled(scope, send_wrapper, ident["request_id"])
            raise
        finally:
            try:
                if self.access_log and scope["type"] == "http" and scope.get("path") not in self.exclude:
                    self._access(scope, headers, state, start, error)
            finally:
                _context.reset(token)

    def _access(self, scope: Scope, headers: Mapping[str, str], state: dict[str, Any],
                start: float, error: BaseException | None) -> None:
        # no response started: the app failed (500), or the client went away first (499, as
        # NGINX logs it)
        status = state["status"] or (499 if isinstance(error, asyncio.CancelledError) else 500)
        peer = (scope.get("client") or (None,))[0]
        http: HttpFields = {
            "method": scope.get("method", "GET"),
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": 0.0,  # at the stamp (_log_access)
            "bytes_sent": state["bytes"],
        }
        route = scope.get("route")
        template = getattr(route, "path", None) or getattr(route, "path_format", None)
        if isinstance(template, str):
            http["route"] = scope.get("root_path", "") + template if scope.get("root_path") else template
        ip = client_ip(peer, headers.get("x-forwarded-for"), self.trusted)
        if ip:
            http["client_ip"] = ip
        for name, field in (("user-agent", "user_agent"), ("referer", "referer")):
            if headers.get(name):
                http[field] = headers[name]
        _log_access(http, self.logger, error if isinstance(error, Exception) else None, start)


#: where the request id waits in the ASGI scope for an error response built outside the middleware
_SCOPE_KEY = "logharbor.request_id"


async def _unhandled(scope: Scope, send: Send, request_id: str) -> None:
    """The 500 for an exception nothing inside handled carries ``X-Request-ID`` too.

    With ``app.add_middleware`` (Starlette, FastAPI) the 500 is sent by Starlette's
    ``ServerErrorMiddleware``, which sits outside every user middleware: its responses (the plain
    500, the debug page, the app's own 500 handler) are given the header from the scope. A bare
    ASGI app has no such layer: the middleware answers as uvicorn would (500, text/plain) through
    its own ``send``; the server still sees the exception and logs it.
    """
    errors = getattr(scope.get("app"), "middleware_stack", None)
    if _is_starlette_errors(errors):
        scope[_SCOPE_KEY] = request_id
        _tag_error_responses(errors)
        return
    body = b"Internal Server Error"
    with contextlib.suppress(Exception):  # the client went away: the app's exception is what matters
        await send({"type": "http.response.start", "status": 500,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _is_starlette_errors(layer: Any) -> bool:
    try:
        from starlette.middleware.errors import ServerErrorMiddleware
    except ImportError:
        return False
    return isinstance(layer, ServerErrorMiddleware)


def _tag_error_responses(errors: Any) -> None:
    """Wrap (once) the ways Starlette's error layer builds its 500 so each response carries the
    request id found in the request's scope."""
    if getattr(errors, "_logharbor_tagged", False):
        return

    def tag(response: Any, request: Any) -> Any:
        request_id = request.scope.get(_SCOPE_KEY) if hasattr(request, "scope") else None
        headers = getattr(response, "headers", None)
        if request_id and headers is not None and "x-request-id" not in headers:
            headers["x-request-id"] = request_id
        return response

    def sync(build: Callable[..., Any]) -> Callable[..., Any]:
        def tagged(request: Any, exc: Exception) -> Any:
            return tag(build(request, exc), request)
        return tagged

    def asynchronous(build: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def tagged(request: Any, exc: Exception) -> Any:
            return tag(await build(request, exc), request)
        return tagged

    errors.error_response = sync(errors.error_response)
    errors.debug_response = sync(errors.debug_response)
    handler = errors.handler
    if handler is not None:
        from starlette._utils import is_async_callable

        errors.handler = asynchronous(handler) if is_async_callable(handler) else sync(handler)
    errors._logharbor_tagged = True


def _merged(base: Mapping[str, Any], ident: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType({**base, **ident})


# ---------------------------------------------------------------------------------------------
# WSGI

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class WSGIMiddleware:
    """WSGI middleware: ``app.wsgi_app = WSGIMiddleware(app.wsgi_app)`` for Flask.

    The app, and the iteration of its response body, run in a copy of the caller's context
    holding the request's ids, so nothing leaks into the next request served by the same
    thread. The route template comes from Werkzeug's ``url_rule`` (Flask) when available, or
    from ``environ["logharbor.route"]`` set by any framework.
    """

    def __init__(self, app: WSGIApp, *, trusted_proxies: Iterable[str] = _DEFAULT_TRUSTED,
                 access_log: bool = True, exclude_paths: Iterable[str] = (),
                 logger: logging.Logger | None = None) -> None:
        self.app = app
        self.trusted = parse_networks(trusted_proxies)
        self.access_log = access_log
        self.exclude = frozenset(exclude_paths)
        self.logger = logger or access_logger

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        ident = identity_from_headers(lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")))
        ctx = contextvars.copy_context()
        ctx.run(_context.set, _merged(ctx.run(_context.get), ident))
        environ["logharbor.request_id"] = ident["request_id"]
        environ["logharbor.trace_id"] = ident["trace_id"]
        state: dict[str, Any] = {"status": None, "bytes": 0, "start": time.perf_counter(), "route": None}
        request_id = ident["request_id"]

        def start_wrapper(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            state["status"] = int(status.split(" ", 1)[0])
            if not any(k.lower() == "x-request-id" for k, _ in headers):
                headers = [*headers, ("X-Request-ID", request_id)]
            req = environ.get("werkzeug.request")
            rule = getattr(req, "url_rule", None)
            if rule is not None:
                state["route"] = rule.rule
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            body = ctx.run(self.app, environ, start_wrapper)
        except Exception as exc:
            ctx.run(self._access, environ, state, exc)
            raise
        return _Body(body, ctx, lambda error: self._access(environ, state, error), state)

    def _access(self, environ: dict[str, Any], state: dict[str, Any], error: BaseException | None) -> None:
        path = environ.get("PATH_INFO", "")
        if not self.access_log or path in self.exclude:
            return
        status = state["status"] or 500
        http: HttpFields = {
            "method": environ.get("REQUEST_METHOD", "GET"),
            "path": environ.get("SCRIPT_NAME", "") + path,
            "status": status,
            "duration_ms": 0.0,  # at the stamp (_log_access)
            "bytes_sent": state["bytes"],
        }
        route = environ.get("logharbor.route") or state["route"]
        if route:
            http["route"] = route
        ip = client_ip(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"), self.trusted)
        if ip:
            http["client_ip"] = ip
        for key, field in (("HTTP_USER_AGENT", "user_agent"), ("HTTP_REFERER", "referer")):
            if environ.get(key):
                http[field] = environ[key]
        _log_access(http, self.logger, error, state["start"])


class DjangoRouteMiddleware:
    """Django middleware (``MIDDLEWARE = ["logharbor.sdk.middleware.DjangoRouteMiddleware", …]``)
    that tells :class:`WSGIMiddleware` the route template (``/orders/<str:order_id>/``).

    Why a second piece: only Django's URL resolver knows the pattern, and only after routing;
    it is handed over through the WSGI environ (Django's ``request.META``). Imports nothing
    from Django, so the sdk does not depend on it.
    """

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)

    def process_view(self, request: Any, view_func: Any, view_args: Any, view_kwargs: Any) -> None:
        match = getattr(request, "resolver_match", None)
        route = getattr(match, "route", None)
        if route:
            request.META["logharbor.route"] = route if route.startswith("/") else "/" + route


class _Body:
    """The response iterable, iterated inside the request's context; logs access on close."""

    def __init__(self, body: Iterable[bytes], ctx: contextvars.Context,
                 on_close: Callable[[BaseException | None], None], state: dict[str, Any]) -> None:
        self._body = body
        self._iter: Iterator[bytes] | None = None
        self._ctx = ctx
        self._on_close = on_close
        self._state = state
        self._error: BaseException | None = None
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iter is None:
            self._iter = self._ctx.run(iter, self._body)
        try:
            chunk = self._ctx.run(next, self._iter)
        except StopIteration:
            raise
        except Exception as exc:
            self._error = exc
            raise
        self._state["bytes"] += len(chunk)
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                self._ctx.run(close)
        finally:
            self._ctx.run(self._on_close, self._error)
