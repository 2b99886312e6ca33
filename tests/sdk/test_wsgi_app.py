"""A Flask app under a real waitress process: the same identity rules, route templates, streaming."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sdk_helpers import AppProcess, free_port

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    proc = AppProcess("flask_app.py", tmp_path_factory.mktemp("wsgi"), free_port())
    yield proc
    proc.stop()


def _lines(app: AppProcess, request_id: str, count: int) -> list[dict]:
    return app.wait_for(lambda line: line.get("request_id") == request_id, count)


def test_traceparent_route_and_access(app: AppProcess) -> None:
    response = httpx.get(app.url + "/orders/o-9?user=u-9", headers={
        "X-Request-ID": "wsgi-1", "traceparent": f"00-{TRACE}-b7ad6b7169203331-01",
        "X-Forwarded-For": "198.51.100.1"})
    assert response.headers["X-Request-ID"] == "wsgi-1"
    looked, done, access = _lines(app, "wsgi-1", 3)
    for line in (looked, done, access):
        assert line["service"] == "shop-web" and line["instance"] == "shop-web-1"
        assert line["trace_id"] == TRACE
        assert line["parent_span_id"] == "b7ad6b7169203331"
    assert looked["user_id"] == "u-9" and looked["order_id"] == "o-9" and looked["items"] == 3
    assert access["message"] == "GET /orders/o-9 200"
    http = access["http"]
    assert http["route"] == "/orders/<order_id>"
    assert http["status"] == 200 and http["method"] == "GET" and http["path"] == "/orders/o-9"
    assert http["bytes_sent"] == len(response.content)
    assert http["duration_ms"] > 0
    # no proxy is trusted in this app: X-Forwarded-For is ignored
    assert http["client_ip"] == "127.0.0.1"


def test_amzn_and_generated_ids(app: AppProcess) -> None:
    httpx.get(app.url + "/orders/o-10", headers={
        "X-Amzn-Trace-Id": "Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678",
        "X-Request-ID": "wsgi-amzn"})
    assert {line["trace_id"] for line in _lines(app, "wsgi-amzn", 3)} == {"67891233abcdef012345678912345678"}
    response = httpx.get(app.url + "/orders/o-11")
    rid = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert len({line["trace_id"] for line in _lines(app, rid, 3)}) == 1


def test_streamed_body_keeps_the_context(app: AppProcess) -> None:
    response = httpx.get(app.url + "/stream", headers={"X-Request-ID": "wsgi-stream"})
    assert response.text == "part0\npart1\npart2\n"
    lines = _lines(app, "wsgi-stream", 4)
    assert [line.get("i") for line in lines[:3]] == [0, 1, 2]
    assert lines[3]["http"]["bytes_sent"] == len(response.content)
    assert lines[3]["http"]["route"] == "/stream"


def test_flask_error_logged_with_ids(app: AppProcess) -> None:
    response = httpx.get(app.url + "/boom", headers={"X-Request-ID": "wsgi-boom"})
    assert response.status_code == 500
    error, access = _lines(app, "wsgi-boom", 2)
    assert error["level"] == "ERROR"
    assert error["error"]["type"] == "KeyError"
    assert "raise KeyError" in error["error"]["stack"]
    assert access["http"]["status"] == 500 and access["level"] == "ERROR"


def test_concurrent_requests_do_not_leak(app: AppProcess) -> None:
    n = 24

    def call(i: int) -> int:
        return httpx.get(app.url + f"/orders/w-{i}?user=wu-{i}&delay=0.05",
                         headers={"X-Request-ID": f"wconc-{i}"}, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert set(pool.map(call, range(n))) == {200}
    lines = app.wait_for(lambda line: str(line.get("request_id", "")).startswith("wconc-"), 3 * n)
    for line in lines:
        i = line["request_id"].removeprefix("wconc-")
        if line["logger"] == "web":
            assert line["user_id"] == f"wu-{i}" and line["order_id"] == f"w-{i}"
        else:
            assert "user_id" not in line
            assert line["http"]["path"] == f"/orders/w-{i}"
    # a waitress thread serves many requests: nothing of one is left for the next
    leftovers = [line for line in app.lines() if line.get("logger") == "web" and "request_id" not in line]
    assert leftovers == []
