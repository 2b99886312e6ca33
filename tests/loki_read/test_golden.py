"""Golden tests: LogQL over the query corpus, through a real server, against the native language.

Log queries end in ``| line_format "{{.rid}}"`` so each answered line is the corpus id of a record.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import ServerProcess
from tests.query.corpus import records

from .conftest import NS, T12, get, native_rids, query_range

ALL = {f"r{i:02d}" for i in range(1, 21)}

# LogQL, its native twin, the expected corpus ids
LOG_CASES = [
    ('{service="checkout"}', "service:checkout", {"r01", "r02", "r03", "r16"}),
    ('{service="checkout", env!="dev"}', "service:checkout NOT env:dev", {"r01", "r02", "r16"}),
    ('{host=~"web-[12]"}', "host:(web-1 OR web-2)", {"r01", "r02", "r04", "r05", "r16"}),
    ('{service=~"api|auth", level!~"info|debug"}', "service:(api OR auth) NOT level:(INFO OR DEBUG)",
     {"r05", "r06"}),
    ('{level="error"}', "level:ERROR", {"r01", "r05", "r09", "r12", "r16"}),
    ('{service=~".+", user_id=""}', "NOT _exists_:user_id",
     ALL - {"r01", "r02", "r03", "r07", "r08", "r16"}),
    ('{env="prod"} |= "payment"', 'env:prod AND message:*payment*', {"r01", "r02", "r16"}),
    ('{service="checkout"} != "declined"', "service:checkout NOT message:*declined*", {"r02", "r03"}),
    ('{env=~".+"} |= "out after 1500ms calling"', 'message:/out after 1500ms calling/', {"r05"}),
    ('{env=~".+"} |= " declined"', 'message:/ declined/', {"r01", "r16"}),
    ('{service="checkout"} |= "accepted" or "retrying"', "service:checkout AND message:(*accepted* OR *retrying*)",
     {"r02", "r03"}),
    ('{service="checkout"} != "accepted" or "retrying"', "service:checkout NOT message:(*accepted* OR *retrying*)",
     {"r01", "r16"}),
    ('{env=~".+"} |~ "time(out)? after"', "message:/time(out)? after/", {"r05"}),
    ('{service="worker"} !~ "^tick$"', "service:worker NOT message:/^tick$/", {"r20"}),
    ('{source="app"} | json | status >= 500', "source:app AND status:>=500", {"r01", "r03", "r05", "r09"}),
    ('{env="prod"} | logfmt | duration_ms > 1s', "env:prod AND duration_ms:>1000",
     {"r01", "r05", "r09", "r12"}),
    ('{service="search"} | hits == 0', "service:search AND hits:0", {"r13"}),
    ('{service="worker"} | n > 6', "service:worker AND n:>6", {"r19", "r20"}),
    ('{service="billing"} | bytes_sent >= 0.5KB', "service:billing AND bytes_sent:>=500", {"r10"}),
    ('{service="checkout"} | json | status >= 400 and status < 500 or level="warn"',
     "service:checkout AND (status:[400 TO 500} OR level:WARN)", {"r03", "r16"}),
    ('{service=~".+"} | label_format who=user_id | who="u-123"', "user_id:u-123", {"r01", "r03"}),
    ('{service_name="auth", detected_level="info"}', "service:auth AND level:INFO", {"r08"}),
]


def loki_rids(server: ServerProcess, q: str, **params: Any) -> list[str]:
    data = query_range(server, q + ' | line_format "{{.rid}}"', **params)
    assert data["resultType"] == "streams"
    return [line for stream in data["result"] for _, line in stream["values"]]


@pytest.mark.parametrize(("logql", "native", "expected"), LOG_CASES, ids=[c[0] for c in LOG_CASES])
def test_log_queries_match_the_native_language(loki: ServerProcess, logql: str, native: str,
                                               expected: set[str]) -> None:
    found = loki_rids(loki, logql)
    assert len(found) == len(set(found))
    assert set(found) == expected
    assert native_rids(loki, native) == expected


def test_limit_and_direction(loki: ServerProcess) -> None:
    newest = loki_rids(loki, '{service="checkout"}', limit="2")
    assert sorted(newest) == ["r03", "r16"]  # backward: the newest two
    oldest = loki_rids(loki, '{service="checkout"}', limit="2", direction="forward")
    assert sorted(oldest) == ["r01", "r02"]


def test_streams_carry_labels_and_formatted_lines(loki: ServerProcess) -> None:
    data = query_range(loki, '{service="api"} | pattern "<verb> <path> <_>" '
                       '| regexp "after (?P<ms>\\\\d+)ms" | label_format svc=service '
                       '| line_format "{{.svc}} {{.status}} {{__line__}}"')
    by_line = {line: stream["stream"] for stream in data["result"] for _, line in stream["values"]}
    assert set(by_line) == {"api 200 GET /api/users ok", "api 504 timeout after 1500ms calling db",
                            "api  out of memory"}
    assert by_line["api 200 GET /api/users ok"]["verb"] == "GET"
    assert by_line["api 200 GET /api/users ok"]["path"] == "/api/users"
    assert by_line["api 504 timeout after 1500ms calling db"]["ms"] == "1500"
    assert by_line["api  out of memory"] == {"svc": "api", "level": "FATAL", "source": "app", "host": "web-3",
                                            "env": "prod", "verb": "out", "path": "of"}
    upper = query_range(loki, '{service="edge", level="error"} | line_format "{{ .level | ToLower }} '
                        '{{.service|ToUpper}} {{ __line__ | TrimSpace }}"')
    assert upper["result"][0]["values"][0][1] == "error EDGE POST https://shop.example/api/orders 502"
    kept = query_range(loki, '{service="edge"} | keep service, level | drop level | decolorize')
    assert [(s["stream"], len(s["values"])) for s in kept["result"]] == [({"service": "edge"}, 2)]  # one stream
    counted = instant(loki, 'count_over_time({service="edge"} | keep service, level [30m])')
    assert counted == {(("level", "ERROR"), ("service", "edge")): 1.0, (("level", "INFO"), ("service", "edge")): 1.0}
    parsed = query_range(loki, '{service="auth", level="debug"} | json')
    assert parsed["result"][0]["stream"]["order_items_sku"] == "X1"  # attributes shown, flattened


def instant(server: ServerProcess, q: str, at_s: int = T12 + 20 * 60) -> dict[tuple[tuple[str, str], ...], float]:
    response = get(server, "/loki/api/v1/query", query=q, time=str(at_s * NS))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["resultType"] == "vector"
    out = {}
    for sample in data["result"]:
        assert sample["value"][0] == at_s
        out[tuple(sorted(sample["metric"].items()))] = float(sample["value"][1])
    return out


def _bytes(service: str) -> int:
    return sum(len(r["message"].encode()) for r in records() if r["service"] == service)


@pytest.mark.parametrize(("logql", "expected"), [
    ('sum(count_over_time({service="checkout"}[30m]))', {(): 4.0}),
    ('sum by (level) (rate({service="checkout"}[30m]))',
     {(("level", "ERROR"),): 2 / 1800, (("level", "INFO"),): 1 / 1800, (("level", "WARN"),): 1 / 1800}),
    ('sum(bytes_over_time({service="checkout"}[30m]))', {(): float(_bytes("checkout"))}),
    ('sum by (service) (bytes_rate({service="edge"}[30m]))', {(("service", "edge"),): _bytes("edge") / 1800}),
    ('sum by (service) (sum_over_time({service=~"checkout|api"} | unwrap duration_ms [30m]))',
     {(("service", "checkout"),): 2554.5, (("service", "api"),): 1515.5}),
    ('max by (service) (max_over_time({service="checkout"} | unwrap duration_ms [30m]))',
     {(("service", "checkout"),): 1234.5}),
    ('min by (service) (min_over_time({service="checkout"} | unwrap duration_ms [30m]))',
     {(("service", "checkout"),): 120.0}),
    ('avg_over_time({service="checkout", level="error"} | unwrap duration_ms [30m])',
     {(("env", "prod"), ("host", "web-1"), ("level", "ERROR"), ("service", "checkout"), ("source", "app")):
      767.25}),
    ('max(quantile_over_time(0.5, {service="checkout", level="error"} | unwrap duration_ms [30m]))',
     {(): 767.25}),
    ('max by (service) (first_over_time({service="checkout"} | unwrap duration_ms [30m]))',
     {(("service", "checkout"),): 1234.5}),
    ('min by (service) (last_over_time({service="checkout"} | unwrap duration_ms [30m]))',
     {(("service", "checkout"),): 120.0}),
    ('absent_over_time({service="nope", env="prod", host=~"web.*"}[30m])',
     {(("env", "prod"), ("service", "nope")): 1.0}),
    ('absent_over_time({service="checkout"}[30m])', {}),
    ('sum(count_over_time({service="checkout"}[30m])) * 2', {(): 8.0}),
    ('60 * sum(rate({service="checkout"}[30m]))', {(): 60 * 4 / 1800}),
    ('sum by (service) (count_over_time({service=~"checkout|edge"} |= "declined" [30m])) '
     '/ sum by (service) (count_over_time({service=~"checkout|edge"}[30m]))', {(("service", "checkout"),): 0.5}),
    ('topk(1, sum by (service) (count_over_time({level="error"}[30m])) - 1)', {(("service", "checkout"),): 1.0}),
    ('count by (service) (count_over_time({service="checkout"}[30m]))', {(("service", "checkout"),): 3.0}),
    ('topk(1, sum by (service) (count_over_time({level="error"}[30m])))', {(("service", "checkout"),): 2.0}),
    ('bottomk(1, sum by (service) (count_over_time({service=~"checkout|edge"}[30m])))',
     {(("service", "edge"),): 2.0}),
    ('avg(sum by (service) (count_over_time({service=~"checkout|edge"}[30m])))', {(): 3.0}),
    ('sum without (level, host, env, source) (count_over_time({service=~"checkout|edge"}[30m]))',
     {(("service", "checkout"),): 4.0, (("service", "edge"),): 2.0}),
    ('sum by (detected_level) (count_over_time({service="checkout"} |= "payment" | drop __error__ [30m]))',
     {(("detected_level", "error"),): 2.0, (("detected_level", "info"),): 1.0,
      (("detected_level", "warn"),): 1.0}),
    ('sum by (service) (count_over_time({env="prod"} | json | status >= 500 [30m]))',
     {(("service", "checkout"),): 1.0, (("service", "api"),): 1.0, (("service", "billing"),): 1.0,
      (("service", "edge"),): 1.0}),
])
def test_metric_queries(loki: ServerProcess, logql: str, expected: dict[Any, float]) -> None:
    got = instant(loki, logql)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value)


def test_metric_matches_native_stats(loki: ServerProcess) -> None:
    got = instant(loki, 'sum by (service) (count_over_time({env="prod"}[30m]))')
    body = loki.query("env:prod | stats count() as n by service",
                      **{"from": "2026-11-01T11:50:00Z", "to": "2026-11-01T12:20:00Z"})
    assert got == {(("service", row["service"]),): float(row["n"]) for row in body["rows"]}
    p50 = instant(loki, 'max(quantile_over_time(0.5, {service="checkout", level="error"} '
                  '| unwrap duration_ms [30m]))')
    native = loki.query("service:checkout AND level:ERROR | stats p50(duration_ms) as p",
                        **{"from": "2026-11-01T11:50:00Z", "to": "2026-11-01T12:20:00Z"})
    assert p50 == {(): pytest.approx(native["rows"][0]["p"])}


def test_range_queries_slide_windows_over_aligned_steps(loki: ServerProcess) -> None:
    start, end = (T12 - 60) * NS + 123, (T12 + 20 * 60) * NS  # an unaligned start, as Grafana sends
    one = query_range(loki, 'sum(count_over_time({service="checkout"}[1m]))', start=str(start),
                      end=str(end), step="60000ms")
    assert one["resultType"] == "matrix"
    assert one["result"][0]["values"] == [[T12 + 60, "1"], [T12 + 120, "1"], [T12 + 180, "1"],
                                          [T12 + 16 * 60, "1"]]
    five = query_range(loki, 'sum(count_over_time({service="checkout"}[5m]))', start=str(start),
                       end=str(end), step="60")
    last = query_range(loki, 'last_over_time({service="checkout", level="error"} | unwrap duration_ms [20m])',
                       start=str(start), end=str(end), step="60000ms")
    values = dict((t, v) for t, v in last["result"][0]["values"])  # one stream: web-1 (r01, then r16)
    assert values[T12 + 60] == "1234.5" and values[T12 + 15 * 60] == "1234.5" and values[T12 + 16 * 60] == "300"
    points = dict((t, v) for t, v in five["result"][0]["values"])
    assert points[T12 + 180] == "3" and points[T12 + 300] == "3" and points[T12 + 360] == "2"
    assert points[T12 + 20 * 60] == "1" and T12 + 10 * 60 not in points  # no sample, no point
