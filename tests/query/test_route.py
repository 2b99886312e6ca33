"""The query route over a real chDB store, in process (the route logic, errors and streaming)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import orjson
import pytest
from fastapi import FastAPI

from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.errors import ApiError, api_error_handler
from logharbor.server.features.query.routes import query_router

from .corpus import T1


class AsgiClient:
    """Calls the ASGI app directly (httpx's ASGI transport), one event loop per request."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await c.post(url, **kwargs)

        return anyio.run(call)


@pytest.fixture
def client(golden_store: EmbeddedStore) -> AsgiClient:
    app = FastAPI()
    app.add_exception_handler(ApiError, api_error_handler)
    app.include_router(query_router())
    app.state.store = golden_store
    return AsgiClient(app)


WINDOW = {"from": "2026-11-01T12:00:00Z", "to": "2026-11-01T12:20:00Z"}


def test_records_in_wire_form(client: AsgiClient) -> None:
    response = client.post("/api/v1/query", json={"q": f"trace_id:{T1}", **WINDOW})
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "records"
    assert len(body["rows"]) == 1
    row = body["rows"][0]
    assert row["timestamp"] == "2026-11-01T12:00:00.000000Z"
    assert row["http"] == {"method": "POST", "path": "/api/orders", "status": 502, "duration_ms": 1234.5}
    assert row["user_id"] == "u-123" and row["rid"] == "r01"
    assert set(body["columns"]) >= {"timestamp", "level", "service", "message", "http", "rid"}
    assert body["stats"]["elapsed_ms"] >= 0
    assert set(body["stats"]) == {"rows_scanned", "bytes_scanned", "elapsed_ms"}


def test_stats_table(client: AsgiClient) -> None:
    q = "level:ERROR | stats count() as n by service"
    body = client.post("/api/v1/query", json={"q": q, **WINDOW}).json()
    assert body["kind"] == "table"
    assert body["columns"] == ["service", "n"]
    assert body["rows"] == [{"service": "api", "n": 1}, {"service": "billing", "n": 1},
                            {"service": "checkout", "n": 2}, {"service": "edge", "n": 1}]


def test_time_window_and_limit(client: AsgiClient) -> None:
    body = client.post("/api/v1/query", json={"q": "*", "from": "2026-11-01T12:10:00Z",
                                              "to": "2026-11-01T12:15:00Z", "limit": 2}).json()
    assert [r["rid"] for r in body["rows"]] == ["r15", "r14"]
    epoch = client.post("/api/v1/query", json={"q": "*", "from": 1793534400, "to": 1793534460}).json()
    assert [r["rid"] for r in epoch["rows"]] == ["r01"]


def test_syntax_error_is_400_with_position(client: AsgiClient) -> None:
    response = client.post("/api/v1/query", json={"q": "status:"})
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "query_syntax", "position": 7,
                                         "message": "expected a value after 'status:' at 7"}}


