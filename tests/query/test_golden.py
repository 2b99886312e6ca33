"""Every construct of the language against the hand-checked answers for the corpus (real chDB)."""

from __future__ import annotations

from typing import Any

import pytest

from logharbor.record import parse_timestamp
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.features.query import QueryError, compile_filter, compile_query
from logharbor.server.features.query.compiler import exact_fields
from logharbor.server.features.query.fields import attributes_of

from .corpus import T1, T2

NOW = parse_timestamp("2026-11-01T12:30:00Z")


def run(store: EmbeddedStore, q: str, **kw: Any) -> tuple[list[dict[str, Any]], Any]:
    args: dict[str, Any] = {"time_from_ns": None, "time_to_ns": None, "limit": 1000, "max_limit": 10_000}
    args.update(kw)
    compiled = compile_query(q, table=store.table, now_ns=NOW, **args)
    # table rows as the query route gives them (a projected attribute read as stored)
    return [exact_fields(compiled, row) for row in store.query(compiled.sql, compiled.params)], compiled


def rids(store: EmbeddedStore, q: str, **kw: Any) -> set[str]:
    rows, compiled = run(store, q, **kw)
    assert compiled.kind == "records"
    return {attributes_of(row["attributes"])["rid"] for row in rows}


def r(*numbers: int) -> set[str]:
    return {f"r{n:02d}" for n in numbers}


