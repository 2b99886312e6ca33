"""X-Request-ID on the 500 of an unhandled exception, whoever sends it (issue #22): Starlette's error
layer (its plain 500, the debug page, the app's own 500 handler) and a bare ASGI app's 500 written
by the middleware itself. In process: the ASGI calls are the real ones, only the socket is skipped."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from logharbor.sdk.middleware import ASGIMiddleware


async def _boom(request: Request) -> None:
    raise RuntimeError("kaput")


def _get(app: Any, headers: dict[str, str] | None = None, *, raise_exceptions: bool = False) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/boom", headers=headers or {})

    return asyncio.run(run())


def _app(**options: Any) -> Starlette:
    app = Starlette(routes=[Route("/boom", _boom)], **options)
    app.add_middleware(ASGIMiddleware, access_log=False)
    return app


def test_starlettes_plain_500() -> None:
    app = _app()
    for attempt in range(2):  # the first request, and one after the error layer was tagged
        response = _get(app, {"X-Request-ID": f"req-{attempt}"})
        assert response.status_code == 500 and response.text == "Internal Server Error"
        assert response.headers["x-request-id"] == f"req-{attempt}"


def test_the_apps_own_500_handler_and_the_debug_page() -> None:
    """The handler runs once (the header is added to its response, not by calling it again)."""
    calls = []

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        calls.append(exc)
        return JSONResponse({"error": str(exc)}, status_code=500)

    response = _get(_app(exception_handlers={500: handler}), {"X-Request-ID": "req-handler"})
    assert response.json() == {"error": "kaput"} and response.headers["x-request-id"] == "req-handler"
    assert len(calls) == 1
    response = _get(_app(debug=True), {"X-Request-ID": "req-debug", "Accept": "text/html"})
    assert "RuntimeError" in response.text and response.headers["x-request-id"] == "req-debug"


def test_the_exception_still_reaches_the_server() -> None:
    try:
        _get(_app(), raise_exceptions=True)  # the transport re-raises what the app raised
    except RuntimeError as exc:
        assert str(exc) == "kaput"
    else:
        raise AssertionError("the exception was swallowed")


def test_a_bare_asgi_app() -> None:
    async def bare(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("kaput")

    response = _get(ASGIMiddleware(bare, access_log=False), {"X-Request-ID": "req-bare"})
    assert response.status_code == 500 and response.text == "Internal Server Error"
    assert response.headers["x-request-id"] == "req-bare"