@pytest.mark.parametrize(("body", "code"), [
    ({"q": "* | stats median(x)"}, "unknown_function"),
    ({"q": "status:abc"}, "type_mismatch"),
    ({"q": "/a(?=b)/"}, "invalid_regex"),
    ({"q": "*", "from": "last tuesday"}, "invalid_time"),
    ({"q": "*", "from": "now", "to": "now-1h"}, "invalid_time"),
])
def test_other_errors_are_400(client: AsgiClient, body: dict[str, str], code: str) -> None:
    response = client.post("/api/v1/query", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_ndjson_stream(client: AsgiClient) -> None:
    response = client.post("/api/v1/query", json={"q": "*", "limit": 1000, **WINDOW},
                           headers={"Accept": "application/x-ndjson"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    rows = [orjson.loads(line) for line in response.content.splitlines()]
    assert [r["rid"] for r in rows] == [f"r{n:02d}" for n in range(20, 0, -1)]
    table = client.post("/api/v1/query", json={"q": "* | top 1 service", **WINDOW},
                        headers={"Accept": "application/x-ndjson"})
    lines = [orjson.loads(line) for line in table.content.splitlines()]
    assert lines == [{"service": "checkout", "count": 4}]


def test_ndjson_error_before_rows_is_a_status(client: AsgiClient) -> None:
    response = client.post("/api/v1/query", json={"q": "(oops"}, headers={"Accept": "application/x-ndjson"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "query_syntax"


def test_query_over_its_budget_is_cancelled(golden_store: EmbeddedStore) -> None:
    app = FastAPI()
    app.add_exception_handler(ApiError, api_error_handler)
    app.include_router(query_router())
    app.state.store = golden_store
    config = SimpleNamespace(query_default_limit=100, query_max_limit=10_000, query_timeout_s=30.0,
                             query_max_memory_bytes=1)  # one byte: any real query is over it
    app.state.runtime = SimpleNamespace(config=config)
    response = AsgiClient(app).post("/api/v1/query", json={"q": "* | stats count() by service"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "query_cancelled"
    assert "budget" in error["message"]


def test_server_default_limit_from_config(golden_store: EmbeddedStore) -> None:
    app = FastAPI()
    app.include_router(query_router())
    app.state.store = golden_store
    config = SimpleNamespace(query_default_limit=3, query_max_limit=5, query_timeout_s=30.0,
                             query_max_memory_bytes=1 << 30)
    app.state.runtime = SimpleNamespace(config=config)
    client = AsgiClient(app)
    assert len(client.post("/api/v1/query", json={"q": "*"}).json()["rows"]) == 3
    assert len(client.post("/api/v1/query", json={"q": "*", "limit": 50}).json()["rows"]) == 5
    streamed = client.post("/api/v1/query", json={"q": "*", "limit": 50},
                           headers={"Accept": "application/x-ndjson"})
    assert len(streamed.content.splitlines()) == 20  # exports are not capped by query_max_limit


def test_query_over_its_time_budget_is_cancelled(golden_store: EmbeddedStore) -> None:
    app = FastAPI()
    app.add_exception_handler(ApiError, api_error_handler)
    app.include_router(query_router())
    app.state.store = golden_store
    config = SimpleNamespace(query_default_limit=100, query_max_limit=10_000, query_timeout_s=1e-6,
                             query_max_memory_bytes=1 << 30)  # one microsecond: nothing finishes
    app.state.runtime = SimpleNamespace(config=config)
    response = AsgiClient(app).post("/api/v1/query", json={"q": "/a.*b/ | stats count() by service"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "query_cancelled"


class StoreWithStats:
    """A store that reports what the engine read (the optional ``query_with_stats`` hook)."""

    def __init__(self, inner: EmbeddedStore) -> None:
        self.inner = inner
        self.table = inner.table
        self.patterns_name = inner.patterns_name
        self.free_text_name = inner.free_text_name

    def query_with_stats(self, sql: str, params: dict[str, Any], *, settings: Any = None
                         ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        rows = self.inner.query(sql, params, settings=settings)
        return rows, {"rows_read": 20, "bytes_read": 4096}

    def query(self, sql: str, params: dict[str, Any], *, settings: Any = None) -> list[dict[str, Any]]:
        raise AssertionError("the route must prefer query_with_stats")

    def stream(self, sql: str, params: dict[str, Any], *, settings: Any = None) -> Any:
        return self.inner.stream(sql, params, settings=settings)


def test_scan_statistics_come_from_the_store_when_it_has_them(golden_store: EmbeddedStore) -> None:
    app = FastAPI()
    app.include_router(query_router())
    app.state.store = StoreWithStats(golden_store)
    body = AsgiClient(app).post("/api/v1/query", json={"q": "* | stats count()"}).json()
    assert body["rows"] == [{"count()": 20}]
    assert body["stats"]["rows_scanned"] == 20 and body["stats"]["bytes_scanned"] == 4096
