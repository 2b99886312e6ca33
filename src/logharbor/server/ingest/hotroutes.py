"""The busiest ingest endpoints found by one dict lookup, not by the router's scan of every route.

FastAPI's router tries its routes in order, each included router's candidates in turn with its
own scope bookkeeping; ``POST /api/v1/logs`` is among the last routes registered, so every
ingest request paid for the whole scan (bench/README.md "The HTTP path"). :class:`HotRoutes` sits
*inside* the app's exception middleware, where the router itself is (it wraps
``app.router.middleware_stack``), so a hot request goes through the same middleware (limits,
compression, auth), the same exception handlers and the same endpoint as before; only the
finding of the route is a lookup of the exact method and path. Anything else — another method,
a trailing slash, an ASGI ``root_path`` — goes to the router as before, and the routes stay
registered there too (OpenAPI, 405 for other methods).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["Endpoint", "HotRoutes"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: an endpoint that takes the request alone and returns its response (no path or query parameters)
Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    """Pure ASGI: ``(method, path)`` → a plain Starlette route for it; the rest to ``app``."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Endpoint]) -> None:
        for (method, path), endpoint in routes.items():
            # FastAPI fills an endpoint's other parameters from the path or the query; a plain route
            # would leave them at their defaults without a word
            others = list(inspect.signature(endpoint).parameters)[1:]
            if others:
                raise ValueError(f"{method} {path}: {endpoint.__qualname__} also takes {', '.join(others)}; "
                                 "only an endpoint of the request alone can skip the router")
        self.app = app
        self.routes = {(method, path): Route(path, endpoint, methods=[method])
                       for (method, path), endpoint in routes.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self.routes.get((scope["method"], scope["path"]))
            if route is not None:
                scope["endpoint"], scope["path_params"] = route.endpoint, {}
                await route.handle(scope, receive, send)
                return
        await self.app(scope, receive, send)
