"""Two real services: FastAPI calls Flask through the propagation helper; one trace across both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sdk_helpers import AppProcess, free_port


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[AppProcess, AppProcess]]:
    web = AppProcess("flask_app.py", tmp_path, free_port())
    api = AppProcess("fastapi_app.py", tmp_path, free_port(), DOWNSTREAM_URL=web.url)
    yield api, web
    api.stop()
    web.stop()


def test_one_trace_across_services(services: tuple[AppProcess, AppProcess]) -> None:
    api, web = services
    trace = "aaaabbbbccccddddeeeeffff00001111"
    response = httpx.get(api.url + "/checkout", headers={
        "X-Request-ID": "edge-1", "traceparent": f"00-{trace}-0102030405060708-01"})
    assert response.json() == {"downstream_status": 200}
    upstream = api.wait_for(lambda line: line.get("request_id") == "edge-1", 2)
    downstream = web.wait_for(lambda line: line.get("request_id") == "edge-1", 3)
    assert {line["trace_id"] for line in upstream + downstream} == {trace}
    api_span = upstream[0]["span_id"]
    assert upstream[0]["parent_span_id"] == "0102030405060708"
    # the callee saw the caller's span as its parent, and has a span of its own
    assert {line["parent_span_id"] for line in downstream} == {api_span}
    assert {line["span_id"] for line in downstream} != {api_span}
    assert downstream[-1]["http"]["route"] == "/orders/<order_id>"
    assert upstream[-1]["http"]["route"] == "/checkout"
