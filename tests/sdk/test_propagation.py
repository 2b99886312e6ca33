"""Outgoing calls carry the request's ids: the callee's lines join the caller's trace."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import requests

from logharbor import sdk

TRACE = "5759e988bd862e3fe1be46a994272793"


@pytest.fixture
def echo() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_headers_inside_and_outside_a_request() -> None:
    assert sdk.outgoing_headers() == {}
    with sdk.context(trace_id=TRACE, span_id="53995c3f42cd8ad8", request_id="r-1"):
        assert sdk.outgoing_headers() == {"traceparent": f"00-{TRACE}-53995c3f42cd8ad8-01",
                                          "X-Request-ID": "r-1"}


def test_httpx_sync_and_async(echo: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = echo
    client = sdk.propagate_httpx(httpx.Client())
    with sdk.context(trace_id=TRACE, span_id="1111111111111111", request_id="r-httpx"):
        client.get(url)
        client.get(url, headers={"X-Request-ID": "explicit"})  # the caller's own header wins
    client.get(url)  # outside a request: nothing added
    client.close()

    async def call() -> None:
        async with sdk.propagate_httpx(httpx.AsyncClient()) as aclient:
            with sdk.context(trace_id=TRACE, span_id="2222222222222222", request_id="r-async"):
                await aclient.get(url)

    asyncio.run(call())
    assert seen[0]["traceparent"] == f"00-{TRACE}-1111111111111111-01"
    assert seen[0]["x-request-id"] == "r-httpx"
    assert seen[1]["x-request-id"] == "explicit"
    assert "traceparent" not in seen[2] and "x-request-id" not in seen[2]
    assert seen[3]["traceparent"] == f"00-{TRACE}-2222222222222222-01"
    assert seen[3]["x-request-id"] == "r-async"


def test_requests_session(echo: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = echo
    session = sdk.propagate_requests(requests.Session())
    with sdk.context(trace_id=TRACE, span_id="3333333333333333", request_id="r-req"):
        session.get(url, timeout=10)
    session.close()
    assert seen[0]["traceparent"] == f"00-{TRACE}-3333333333333333-01"
    assert seen[0]["x-request-id"] == "r-req"
