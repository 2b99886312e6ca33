"""The whole reference stack on loopback: real nginx, two real app processes on the sdk, the ALB
stand-in, the agent and the server. Each request's trace holds exactly its ALB, NGINX and app
records, whether or not it arrived with an X-Amzn-Trace-Id (issue 8)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import ServerProcess

from logharbor.demo.nginx import NginxNotFound, find_nginx
from logharbor.demo.stack import RequestResult, Stack, StackTraffic


def trace_of(server: ServerProcess, ident: str) -> dict | None:  # type: ignore[type-arg]
    response = httpx.get(server.url + f"/api/v1/traces/{ident}", headers=server.headers, timeout=30)
    return response.json() if response.status_code == 200 else None


def complete(trace: dict | None) -> bool:  # type: ignore[type-arg]
    return trace is not None and {"alb", "nginx", "app"} <= {r.get("source") for r in trace["records"]}


def test_each_request_is_one_story_across_three_layers(tmp_path: Path, server: ServerProcess) -> None:
    try:
        find_nginx()
    except NginxNotFound as exc:
        pytest.fail(f"{exc}: the test needs Debian's nginx")
    stack = Stack(tmp_path / "stack", server.url, server.create_key("writer"))
    stack.start()
    traffic = StackTraffic(stack.front_url, seed=3)
    try:
        sent: list[RequestResult] = []
        for i in range(24):
            sent.append(traffic.one(with_trace=i % 2 == 0))
        assert all(r.request_id for r in sent), "nginx's request id must come back as X-Request-ID"
        deadline = time.monotonic() + 90
        traces: dict[str, dict | None] = {}  # type: ignore[type-arg]
        while time.monotonic() < deadline:
            traces = {r.request_id: trace_of(server, r.sent_trace.split("Root=")[1] if r.sent_trace
                                             else r.request_id) for r in sent if r.request_id}
            if all(complete(t) for t in traces.values()):
                break
            time.sleep(1)
    finally:
        traffic.close()
        stack.stop()
    for result in sent:
        trace = traces[result.request_id]
        assert complete(trace), (result, trace and trace.get("layers"))
        assert trace is not None
        by_source: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for record in trace["records"]:
            by_source.setdefault(record["source"], []).append(record)
        assert len(by_source["alb"]) == 1 and len(by_source["nginx"]) == 1, result
        assert {r.get("request_id") for r in by_source["nginx"] + by_source["app"]} == {result.request_id}
        assert len({r["trace_id"] for r in trace["records"]}) == 1  # one normalized trace id
        if result.sent_trace:
            root = result.sent_trace.split("Root=1-")[1].replace("-", "")
            assert trace["records"][0]["trace_id"] == root
        assert by_source["alb"][0]["http"]["status"] == result.status
        assert any(r.get("logger") == "logharbor.access" for r in by_source["app"])
