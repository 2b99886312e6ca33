"""A FastAPI app under a real uvicorn process: ids from each header form, access records, no leaks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sdk_helpers import AppProcess, free_port

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    proc = AppProcess("fastapi_app.py", tmp_path_factory.mktemp("asgi"), free_port())
    yield proc
    proc.stop()


def _request_lines(app: AppProcess, request_id: str, count: int) -> list[dict]:
    return app.wait_for(lambda line: line.get("request_id") == request_id, count)


def _static(line: dict) -> None:
    assert line["service"] == "shop-api"
    assert line["env"] == "test"
    assert line["version"] == "9.9.9"
    assert line["instance"] == "shop-api-1"
    assert line["host"]
    assert line["source"] == "app"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"])


def test_traceparent_and_request_id(app: AppProcess) -> None:
    response = httpx.get(app.url + "/orders/o-1?user=u-1", headers={
        "X-Request-ID": "req-tp-1", "traceparent": f"00-{TRACE}-{PARENT}-01",
        "User-Agent": "pytest-agent/1.0", "Referer": "http://shop.example/cart"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-tp-1"
    lines = _request_lines(app, "req-tp-1", 3)
    looked, done, access = lines
    for line in lines:
        _static(line)
        assert line["trace_id"] == TRACE
        assert HEX16.match(line["span_id"]) and line["span_id"] != PARENT
        assert line["parent_span_id"] == PARENT
    assert len({line["span_id"] for line in lines}) == 1
    assert looked["message"] == "order looked up"
    assert looked["level"] == "INFO"
    assert looked["logger"] == "shop"
    assert looked["order_id"] == "o-1" and looked["items"] == 3 and looked["total"] == 12.5
    assert looked["user_id"] == "u-1"
    assert done["paid"] is True
    assert access["logger"] == "logharbor.access"
    assert "user_id" not in access  # bound inside the handler's block only
    assert access["message"] == "GET /orders/o-1 200"
    http = access["http"]
    assert http["method"] == "GET" and http["path"] == "/orders/o-1" and http["status"] == 200
    assert http["route"] == "/orders/{order_id}"
    assert http["client_ip"] == "127.0.0.1"
    assert http["user_agent"] == "pytest-agent/1.0"
    assert http["referer"] == "http://shop.example/cart"
    assert http["bytes_sent"] == len(response.content)
    assert isinstance(http["duration_ms"], float) and http["duration_ms"] > 0
    # the response body shows the context the handler saw
    assert response.json()["context"]["trace_id"] == TRACE


def test_amzn_trace_id(app: AppProcess) -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    response = httpx.get(app.url + "/orders/o-2", headers={"X-Amzn-Trace-Id": header,
                                                            "X-Request-ID": "req-amzn-1"})
    assert response.headers["x-request-id"] == "req-amzn-1"
    lines = _request_lines(app, "req-amzn-1", 3)
    for line in lines:
        assert line["trace_id"] == "5759e988bd862e3fe1be46a994272793"
        assert line["trace_header"] == header
        assert "parent_span_id" not in line


def test_ids_generated_when_absent(app: AppProcess) -> None:
    response = httpx.get(app.url + "/orders/o-3")
    request_id = response.headers["x-request-id"]
    assert HEX32.match(request_id)
    lines = _request_lines(app, request_id, 3)
    trace_ids = {line["trace_id"] for line in lines}
    assert len(trace_ids) == 1
    assert HEX32.match(trace_ids.pop())


def test_hex_request_id_doubles_as_trace(app: AppProcess) -> None:
    rid = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    httpx.get(app.url + "/orders/o-4", headers={"X-Request-ID": rid})
    assert {line["trace_id"] for line in _request_lines(app, rid, 3)} == {rid}


def test_forwarded_for_through_trusted_proxies(app: AppProcess) -> None:
    # peer 127.0.0.1 is trusted, 10.1.2.3 is trusted, 203.0.113.7 is the client; the left-most
    # entry is whatever the client claimed and must not win
    httpx.get(app.url + "/orders/o-5", headers={"X-Request-ID": "req-xff",
                                                 "X-Forwarded-For": "6.6.6.6, 203.0.113.7, 10.1.2.3"})
    access = _request_lines(app, "req-xff", 3)[-1]
    assert access["http"]["client_ip"] == "203.0.113.7"


def test_error_is_one_record_with_the_stack(app: AppProcess) -> None:
    response = httpx.get(app.url + "/boom", headers={"X-Request-ID": "req-boom"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-boom"  # Starlette's own 500 carries it too (#22)
    assert response.text == "Internal Server Error"
    access = [line for line in _request_lines(app, "req-boom", 1) if line["logger"] == "logharbor.access"]
    assert len(access) == 1
    record = access[0]
    assert record["level"] == "ERROR"
    assert record["http"]["status"] == 500 and record["http"]["route"] == "/boom"
    assert record["error"]["type"] == "ValueError"
    assert record["error"]["message"] == "kaput"
    assert "Traceback (most recent call last)" in record["error"]["stack"]
    assert 'raise ValueError("kaput")' in record["error"]["stack"]
    # uvicorn logs the exception again, without the request's ids: that copy is skipped. A later
    # request's lines are written after it would have been, so their presence settles it.
    httpx.get(app.url + "/orders/after-boom", headers={"X-Request-ID": "req-after-boom"})
    _request_lines(app, "req-after-boom", 3)
    kaput = [line for line in app.lines() if line.get("error", {}).get("message") == "kaput"]
    assert len(kaput) == 1


def test_redaction_in_the_app(app: AppProcess) -> None:
    httpx.post(app.url + "/pay", headers={"X-Request-ID": "req-pay"},
               json={"email": "alice@example.com", "card": "4111 1111 1111 1111", "password": "hunter2"})
    warn = _request_lines(app, "req-pay", 2)[0]
    assert warn["level"] == "WARN"
    assert warn["message"] == "payment declined for [EMAIL]"
    assert warn["card"] == "[CARD]"
    assert warn["password"] == "[REDACTED]"
    assert warn["tags"] == ["a", "b"]


def test_concurrent_requests_do_not_leak(app: AppProcess) -> None:
    n = 40

    def call(i: int) -> httpx.Response:
        return httpx.get(app.url + f"/orders/c-{i}?user=user-{i}&delay=0.05",
                         headers={"X-Request-ID": f"conc-{i}"}, timeout=30)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(call, range(n)))
    assert all(r.status_code == 200 for r in responses)
    lines = app.wait_for(lambda line: str(line.get("request_id", "")).startswith("conc-"), 3 * n)
    traces: dict[str, set[str]] = {}
    for line in lines:
        i = line["request_id"].removeprefix("conc-")
        traces.setdefault(line["request_id"], set()).add(line["trace_id"])
        if line["logger"] == "shop":
            assert line["user_id"] == f"user-{i}"
            assert line["order_id"] == f"c-{i}"
        else:
            assert line["http"]["path"] == f"/orders/c-{i}"
    assert all(len(ids) == 1 for ids in traces.values())
    assert len({next(iter(ids)) for ids in traces.values()}) == n


def test_server_lines_are_json_too(app: AppProcess) -> None:
    # uvicorn's own startup line was adopted by configure() and written as a canonical record
    started = [line for line in app.lines() if line.get("logger") == "uvicorn.error"]
    assert any("Uvicorn running" in line["message"] for line in started)


def test_every_line_is_canonical_json(app: AppProcess, tmp_path: Path) -> None:
    for line in app.lines():
        assert line["level"] in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
        _static(line)


def test_a_500_without_a_request_id_gets_the_generated_one(app: AppProcess) -> None:
    response = httpx.get(app.url + "/boom")
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    assert HEX32.match(request_id)
    access = [line for line in _request_lines(app, request_id, 1) if line["logger"] == "logharbor.access"]
    assert access[0]["http"]["status"] == 500