RECORD_CASES = [
    # words, phrases and boolean logic on message
    ("payment", r(1, 2, 3, 16)),
    ("message:payment", r(1, 2, 3, 16)),
    ('"payment declined"', r(1, 16)),
    ("payment declined", r(1, 16)),
    ("payment AND declined", r(1, 16)),
    ("+payment +declined", r(1, 16)),
    ("payment OR timeout", r(1, 2, 3, 5, 16)),
    ("payment or timeout", r(1, 2, 3, 5, 16)),
    ("payment -declined", r(2, 3)),
    ("payment NOT declined", r(2, 3)),
    ("payment AND NOT (declined OR timeout)", r(2)),
    ("o-42", r(1)),
    ("tick", r(18, 19)),
    ("tic*", r(18, 19)),
    ("t?ck", r(18, 19)),
    ("héllo", r(17)),
    ("Ωmega", r(17)),
    ('"red shoes"', r(13)),
    ('"DROP TABLE logs;--"', r(14)),
    ("message:/timeout after \\d+ms/", r(5)),
    ("/declined.*funds/", r(16)),
    ("*", r(*range(1, 21))),
    ("NOT *", set()),
    # canonical fields, normalized values
    ("service:checkout AND level:ERROR", r(1, 16)),
    ("level:error", r(1, 5, 9, 12, 16)),
    ("level:warning", r(3, 15)),
    ("level:(ERROR OR FATAL)", r(1, 5, 6, 9, 12, 16)),
    ("level:>=error", r(1, 5, 6, 9, 12, 16)),
    ("level:>WARN", r(1, 5, 6, 9, 12, 16)),
    ("level:<INFO", r(7, 18, 19)),
    ("level:[DEBUG TO info]", r(2, 4, 7, 8, 10, 11, 13, 14, 17, 19, 20)),
    ("level:{WARN TO *]", r(1, 5, 6, 9, 12, 16)),
    ("service:(api OR auth) level:INFO", r(4, 8)),
    ("(service:api OR service:auth) AND level:INFO", r(4, 8)),
    ("env:prod -service:checkout -service:search -service:worker", r(4, 5, 6, 8, 9, 11, 12, 17)),
    (f"trace_id:{T1}", r(1)),
    (f"trace_id:{T2.upper()}", r(9)),
    ("client_ip:203.0.113.7", r(4)),
    ('user_agent:"curl/8.5.0"', r(11)),
    ("http.method:GET AND http.status:200", r(4, 8, 11, 15)),
    ('path:"/api/orders"', r(1, 2, 12, 16)),
    ("service:[billing TO checkout]", r(1, 2, 3, 9, 10, 16)),
    ("host:web-*", r(1, 2, 3, 4, 5, 6, 16)),
    ("service:/^ch/", r(1, 2, 3, 16)),
    # numbers
    ("status:>=500", r(1, 3, 5, 9, 12)),
    ("status:>=500 AND path:/api/orders*", r(1, 3, 12)),
    ("status:>=500 AND path:/api/orders* NOT host:web-3", r(1, 12)),
    ("status:[400 TO 499]", r(16)),
    ("status:50?", r(1, 3, 5, 9, 12)),
    ("status:5*", r(1, 3, 5, 9, 12)),
    ("status:<200 OR status:>502", r(3, 5)),
    ("duration_ms:[500 TO *]", r(1, 3, 5, 9, 12, 15)),
    ("duration_ms:{900 TO 1500}", r(1, 12, 15)),
    ("duration_ms:[900 TO 1500]", r(1, 3, 5, 12, 15)),
    ("bytes_sent:612", r(10)),
    ("NOT _exists_:status", r(6, 7, 13, 14, 17, 18, 19, 20)),
    ("NOT status:200", r(1, 3, 5, 6, 7, 9, 10, 12, 13, 14, 16, 17, 18, 19, 20)),
    # attributes (any JSON type) and nested paths
    ("_exists_:user_id", r(1, 2, 3, 7, 8, 16)),
    ("_exists_:user_id AND NOT env:dev", r(1, 2, 8, 16)),
    ("user_id:u-123", r(1, 3)),
    ("user_id:7", r(7)),
    ("user_id:u-12*", r(1, 2, 3, 8, 16)),
    ("NOT user_id:u-123 AND service:checkout", r(2, 16)),
    ("order.items.sku:X1", r(7)),
    ("attributes.order.items.sku:X2", r(16)),
    ("_exists_:order", r(7, 16)),
    ("order.items.sku:*", r(7, 16)),
    ("n:>6", r(19, 20)),
    ("n:[5 TO 7.5]", r(18, 20)),
    ("hits:0", r(13)),
    ('query:"red shoes"', r(13)),
    ('query:"blue; DROP TABLE logs;--"', r(14)),
    ("error_code:PAY_001", r(9)),
    ("flag:true", r(18)),
    # time
    ("_time:[2026-11-01T12:05:00Z TO 2026-11-01T12:09:00Z]", r(6, 7, 8, 9, 10)),
    ("_time:{2026-11-01T12:05:00Z TO 2026-11-01T12:09:00Z}", r(7, 8, 9)),
    ("_time:15m", r(16, 17, 18, 19, 20)),
    ("_time:[* TO now-28m]", r(1, 2, 3)),
    ("@timestamp:>=2026-11-01T12:18:00Z", r(19, 20)),
    # record pipes
    ("service:checkout | where status:>=500", r(1, 3)),
    ("* | limit 8 | where service:search", r(13, 14, 15)),
]


