"""The HTTP exchanges Grafana's Loki data source makes, replayed and checked against Loki's shapes.

Parameters as Grafana's backend sends them (pkg/tsdb/loki/api.go ``makeDataRequest``): ``query``,
``direction`` (``backward``/``forward``, possibly empty), ``limit`` only when max lines is set,
``start``/``end`` as ns epoch and ``step`` as ``<ms>ms`` for range queries, ``time`` in ns for
instant ones; the health check is the instant query ``vector(1)+vector(1)`` (healthcheck.go);
errors are read from the JSON ``message`` field. Shapes follow Loki's HTTP API documentation.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

from .conftest import END_NS, NS, START_NS, T12, get

NS_TEXT = re.compile(r"\d{19}")


def check_streams(result: list[Any]) -> None:
    for stream in result:
        assert set(stream) == {"stream", "values"}
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in stream["stream"].items())
        for entry in stream["values"]:
            assert len(entry) == 2 and NS_TEXT.fullmatch(entry[0]) and isinstance(entry[1], str)


def check_samples(points: list[Any]) -> None:
    for t, v in points:
        assert isinstance(t, int | float) and isinstance(v, str)
        float(v)


def check_success(response: httpx.Response, result_type: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "success"
    data = body["data"]
    assert data["resultType"] == result_type
    if result_type == "streams":
        check_streams(data["result"])
    elif result_type == "matrix":
        for series in data["result"]:
            assert set(series) == {"metric", "values"}
            check_samples(series["values"])
    elif result_type == "vector":
        for sample in data["result"]:
            assert set(sample) == {"metric", "value"}
            check_samples([sample["value"]])
    return data


def test_health_check(loki: ServerProcess) -> None:
    at = time.time_ns()
    data = check_success(get(loki, "/loki/api/v1/query", query="vector(1)+vector(1)", time=str(at),
                             direction=""), "vector")
    assert data["result"] == [{"metric": {}, "value": [at / NS, "2"]}]
    assert get(loki, "/loki/api/v1/status/buildinfo").json()["version"].startswith("3.")
    ready = get(loki, "/ready")
    assert ready.status_code == 200 and ready.text.strip() == "ready"


def test_explore_logs_and_volume(loki: ServerProcess) -> None:
    logs = check_success(get(loki, "/loki/api/v1/query_range", query='{service="checkout"} |= "payment"',
                             direction="backward", limit="1000", start=str(START_NS), end=str(END_NS),
                             step="14400ms"), "streams")
    entries = sorted((int(ts), line) for s in logs["result"] for ts, line in s["values"])
    assert [line for _, line in entries] == ["payment declined for order o-42", "payment accepted",
                                             "retrying payment after timeout",
                                             "payment declined: insufficient funds"]
    assert entries[0][0] == T12 * NS
    for stream in logs["result"]:  # backward: newest first in each stream
        stamps = [int(ts) for ts, _ in stream["values"]]
        assert stamps == sorted(stamps, reverse=True)
    volume = check_success(httpx.get(
        loki.url + "/loki/api/v1/query_range", auth=("grafana", loki.api_key), timeout=30,
        headers={"X-Query-Tags": "Source=logvolhist"},
        params={"query": 'sum by (level, detected_level) (count_over_time({service="checkout"} '
                         '|= "payment" | drop __error__[60s]))',
                "direction": "backward", "start": str(START_NS), "end": str(END_NS), "step": "60000ms"}),
        "matrix")
    totals = {s["metric"]["level"]: sum(float(v) for _, v in s["values"]) for s in volume["result"]}
    assert totals == {"ERROR": 2.0, "INFO": 1.0, "WARN": 1.0}
    # Loki's detected_level is in lower case (Drilldown colours and filters levels by those names)
    assert all(s["metric"]["detected_level"] == s["metric"]["level"].lower() for s in volume["result"])


def test_label_browser_and_hints(loki: ServerProcess) -> None:
    window = {"start": str(START_NS), "end": str(END_NS)}
    labels = get(loki, "/loki/api/v1/labels", **window).json()
    assert labels["status"] == "success"
    assert {"service", "level", "host", "env", "source", "user_id", "http_status", "order_items_sku"} <= \
        set(labels["data"])
    values = get(loki, "/loki/api/v1/label/service/values", **window).json()["data"]
    assert values == sorted({"checkout", "api", "auth", "billing", "edge", "search", "i18n", "worker"})
    scoped = get(loki, "/loki/api/v1/label/host/values", query='{service="checkout"}', **window).json()
    assert scoped["data"] == ["web-1", "web-2", "web-3"]
    series = get(loki, "/loki/api/v1/series", **{"match[]": '{service="edge"}'}, **window).json()
    assert series["status"] == "success"
    assert sorted(series["data"], key=lambda s: s["level"]) == [
        {"service": "edge", "level": "ERROR", "host": "alb", "env": "prod", "source": "alb"},
        {"service": "edge", "level": "INFO", "host": "alb", "env": "prod", "source": "alb"}]
    stats = get(loki, "/loki/api/v1/index/stats", query='{service="edge"}', **window).json()
    assert stats == {"streams": 2, "chunks": 2, "entries": 2,
                     "bytes": len("GET https://shop.example/ 200POST https://shop.example/api/orders 502")}
    fields = get(loki, "/loki/api/v1/detected_fields", query='{service="worker"}', **window).json()
    by_name = {f["label"]: f for f in fields["fields"]}
    assert by_name["n"]["type"] == "float" and by_name["n"]["cardinality"] == 3
    assert by_name["n"]["parsers"] == ["json"] and by_name["service"]["parsers"] is None


@pytest.mark.parametrize(("query", "named"), [
    ('{service="api"} | line_format `{{ printf "%s" .a }}`', "template action"),
    ('{service!="api"}', "at least one regexp or equality matcher"),
    ('sum(rate({service="api"}[1m])) > {service="api"}', "not a log query"),
    ('{service="api"', "expected"),
])
def test_errors_carry_a_message_grafana_shows(loki: ServerProcess, query: str, named: str) -> None:
    response = get(loki, "/loki/api/v1/query_range", query=query, start=str(START_NS), end=str(END_NS))
    assert response.status_code == 400
    body = response.json()
    assert named in body["message"] and body["error"]["code"] == "invalid_logql"


def test_division_by_zero_is_nan_as_in_loki(loki: ServerProcess) -> None:
    data = check_success(get(loki, "/loki/api/v1/query", time=str((T12 + 20 * 60) * NS),
                             query='sum(count_over_time({service="checkout"}[30m])) / 0'), "vector")
    assert data["result"] == [{"metric": {}, "value": [T12 + 20 * 60, "NaN"]}]  # Loki's MergeBinOp


def test_quantile_with_a_range_other_than_the_step(loki: ServerProcess) -> None:
    """Read from the records themselves (samples.py), so no longer refused."""
    data = check_success(get(loki, "/loki/api/v1/query_range", step="60000ms", start=str(START_NS),
                             end=str(END_NS), query='quantile_over_time(0.5, {service="api"} | unwrap duration_ms '
                             '[5m]) by (service)'), "matrix")
    assert data["result"] and all(s["metric"] == {"service": "api"} for s in data["result"])


def _push(server: ServerProcess, key: str, records: list[dict[str, Any]]) -> None:
    body = b"\n".join(orjson.dumps(r) for r in records)
    response = httpx.post(server.url + "/api/v1/logs", content=body, timeout=30,
                          headers={"authorization": f"Bearer {key}", "content-type": "application/x-ndjson"})
    assert response.status_code == 200 and response.json()["accepted"] == len(records), response.text


def test_live_tail_over_websocket(loki: ServerProcess) -> None:
    from websockets.sync.client import connect

    query = '{service="tail-svc"} |= "tick" | line_format "{{.service}}: {{__line__}}"'
    url = loki.url.replace("http://", "ws://") + "/loki/api/v1/tail?" + urlencode({"query": query})
    with connect(url, additional_headers={"authorization": f"Bearer {loki.api_key}"}, open_timeout=10) as ws:
        time.sleep(0.5)  # subscribed before the write
        _push(loki, loki.api_key, [{"service": "tail-svc", "source": "lab", "env": "lab", "message": "tick 1"},
                                   {"service": "tail-svc", "source": "lab", "env": "lab", "message": "tock"}])
        seen: list[tuple[dict[str, str], str]] = []
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            message = orjson.loads(ws.recv(timeout=20))
            check_streams(message["streams"])
            seen += [(s["stream"], line) for s in message["streams"] for _, line in s["values"]]
    assert [line for _, line in seen] == ["tail-svc: tick 1"]
    assert seen[0][0]["service"] == "tail-svc"


def test_tenant_header_within_the_key_scope(loki: ServerProcess) -> None:
    writer = loki.create_key("writer", tenant="acme")
    _push(loki, writer, [{"service": "tenant-svc", "source": "lab", "env": "lab", "message": "acme only"}])
    assert loki.wait_rows(1) > 0
    deadline = time.monotonic() + 10
    params = {"query": '{service="tenant-svc"}', "start": str(time.time_ns() - 3600 * NS)}

    def lines(key: str, tenant: str | None) -> httpx.Response:
        headers = {"X-Scope-OrgID": tenant} if tenant else {}
        return httpx.get(loki.url + "/loki/api/v1/query_range", params=params, auth=("grafana", key),
                         headers=headers, timeout=30)

    while time.monotonic() < deadline and not lines(loki.api_key, "acme").json()["data"]["result"]:
        time.sleep(0.2)
    assert lines(loki.api_key, "acme").json()["data"]["result"][0]["values"][0][1] == "acme only"
    assert lines(loki.api_key, "other").json()["data"]["result"] == []
    assert lines(loki.api_key, "other|acme").json()["data"]["result"] != []
    reader = loki.create_key("reader", tenant="acme")
    assert lines(reader, None).json()["data"]["result"] != []
    assert lines(reader, "acme").status_code == 200
    denied = lines(reader, "other")
    assert denied.status_code == 403 and "acme" not in denied.text
    other = loki.create_key("reader", tenant="globex")
    assert lines(other, None).json()["data"]["result"] == []  # the key's own scope applies anyway


def test_volume_endpoints(loki: ServerProcess) -> None:
    window = {"start": str(START_NS), "end": str(END_NS)}
    vector = check_success(get(loki, "/loki/api/v1/index/volume", query='{service=~"checkout|edge"}', **window),
                           "vector")
    sizes = {s["metric"]["service"]: int(s["value"][1]) for s in vector["result"]}
    messages = {"checkout": ["payment declined for order o-42", "payment accepted", "retrying payment after timeout",
                             "payment declined: insufficient funds"],
                "edge": ["GET https://shop.example/ 200", "POST https://shop.example/api/orders 502"]}
    assert sizes == {k: sum(len(m) for m in v) for k, v in messages.items()}
    top = check_success(get(loki, "/loki/api/v1/index/volume", query='{service=~"checkout|edge"}', limit="1",
                            targetLabels="level", **window), "vector")
    assert [s["metric"] for s in top["result"]] == [{"level": "ERROR"}]  # the largest only
    ranged = check_success(get(loki, "/loki/api/v1/index/volume_range", query='{service="edge"}',
                               step="3600000ms", **window), "matrix")
    assert sum(int(v) for s in ranged["result"] for _, v in s["values"]) == sizes["edge"]


def test_grafana_label_aliases_and_column_types(loki: ServerProcess) -> None:
    window = {"start": str(START_NS), "end": str(END_NS)}
    values = get(loki, "/loki/api/v1/label/detected_level/values", query='{service_name="checkout"}', **window)
    assert values.json()["data"] == ["error", "info", "warn"]
    level = get(loki, "/loki/api/v1/label/level/values", query='{service_name="checkout"}', **window)
    assert level.json()["data"] == ["ERROR", "INFO", "WARN"]
    fields = get(loki, "/loki/api/v1/detected_fields", query='{service="checkout"}', **window).json()["fields"]
    types = {f["label"]: f["type"] for f in fields}
    assert types["http_duration_ms"] == "float" and types["http_status"] == "int"


def test_resolution_limits_are_400s(loki: ServerProcess) -> None:
    window = {"start": str(START_NS), "end": str(END_NS)}  # two hours
    fine = get(loki, "/loki/api/v1/query_range", query='sum(count_over_time({service="api"}[1s]))', step="100ms",
               **window)
    assert fine.status_code == 400 and "11,000 points" in fine.json()["message"]
    wide = get(loki, "/loki/api/v1/query_range", query='sum(count_over_time({service="api"}[1d]))', step="1s",
               **window)
    assert wide.status_code == 400 and wide.json()["error"]["code"] == "too_many_points"
    bad_step = get(loki, "/loki/api/v1/query_range", query='sum(count_over_time({service="api"}[1m]))',
                   step="soon", **window)
    assert bad_step.status_code == 400 and bad_step.json()["error"]["code"] == "invalid_step"


def test_tail_sends_history_since_start_first(loki: ServerProcess) -> None:
    from websockets.sync.client import connect

    query = {"query": '{service="edge"}', "start": str(START_NS), "limit": "10"}
    url = loki.url.replace("http://", "ws://") + "/loki/api/v1/tail?" + urlencode(query)
    with connect(url, additional_headers={"authorization": f"Bearer {loki.api_key}"}, open_timeout=10) as ws:
        first = orjson.loads(ws.recv(timeout=20))
    check_streams(first["streams"])
    entries = sorted((ts, line) for s in first["streams"] for ts, line in s["values"])
    assert [line for _, line in entries] == ["GET https://shop.example/ 200",
                                             "POST https://shop.example/api/orders 502"]
    assert entries[0][0] == str((T12 + 10 * 60) * NS)


def test_tail_refuses_a_metric_query(loki: ServerProcess) -> None:
    from websockets.sync.client import connect

    url = loki.url.replace("http://", "ws://") + "/loki/api/v1/tail?" + urlencode(
        {"query": 'count_over_time({service="edge"}[1m])'})
    with connect(url, additional_headers={"authorization": f"Bearer {loki.api_key}"}, open_timeout=10) as ws:
        message = orjson.loads(ws.recv(timeout=20))
    assert message["status"] == "error" and "log query" in message["message"]


def test_detected_labels(loki: ServerProcess) -> None:
    window = {"start": str(START_NS), "end": str(END_NS)}
    found = get(loki, "/loki/api/v1/detected_labels", query='{service="checkout"}', **window).json()
    by_name = {d["label"]: d["cardinality"] for d in found["detectedLabels"]}
    assert by_name == {"service": 1, "level": 3, "source": 1, "host": 3, "env": 2}  # no instance in the corpus
    everything = get(loki, "/loki/api/v1/detected_labels", **window).json()["detectedLabels"]
    assert {d["label"]: d["cardinality"] for d in everything}["service"] == 8
