"""Patterns on a real server process: mined at ingest, queried with pipes, kept across kill -9."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from tests.conftest import ServerProcess

from .corpus import INJECTED, KNOWN, messages

NS = 1_000_000_000
HOUR = 3600 * NS


def post(server: ServerProcess, records: list[dict[str, object]], key: str | None = None) -> None:
    headers = {"content-type": "application/x-ndjson"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    body = b"\n".join(orjson.dumps(r) for r in records)
    with server.client(headers=headers) as client:
        response = client.post("/api/v1/logs", content=body)
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == []


def corpus(now: int) -> tuple[list[dict[str, object]], dict[str, str]]:
    """Known templates evenly over the last 2 h, injected ones in the last 30 min; also
    each message's expected template."""
    rng = random.Random(11)
    records, expected = [], {}
    for hour in (2, 1):  # the same number of each template in each hour: 'steady' when compared
        for i, (service, template, message) in enumerate(messages(rng, KNOWN, 300)):
            ts = now - hour * HOUR + 60 * NS + i * (HOUR // 400)  # a minute clear of the border
            records.append({"timestamp": ts / NS, "service": service, "message": message})
            expected[message] = template
    for j, (service, template, message) in enumerate(messages(rng, INJECTED, 60)):
        records.append({"timestamp": (now - HOUR // 2 + j * NS) / NS, "service": service, "message": message})
        expected[message] = template
    return records, expected


def wait_patterns(server: ServerProcess, count: int, q: str = "* | patterns", **body: object) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while True:
        rows = server.query(q, **body)["rows"]
        if sum(r["count"] for r in rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_generated_corpus_is_mined_and_queried(server: ServerProcess) -> None:
    now = time.time_ns()
    records, expected = corpus(now)
    post(server, records)
    assert server.wait_rows(len(records)) == len(records)
    rows = wait_patterns(server, len(records), since="3h")
    assert server.query("* | patterns")["columns"] == \
        ["pattern_id", "service", "template", "count", "first_seen", "last_seen", "sample"]
    want = {(s, t) for table in (KNOWN, INJECTED) for s, items in table.items() for t, _ in items}
    assert {(r["service"], r["template"]) for r in rows} == want  # no split, no extra template
    assert [r["count"] for r in rows] == sorted((r["count"] for r in rows), reverse=True)
    by_template = {r["template"]: r for r in rows}
    assert by_template["user <*> logged in from <ip>"]["count"] == 100
    assert by_template["connection pool exhausted"]["sample"] == "connection pool exhausted"
    metrics = httpx.get(server.url + "/metrics", headers=server.headers, timeout=10).text
    assert "logharbor_pattern_clusters 8.0" in metrics and "logharbor_pattern_services 3.0" in metrics

    # every stored record carries the id of its template; pattern_id: finds exactly those
    pid = by_template["query on table <*> took <num>ms returning <num> rows"]["pattern_id"]
    found = server.query(f"pattern_id:{pid}", since="3h", limit=1000)["rows"]
    assert len(found) == 100
    assert all(r["pattern_id"] == pid and r["service"] == "db" for r in found)
    assert {expected[r["message"]] for r in found} == {"query on table <*> took <num>ms returning <num> rows"}

    # the injected templates are new in the last hour; the others steady
    cmp = server.query("* | patterns compare 1h")
    assert cmp["columns"] == ["pattern_id", "service", "template", "count", "previous_count", "change", "status"]
    status = {r["template"]: r for r in cmp["rows"]}
    injected = {t for items in INJECTED.values() for t, _ in items}
    for template, row in status.items():
        if template in injected:
            assert (row["status"], row["previous_count"], row["count"]) == ("new", 0, 30), row
        else:
            assert (row["status"], row["change"]) == ("steady", 0.0), row
            assert row["count"] == row["previous_count"] > 0
    assert {r["template"] for r in cmp["rows"][:2]} == injected  # most changed first

    # filters and later pipes compose: only db, only the big ones
    db = server.query("service:db | patterns | where count:>=100 | fields template, count", since="3h")["rows"]
    assert sorted(db, key=lambda r: r["template"]) == [
        {"template": "connection pool exhausted", "count": 100},
        {"template": "query on table <*> took <num>ms returning <num> rows", "count": 100}]


def test_first_seen_is_over_all_time(server: ServerProcess) -> None:
    now = time.time_ns()
    post(server, [{"timestamp": (now - 5 * HOUR) / NS, "service": "api", "message": "cache warmed in 12ms"},
                  {"timestamp": (now - 60 * NS) / NS, "service": "api", "message": "cache warmed in 7ms"}])
    server.wait_rows(2)
    rows = wait_patterns(server, 1, since="10m")
    assert len(rows) == 1 and rows[0]["count"] == 1  # the window has one record …
    first = rows[0]["first_seen"]
    assert first < rows[0]["last_seen"]  # … but first seen is five hours ago
    assert server.query("* | patterns compare 10m")["rows"][0]["status"] != "new"


def test_scopes_apply_to_the_pipes(server: ServerProcess) -> None:
    post(server, [{"service": "checkout", "message": f"order o-{i} placed by {u}"}
                  for i, u in enumerate(["ann", "ben", "cy", "dee", "eve"] * 3)]
         + [{"service": "billing", "message": f"invoice {i} sent"} for i in range(7)])
    server.wait_rows(22)
    wait_patterns(server, 22)
    key = server.create_key("reader", services=["checkout"])
    for q in ("* | patterns", "* | patterns compare 1h", "service:billing | patterns"):
        response = httpx.post(server.url + "/api/v1/query", json={"q": q},
                              headers={"authorization": f"Bearer {key}"}, timeout=30)
        assert response.status_code == 200, response.text
        assert {r["service"] for r in response.json()["rows"]} <= {"checkout"}, (q, response.json())
    response = httpx.post(server.url + "/api/v1/query", json={"q": "* | patterns"},
                          headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert [(r["template"], r["count"]) for r in response.json()["rows"]] == [("order <*> placed by <*>", 15)]


def test_kill9_and_restart_keep_ids(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--batch-max-age", "0.2")
    now = time.time_ns()
    records, _ = corpus(now)
    post(server, records)
    server.wait_rows(len(records))
    before = {r["template"]: r["pattern_id"] for r in wait_patterns(server, len(records), since="3h")}
    # more of the same, acknowledged, and the process dies at once (batch maybe half done)
    post(server, records[:300])
    server.kill9()
    server.start()
    assert server.wait_rows(len(records) + 300) == len(records) + 300
    post(server, records[300:])
    server.wait_rows(2 * len(records))
    rows = wait_patterns(server, 2 * len(records), since="3h")
    assert {r["template"]: r["pattern_id"] for r in rows} == before
    assert sum(r["count"] for r in rows) == 2 * len(records)


def test_no_patterns_flag(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--batch-max-age", "0.2", "--no-patterns")
    post(server, [{"service": "a", "message": f"tick {i}"} for i in range(5)])
    server.wait_rows(5)
    assert server.query("* | patterns")["rows"] == []
    assert all("pattern_id" not in r for r in server.query("*")["rows"])
    assert not (server.data_dir / "patterns").exists()


_OLD_SCHEMA = """
import sys
from chdb import session
from logharbor.server.engine.store.base import schema_sql
sql = schema_sql("logs")
sql = "\\n".join(l for l in sql.splitlines() if "pattern_id" not in l).replace(
    "GRANULARITY 1,\\n)", "GRANULARITY 1\\n)")
s = session.Session(sys.argv[1])
s.query(sql)
s.query("INSERT INTO logs (timestamp, observed_timestamp, level, service, message) "
        "VALUES (now64(9), now64(9), 'INFO', 'legacy', 'stored before patterns')")
s.close()
"""


def test_a_store_from_before_patterns_is_migrated(tmp_path: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "old"
    (data / "store").mkdir(parents=True)
    subprocess.run([sys.executable, "-c", _OLD_SCHEMA, str(data / "store")], check=True, timeout=120)
    server = server_factory("--batch-max-age", "0.2", "--patterns-backfill-rate", "0", data_dir=data)
    old = server.query("service:legacy")["rows"]
    assert len(old) == 1 and "pattern_id" not in old[0]  # no backfill asked for: it keeps ''
    post(server, [{"service": "legacy", "message": "stored after patterns 1"}])
    server.wait_rows(2)
    rows = wait_patterns(server, 1)
    assert [(r["service"], r["template"], r["count"]) for r in rows] == \
        [("legacy", "stored after patterns <num>", 1)]
