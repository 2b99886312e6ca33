"""Issue #22 items 6–9 over real wire bytes: Loki push of JSON/logfmt lines read back with
``| json``; Grafana's underscore label names; Drilldown's paths; fractional steps; RE2 in both
query languages. One server of its own (records pushed here, so counts are exact)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

NS = 1_000_000_000
BASE = 1_793_534_400  # 2026-11-01T12:00:00Z
START, END = (BASE - 3600) * NS, (BASE + 30 * 3600) * NS

# what loki-logger-handler / pino-loki / Promtail put on the wire: JSON lines under a few labels
PUSH = {"streams": [
    {"stream": {"application": "shop-api", "environment": "prod"},  # loki-logger-handler: no level label
     "values": [[str((BASE + 60) * NS), orjson.dumps({"message": "payment failed", "level": "ERROR",
                                                      "reqId": "r-5", "logger": "shop"}).decode()],
                [str((BASE + 120) * NS), orjson.dumps({"message": "ok", "level": "INFO", "reqId": "r-6"}).decode()]]},
    {"stream": {"app": "x", "level": "warn"},  # pino-loki: level label wins over the line's number
     "values": [[str((BASE + 180) * NS), '{"level":50,"time":1793534580000,"msg":"slow","reqId":"r-5"}']]},
    {"stream": {"app": "promtail", "job": "varlogs"},  # Promtail: logfmt and plain text
     "values": [[str((BASE + 240) * NS), 'level=error msg="disk full" took=52 path=/var'],
                [str((BASE + 300) * NS), "user logged in id=5"]]},
    {"stream": {"app": "otel"},  # what an OTLP collector's loki exporter pushes: nested keys
     "values": [[str((BASE + 3600 * 20) * NS), orjson.dumps({"body": "otel line", "scope": {"name": "io.shop"},
                                                             "k8s": {"namespace": {"name": "shop"}}}).decode()]]},
    {"stream": {"app": "re2"},
     "values": [[str((BASE + 400) * NS), "Grüße from München"], [str((BASE + 401) * NS), "a.b literal"],
                [str((BASE + 402) * NS), "axb not literal"], [str((BASE + 403) * NS), "line\nbreak"]]},
]}
TOTAL = 10


@pytest.fixture(scope="module")
def loki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("grafana") / "data", "--batch-max-age", "0.2").start()
    try:
        response = httpx.post(server.url + "/loki/api/v1/push", content=orjson.dumps(PUSH), timeout=30,
                              headers={**server.headers, "content-type": "application/json"})
        assert response.status_code == 204, response.text
        assert server.wait_rows(TOTAL) >= TOTAL
        yield server
    finally:
        server.stop()


def get(server: ServerProcess, path: str, **params: Any) -> httpx.Response:
    return httpx.get(server.url + path, params=params, auth=("grafana", server.api_key), timeout=30)


def lines(server: ServerProcess, query: str, **params: Any) -> list[str]:
    response = get(server, "/loki/api/v1/query_range", query=query, start=str(START), end=str(END), limit="100",
                   direction="forward", **params)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["resultType"] == "streams"
    return [line for _, line in sorted((ts, line) for s in data["result"] for ts, line in s["values"])]


def streams(server: ServerProcess, query: str) -> list[dict[str, Any]]:
    response = get(server, "/loki/api/v1/query_range", query=query, start=str(START), end=str(END))
    assert response.status_code == 200, response.text
    return response.json()["data"]["result"]


def test_json_lines_pushed_to_loki_filter_with_json(loki: ServerProcess) -> None:
    want = orjson.dumps({"message": "payment failed", "level": "ERROR", "reqId": "r-5", "logger": "shop"}).decode()
    assert lines(loki, '{application="shop-api"} | json | reqId="r-5"') == [want]  # the line as pushed
    assert lines(loki, '{app="x"} | json | reqId="r-5"') == ['{"level":50,"time":1793534580000,"msg":"slow","reqId":"r-5"}']
    levels = {s["stream"]["level"] for s in streams(loki, '{application="shop-api"}')}
    assert levels == {"ERROR", "INFO"}  # taken from the line: the stream has no level label
    assert streams(loki, '{app="x"}')[0]["stream"]["level"] == "WARN"  # the label wins
    assert loki.query("reqId:r-5", **{"from": "2026-01-01T00:00:00Z"})["rows"]  # a field natively too


def test_logfmt_lines_and_prose(loki: ServerProcess) -> None:
    assert lines(loki, '{app="promtail"} | logfmt | took > 50') == ['level=error msg="disk full" took=52 path=/var']
    assert lines(loki, '{app="promtail"} | logfmt --strict --keep-empty msg | msg="disk full"') == [
        'level=error msg="disk full" took=52 path=/var']
    by_line = {s["values"][0][1]: s["stream"] for s in streams(loki, '{app="promtail"}')}
    assert by_line['level=error msg="disk full" took=52 path=/var']["level"] == "ERROR"
    assert "id" not in by_line["user logged in id=5"]  # prose stays prose


def test_grafana_underscore_label_names(loki: ServerProcess) -> None:
    labels = get(loki, "/loki/api/v1/labels", start=str(START), end=str(END)).json()["data"]
    assert {"k8s_namespace_name", "scope_name", "reqId"} <= set(labels)
    assert lines(loki, '{k8s_namespace_name="shop"}') == [orjson.dumps({
        "body": "otel line", "scope": {"name": "io.shop"}, "k8s": {"namespace": {"name": "shop"}}}).decode()]
    assert len(lines(loki, '{app="otel"} | json | scope_name="io.shop"')) == 1
    stream = streams(loki, '{app="otel"} | json')[0]["stream"]
    assert stream["k8s_namespace_name"] == "shop" and stream["scope_name"] == "io.shop"
    values = get(loki, "/loki/api/v1/label/k8s_namespace_name/values", start=str(START), end=str(END)).json()
    assert values["data"] == ["shop"]


def test_drilldown_paths(loki: ServerProcess) -> None:
    found = get(loki, "/loki/api/v1/detected_field/reqId/values", query='{application="shop-api"}',
                start=str(START), end=str(END))
    assert found.status_code == 200 and found.json() == {"values": ["r-5", "r-6"]}
    patterns = get(loki, "/loki/api/v1/patterns", query='{app="re2"}', start=str(START), end=str(END), step="60s")
    body = patterns.json()
    assert patterns.status_code == 200 and body["status"] == "success"
    assert body["data"] and all(set(p) == {"pattern", "level", "samples"} for p in body["data"])
    assert sum(n for p in body["data"] for _, n in p["samples"]) == 4
    assert all(isinstance(t, int) and isinstance(n, int) for p in body["data"] for t, n in p["samples"])


def _matrix_total(loki: ServerProcess, path: str, **params: Any) -> float:
    response = get(loki, path, start=str(START), end=str(END), **params)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["resultType"] == "matrix"
    return sum(float(v) for s in data["result"] for _, v in s["values"])


def test_fractional_step_and_hour_volume(loki: ServerProcess) -> None:
    q = 'sum(count_over_time({app=~".+"}[15500ms]))'
    assert _matrix_total(loki, "/loki/api/v1/query_range", query=q, step="15.5") == 8  # each record in one window
    fine = _matrix_total(loki, "/loki/api/v1/index/volume_range", query='{app=~".+"}', step="60")
    hourly = _matrix_total(loki, "/loki/api/v1/index/volume_range", query='{app=~".+"}', step="3600")
    assert fine == hourly > 0


@pytest.mark.parametrize(("logql", "native", "expected"), [
    ('{app="re2"} |~ "(?i)GRÜßE"', "app:re2 AND message:/(?i)grÜße/", ["Grüße from München"]),
    ('{app="re2"} |~ `^\\pL+e from`', "app:re2 AND message:/^\\pL+e from/", ["Grüße from München"]),
    ('{app="re2"} |~ `chen\\z`', "app:re2 AND message:/chen\\z/", ["Grüße from München"]),
    ('{app="re2"} |~ `\\Qa.b\\E`', "app:re2 AND message:/\\Qa.b\\E/", ["a.b literal"]),
    ('{app=~"(?i)RE2"} |~ "line.break"', "app:/(?i)^RE2$/ AND message:/(?-s)line.break/", []),
    ('{app=~"(?i)RE2"} |~ "(?s)line.break"', "app:/(?i)^RE2$/ AND message:/line.break/", ["line\nbreak"]),
])
def test_re2_semantics_in_both_languages(loki: ServerProcess, logql: str, native: str, expected: list[str]) -> None:
    assert lines(loki, logql) == expected
    rows = loki.query(native, **{"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"})["rows"]
    assert sorted(r["message"] for r in rows) == sorted(expected)


@pytest.mark.parametrize("pattern", ["(?=x)", "(a)\\1", "a++", "(?>a)"])
def test_what_re2_refuses_is_a_400_in_both_languages(loki: ServerProcess, pattern: str) -> None:
    response = get(loki, "/loki/api/v1/query_range", query=f'{{app="re2"}} |~ `{pattern}`')
    assert response.status_code == 400 and "RE2" in response.json()["message"]
    native = httpx.post(loki.url + "/api/v1/query", headers=loki.headers, timeout=30,
                        json={"q": f"message:/{pattern}/"})
    assert native.status_code == 400 and native.json()["error"]["code"] == "invalid_regex"

