"""The hot ingest routes (server/ingest/hotroutes.py) answer exactly as the router's own scan does.

The app runs in this process without its runtime (auth off: no key store), so only requests the
endpoints answer before touching the store are sent: a content type the endpoint does not take (its
415 names the types it does, so the body says which endpoint answered), a method the route does
not have, a trailing slash. Each goes through the app twice, with the hot lookup and with the
router's scan alone, and the answers must be the same bytes; with the router made unreachable the
hot paths must still answer, so the lookup is what served them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from logharbor.server.app import create_app
from logharbor.server.config import ServerConfig
from logharbor.server.ingest.hotroutes import HotRoutes

HOT = ("/api/v1/logs", "/loki/api/v1/push", "/v1/logs")


def _call(app: Any, method: str, path: str, content_type: bytes = b"text/xml",
          root_path: str = "") -> tuple[int, list[tuple[bytes, bytes]], bytes, str]:
    """Status, headers, body, and the exception the app raised after answering (a 500's), if any."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": root_path,
             "query_string": b"", "headers": [(b"content-type", content_type), (b"content-length", b"2")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080)}
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"], out["headers"] = message["status"], list(message.get("headers", []))
        else:
            out["body"] += message.get("body", b"")

    raised = ""
    try:
        asyncio.run(app(scope, receive, send))
    except AssertionError:
        raise
    except Exception as exc:  # the server-error middleware answers 500, then raises it again
        raised = f"{type(exc).__name__}: {exc}"
    return out["status"], out["headers"], out["body"], raised


@pytest.fixture()
def app(tmp_path: Path) -> Any:
    app = create_app(ServerConfig(data_dir=tmp_path, auth=False))
    _call(app, "GET", "/healthz")  # builds the middleware stack
    assert isinstance(app.router.middleware_stack, HotRoutes)
    return app


def test_hot_routes_are_the_ingest_endpoints_that_take_the_request_alone(app: Any) -> None:
    assert set(app.router.middleware_stack.routes) == {("POST", path) for path in HOT}


@pytest.mark.parametrize(("method", "path", "ctype"), [
    *(("POST", p, b"text/xml") for p in HOT),               # the endpoint's own 415
    *(("POST", p, b"application/x-ndjson") for p in HOT),    # reaches the store: 500 without a runtime
    *(("GET", p, b"text/xml") for p in HOT),                # no such method: 405 from the router
    *(("POST", p + "/", b"text/xml") for p in HOT),         # not the exact path: the router's answer
])
def test_the_answer_is_the_routers(app: Any, method: str, path: str, ctype: bytes) -> None:
    hot = app.router.middleware_stack
    got = _call(app, method, path, ctype)
    app.router.middleware_stack = hot.app  # the router's scan alone
    try:
        assert _call(app, method, path, ctype) == got
    finally:
        app.router.middleware_stack = hot


def test_the_endpoint_says_which_types_it_takes(app: Any) -> None:
    """The 415s differ by endpoint (so the comparison above tells the endpoints apart)."""
    bodies = {_call(app, "POST", path)[2] for path in HOT}
    assert all(_call(app, "POST", path)[0] == 415 for path in HOT)
    assert len(bodies) >= 2, bodies


def test_hot_paths_do_not_touch_the_router(app: Any) -> None:
    hot = app.router.middleware_stack

    async def unreachable(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"the router was asked for {scope['method']} {scope['path']}")

    hot.app = unreachable
    for path in HOT:
        assert _call(app, "POST", path)[0] == 415
    # a root_path (an app mounted below a prefix) is the router's business, as is any other path
    with pytest.raises(AssertionError, match="the router was asked"):
        _call(app, "POST", "/api/v1/logs", root_path="/prefix")
    with pytest.raises(AssertionError, match="the router was asked"):
        _call(app, "POST", "/api/v1/query")


def test_an_endpoint_with_parameters_is_refused() -> None:
    """FastAPI would fill ``index`` from the path or the query; a plain route cannot, so such an
    endpoint (Elasticsearch's ``_bulk``) is refused at start rather than served without it."""
    async def bulk(request: Any, index: str | None = None) -> Any:
        raise AssertionError("never called")

    async def router(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="also takes index"):
        HotRoutes(router, {("POST", "/_bulk"): bulk})
