"""Both ends of the store's time range are reachable (issue #28 item 3).

The store keeps times from 1970-01-01T00:00:00Z to 2262-04-11T23:47:16.854775807Z (int64 ns).
``from`` is inclusive and ``to`` exclusive, except that a ``to`` at the last representable instant
includes it (no later instant exists to name). Checked through the compiler on a real store, and
through the query API (JSON and the NDJSON export stream) and ``/api/v1/fields`` of a real server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from logharbor.record import normalize
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.query import compile_query

MIN_NS = 0
MAX_NS = 2**63 - 1
MAX_TEXT = "2262-04-11T23:47:16.854775807Z"
EDGES = {"first": MIN_NS, "second": MIN_NS + 1, "penultimate": MAX_NS - 1, "last": MAX_NS,
         "middle": 1_796_000_000 * 10**9}


@pytest.fixture(scope="module")
def store(chdb_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(chdb_path, table="time_bounds")  # the package's chDB path (conftest)
    s.open()
    rows = [encode_row(normalize({"timestamp": ns, "service": "edge", "message": name, "rid": name}))
            for name, ns in EDGES.items()]
    s.insert(b"\n".join(rows), dedup_token="edges")
    yield s
    s.close()


def found(store: EmbeddedStore, start: int | None, end: int | None, q: str = "*") -> set[str]:
    compiled = compile_query(q, table=store.table, time_from_ns=start, time_to_ns=end, limit=100,
                             max_limit=100)
    return {r["message"] for r in store.query(compiled.sql, compiled.params)}


@pytest.mark.parametrize(("start", "end", "expected"), [
    (None, None, set(EDGES)),
    (MIN_NS, MAX_NS, set(EDGES)),  # the whole range, both ends included
    (MAX_NS, MAX_NS, {"last"}),  # a window of the last instant alone
    (MAX_NS - 1, MAX_NS, {"penultimate", "last"}),
    (None, MAX_NS - 1, {"first", "second", "middle"}),  # below the maximum, to stays exclusive
    (MIN_NS, MIN_NS + 1, {"first"}),
    (MIN_NS + 1, None, set(EDGES) - {"first"}),
])
def test_both_ends_of_the_range_are_reachable(store: EmbeddedStore, start: int | None, end: int | None,
                                              expected: set[str]) -> None:
    assert found(store, start, end) == expected


def test_the_language_reaches_both_ends(store: EmbeddedStore) -> None:
    assert found(store, None, None, f"_time:[1970-01-01T00:00:00Z TO {MAX_TEXT}]") == set(EDGES)
    assert found(store, None, None, f"_time:>={MAX_TEXT}") == {"last"}
    assert found(store, None, None, "_time:<=1970-01-01T00:00:00Z") == {"first"}


def test_the_api_reaches_both_ends(server) -> None:  # type: ignore[no-untyped-def]
    server.ingest([{"timestamp": ns, "service": "edge", "message": name, "rid": name}
                   for name, ns in EDGES.items()])
    window = {"from": "1970-01-01T00:00:00Z", "to": MAX_TEXT}
    with server.client() as client:
        answer = client.post("/api/v1/query", json={"q": "service:edge", **window, "limit": 100})
        assert answer.status_code == 200, answer.text
        assert {r["message"] for r in answer.json()["rows"]} == set(EDGES)
        last = client.post("/api/v1/query", json={"q": "service:edge", "from": MAX_TEXT, "to": MAX_TEXT})
        assert last.status_code == 200, last.text  # from == to at the maximum: the last instant
        assert [r["message"] for r in last.json()["rows"]] == ["last"]
        export = client.post("/api/v1/query", json={"q": "service:edge", **window, "limit": 100},
                             headers={"accept": "application/x-ndjson"})
        assert export.status_code == 200, export.text
        lines = [orjson.loads(line) for line in export.content.splitlines() if line.strip()]
        assert {r["message"] for r in lines if "message" in r} == set(EDGES)
        fields = client.get("/api/v1/fields", params={"q": "service:edge", **window})
        assert fields.status_code == 200 and fields.json()["total"] == len(EDGES), fields.text
    beyond = httpx.post(server.url + "/api/v1/query", headers=server.headers,
                        json={"q": "*", "to": "2262-04-12T00:00:00Z"})
    assert beyond.status_code == 400 and "2262" in beyond.json()["error"]["message"], beyond.text