@pytest.mark.parametrize(("query", "expected"), RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_records(golden_store: EmbeddedStore, query: str, expected: set[str]) -> None:
    assert rids(golden_store, query) == expected


def test_api_time_range(golden_store: EmbeddedStore) -> None:
    start = parse_timestamp("2026-11-01T12:02:00Z")
    end = parse_timestamp("2026-11-01T12:04:00Z")
    assert rids(golden_store, "*", time_from_ns=start, time_to_ns=end) == r(3, 4)


def ordered(store: EmbeddedStore, q: str, **kw: Any) -> list[str]:
    rows, _ = run(store, q, **kw)
    return [attributes_of(row["attributes"])["rid"] for row in rows]


def test_newest_first_by_default(golden_store: EmbeddedStore) -> None:
    assert ordered(golden_store, "service:worker") == ["r20", "r19", "r18"]


def test_sort_limit_dedup(golden_store: EmbeddedStore) -> None:
    assert ordered(golden_store, "service:checkout | sort by duration_ms | limit 2") == ["r02", "r16"]
    assert ordered(golden_store, "service:checkout | sort by duration_ms desc | limit 1") == ["r01"]
    assert ordered(golden_store, "service:checkout | dedup path") == ["r16", "r03"]
    assert ordered(golden_store, "service:worker | sort by n desc") == ["r19", "r20", "r18"]


def test_limits(golden_store: EmbeddedStore) -> None:
    assert len(ordered(golden_store, "*", limit=2)) == 2
    assert len(ordered(golden_store, "* | limit 50", max_limit=3)) == 3
    assert len(ordered(golden_store, "* | limit 4")) == 4
    _, compiled = run(golden_store, "*", limit=None)
    assert compiled.limit == 100
    _, compiled = run(golden_store, "* | fields message", limit=None)  # still a listing of records
    assert compiled.limit == 100
    _, compiled = run(golden_store, "* | stats count() by service", limit=None, max_limit=500)
    assert compiled.limit == 500


def table(store: EmbeddedStore, q: str, **kw: Any) -> list[dict[str, Any]]:
    rows, compiled = run(store, q, **kw)
    assert compiled.kind in ("table", "timechart")
    assert all(list(row) == compiled.columns for row in rows)
    return rows


def test_stats_count_by(golden_store: EmbeddedStore) -> None:
    assert table(golden_store, "level:ERROR | stats count() by service") == [
        {"service": "api", "count()": 1},
        {"service": "billing", "count()": 1},
        {"service": "checkout", "count()": 2},
        {"service": "edge", "count()": 1},
    ]


def test_stats_several_functions(golden_store: EmbeddedStore) -> None:
    rows = table(
        golden_store,
        "service:checkout | stats count() as n, max(duration_ms) as worst, avg(duration_ms) as mean by path"
        " | sort by n desc",
    )
    assert rows == [
        {"path": "/api/orders", "n": 3, "worst": 1234.5, "mean": pytest.approx(551.5)},
        {"path": "/api/orders/retry", "n": 1, "worst": 900.0, "mean": 900.0},
    ]


def test_stats_numbers_of_attributes(golden_store: EmbeddedStore) -> None:
    rows = table(golden_store, "service:worker | stats sum(n), min(n), max(n), p50(n), count_uniq(message)")
    assert rows == [{"sum(n)": 24.5, "min(n)": 5, "max(n)": 12, "p50(n)": 7.5, "count_uniq(message)": 2}]


def test_stats_count_field_and_first_last(golden_store: EmbeddedStore) -> None:
    rows = table(golden_store, "level:INFO | stats count(user_id) as with_user, count() as n")
    assert rows == [{"with_user": 2, "n": 9}]
    rows = table(golden_store, "service:worker | stats first(message), last(message), min(timestamp)")
    assert rows == [{"first(message)": "tick", "last(message)": "job done in 42ms",
                     "min(timestamp)": "2026-11-01T12:17:00.000000Z"}]


def test_stats_where_after(golden_store: EmbeddedStore) -> None:
    rows = table(golden_store, "* | stats count() as n by service | where n:>=3 | sort by n desc, service")
    assert rows == [{"service": "checkout", "n": 4}, {"service": "api", "n": 3},
                    {"service": "search", "n": 3}, {"service": "worker", "n": 3}]


def test_p99_by_and_sort_by_call_name(golden_store: EmbeddedStore) -> None:
    q = "status:>=500 | stats p99(duration_ms) by service | sort by p99(duration_ms) desc"
    rows = table(golden_store, q)
    assert [row["service"] for row in rows] == ["billing", "api", "edge", "checkout"]
    assert rows[0]["p99(duration_ms)"] == 2500.0


def test_rate_over_window(golden_store: EmbeddedStore) -> None:
    start = parse_timestamp("2026-11-01T12:00:00Z")
    end = parse_timestamp("2026-11-01T12:20:00Z")
    rows = table(golden_store, "* | stats rate()", time_from_ns=start, time_to_ns=end)
    assert rows == [{"rate()": pytest.approx(20 / 1200)}]


def test_top_and_rare(golden_store: EmbeddedStore) -> None:
    assert table(golden_store, "* | top 2 service") == [
        {"service": "checkout", "count": 4}, {"service": "api", "count": 3}]
    assert table(golden_store, "* | rare 1 service") == [{"service": "i18n", "count": 1}]
    assert table(golden_store, "_exists_:user_id AND NOT env:dev | top 5 user_id") == [
        {"user_id": "u-123", "count": 1}, {"user_id": "u-124", "count": 1},
        {"user_id": "u-125", "count": 1}, {"user_id": "u-126", "count": 1}]


def test_fields(golden_store: EmbeddedStore) -> None:
    rows = table(golden_store, "service:worker | fields timestamp, message, n | sort by n desc")
    assert rows == [
        {"timestamp": "2026-11-01T12:18:00.000000Z", "message": "tick", "n": 12},
        {"timestamp": "2026-11-01T12:19:00.000000Z", "message": "job done in 42ms", "n": 7.5},
        {"timestamp": "2026-11-01T12:17:00.000000Z", "message": "tick", "n": 5},
    ]


def test_timechart(golden_store: EmbeddedStore) -> None:
    rows, compiled = run(golden_store, "* | timechart span=5m count()")
    assert compiled.kind == "timechart"
    assert rows == [
        {"_time": f"2026-11-01T12:{m:02d}:00.000000Z", "count()": 5} for m in (0, 5, 10, 15)
    ]
    rows = table(golden_store, "service:worker | timechart span=10m count() as n by level")
    assert rows == [
        {"_time": "2026-11-01T12:10:00.000000Z", "level": lvl, "n": 1} for lvl in ("DEBUG", "INFO", "TRACE")
    ]


ERROR_CASES = [
    ("status:", "query_syntax", 7, "expected a value after 'status:' at 7"),
    ("status:abc", "type_mismatch", 0, "'status' is a number; 'abc' is not one (at 0)"),
    ("(payment OR timeout", "query_syntax", 19, "expected ')' to close the '(' at 0"),
    ('"unterminated', "query_syntax", 0, "unterminated phrase"),
    ("* | stats median(duration_ms)", "unknown_function", 10, "unknown function 'median'"),
    ("* | stats count() as n | sort by missing", "unknown_field", 25, "'missing' is not a column here"),
    ("* | stats sum(service)", "type_mismatch", 10, "sum() needs a number field"),
    ("level:ERROR user_id:[a TO 5] attributes:x", "type_mismatch", 29, "whole attribute object"),
    ("* | frobnicate", "query_syntax", 4, "expected a pipe"),
    ("_time:yesterday-ish", "type_mismatch", 0, "'_time' needs a time"),
    ("level:>=loud", "type_mismatch", 0, "'level' compares levels; 'loud' is not one"),
    ("* | timechart span=fast count()", "type_mismatch", 4, "timechart span"),
]


@pytest.mark.parametrize(
    ("query", "code", "position", "message"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_errors(query: str, code: str, position: int | None, message: str) -> None:
    with pytest.raises(QueryError) as info:
        compile_query(query, table="`logs`", time_from_ns=None, time_to_ns=None, limit=None, max_limit=100)
    assert info.value.code == code
    assert info.value.position == position
    assert message in info.value.message


def test_nesting_and_size_limits() -> None:
    args = {"table": "`logs`", "time_from_ns": None, "time_to_ns": None, "limit": None, "max_limit": 100}
    with pytest.raises(QueryError) as info:
        compile_query("(" * 100 + "a" + ")" * 100, **args)
    assert info.value.code == "query_syntax" and info.value.position == 64
    with pytest.raises(QueryError) as info:
        compile_query("NOT " * 100 + "a", **args)
    assert "nests deeper than 64" in info.value.message
    with pytest.raises(QueryError) as info:
        compile_query(" OR ".join(f"w{i}" for i in range(20_000)), **args)
    assert info.value.code == "too_many_clauses"  # counted before the SQL is even built
    with pytest.raises(QueryError) as info:  # under the clause limit, over the SQL size
        compile_query(" OR ".join(f"w{i}" for i in range(1000)), **args)
    assert info.value.code == "query_too_large" and "too large" in info.value.message
    compile_query("(" * 60 + "a" + ")" * 60, **args)


def explain(store: EmbeddedStore, q: str) -> str:
    compiled = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=10,
                             max_limit=100)
    rows = store.query("EXPLAIN indexes = 1 " + compiled.sql, compiled.params)
    return "\n".join(str(next(iter(row.values()))) for row in rows)


def test_indexes_are_used(golden_store: EmbeddedStore) -> None:
    assert "idx_message_lower" in explain(golden_store, "payment")
    assert "idx_message_lower" in explain(golden_store, '"payment declined"')
    assert "idx_trace_id" in explain(golden_store, f"trace_id:{T1}")
    assert "idx_http_status" in explain(golden_store, "status:>=500")
    # promoted attributes: the compiler reads their column, so their skip indexes apply
    assert "idx_attr_user_id" in explain(golden_store, "user_id:u-123")
    assert "idx_attr_order_id" in explain(golden_store, "attributes.order_id:o-1")
    assert "idx_attr_duration_ms" in explain(golden_store, "attributes.duration_ms:>1000")


def test_compile_filter_for_tail_and_alerts(golden_store: EmbeddedStore) -> None:
    condition, params = compile_filter("service:checkout | where status:>=500", now_ns=NOW)
    rows = golden_store.query(f"SELECT JSONExtractString(attributes, 'rid') AS rid FROM {golden_store.table} WHERE {condition}"  # noqa: S608
                              " ORDER BY rid", params)
    assert [row["rid"] for row in rows] == ["r01", "r03"]
    assert compile_filter("*") == ("1", {})
    with pytest.raises(QueryError) as info:
        compile_filter("* | stats count()")
    assert info.value.code == "filter_only"


def test_percentile_levels() -> None:
    from logharbor.server.features.query.aggregates import percentile_level

    assert [percentile_level(f) for f in ("p5", "p50", "p90", "p99", "p999")] == [0.05, 0.5, 0.9, 0.99, 0.999]


def test_percentiles_on_the_corpus(golden_store: EmbeddedStore) -> None:
    rows = table(golden_store, "service:worker | stats p5(n), p95(n)")
    assert rows == [{"p5(n)": pytest.approx(5.25), "p95(n)": pytest.approx(11.55)}]


def test_timechart_zero_buckets(golden_store: EmbeddedStore) -> None:
    start = parse_timestamp("2026-11-01T11:50:00Z")
    end = parse_timestamp("2026-11-01T12:30:00Z")
    rows = table(golden_store, "* | timechart span=5m count() as n", time_from_ns=start, time_to_ns=end)
    assert [(row["_time"][11:16], row["n"]) for row in rows] == [
        ("11:50", 0), ("11:55", 0), ("12:00", 5), ("12:05", 5), ("12:10", 5), ("12:15", 5),
        ("12:20", 0), ("12:25", 0)]
    # an average over nothing is not zero, and a missing group has no name: no filling there
    rows = table(golden_store, "* | timechart span=5m avg(duration_ms)", time_from_ns=start, time_to_ns=end)
    assert len(rows) == 4
    rows = table(golden_store, "* | timechart span=5m count() by level", time_from_ns=start,
                 time_to_ns=end)
    assert {row["_time"][11:16] for row in rows} == {"12:00", "12:05", "12:10", "12:15"}
