"""Stored means unaltered (issue #20, items 7–9): hypothesis-generated records go through real
ingest (a real server process, ``POST /api/v1/logs`` and ``POST /_bulk``) and back out of a real
query (``POST /api/v1/query``), on the embedded store and on the ClickHouse store (against the HTTP
double, tests/cluster/chdouble.py).

Every record carries attributes of any JSON shape (key spellings that collide in a naive store,
date-like strings, integers beyond 64 bits, floats at the edges, nulls, empty objects, mixed and
nested arrays, unicode beyond the BMP), each line written by one of several JSON writers (ASCII
escapes, spaces). Known bad lines are mixed in. What must hold, per batch:

- every line is either acknowledged or rejected *alone* with a reason (a record that could fail
  the store's insert would stall the batch: it never becomes searchable and the test times out);
- what a records query returns equals what was sent, attribute by attribute, types and all
  (1 is not 1.0 is not True; -0.0 is -0.0; key order is not kept): the folding of docs/record.md
  leaves these attributes alone, so nothing may differ;
- a search ``key:value`` finds the record for every top-level scalar it can name.

The figures (acknowledged / stored / lost / duplicated, and altered) are printed as ``FAULT`` lines.
Bounded for CI; ``LOGHARBOR_FULL_TESTS=1`` runs many more batches.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.cluster.conftest import start_double, stop_double
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally
from tests.record.values import json_values, keys, typed

from logharbor import exactjson
from logharbor.record import _ALIASES, HTTP_FIELDS
from logharbor.server.engine.store.attributes import lookup
from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.fields import resolve_field
from logharbor.server.features.query.lexer import FIELD_NAME
from logharbor.server.ingest import ecs

FULL = os.environ.get("LOGHARBOR_FULL_TESTS") == "1"
#: the long variant (300 + 100 batches per store) outlasts pytest-timeout's 300 s on a loaded machine
pytestmark = [pytest.mark.timeout(3600)] if FULL else []
T0 = "2026-11-01T12:00:00.123456Z"
WINDOW = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}
_batches = itertools.count()

#: names the native folding reads (aliases, canonical fields): a generated key is never one of them
FOLDED = {k for k in _ALIASES if isinstance(k, str)} | {"http", "attributes", "rt_id", "rt_batch"} | {
    f"http.{name}" for name in HTTP_FIELDS}
#: and for _bulk, also what the ECS mapping reads (heads of ECS paths, objects it flattens)
ECS_HEADS = {path.partition(".")[0] for path, _ in ecs._ECS_PATHS} | ecs._CANONICAL | ecs._ALIASES | {
    "index", "doc_id", "event"}

#: lines no store can take as they are: each must be refused alone, with a reason
BAD_LINES = [
    b'{"message": "status beyond UInt16", "http": {"status": 70000}}',
    b'{"message": "bytes beyond UInt64", "http": {"bytes_sent": 18446744073709551616}}',
    b'{"message": "NaN is not JSON", "x": NaN}',
    b'{"message": "a double overflows", "x": 1e400}',
    b'{"message": "an integer of 5000 digits", "x": 1' + b"0" * 5000 + b"}",
    b'{"message": "a lone surrogate", "x": "\\ud800"}',
    b'{"message": "not an object"',
    b'["an array"]',
    b'{"message": "a timestamp out of range", "timestamp": "2263-01-01T00:00:00Z"}',
]


def writers() -> st.SearchStrategy[Any]:
    """How a client writes one line: compact, ASCII-escaped, with spaces (all exact for big ints)."""
    return st.sampled_from([
        exactjson.dumps,
        lambda obj: json.dumps(obj, ensure_ascii=True).encode(),
        lambda obj: json.dumps(obj, ensure_ascii=False, separators=(" , ", " : ")).encode(),
    ])


def attributes(exclude: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    top_keys = keys.filter(lambda k: k not in exclude and k.partition(".")[0] not in exclude)
    return st.dictionaries(top_keys, json_values, max_size=8)


def batches(exclude: set[str]) -> st.SearchStrategy[Any]:
    return st.tuples(st.lists(st.tuples(attributes(exclude), writers()), min_size=1, max_size=20),
                     st.lists(st.sampled_from(BAD_LINES), max_size=3), st.randoms(use_true_random=False))


# -- the servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["embedded", "clickhouse"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server on the embedded store, or on the ClickHouse store through the HTTP double."""
    root: Path = tmp_path_factory.mktemp(f"roundtrip-{request.param}")
    args = ["--batch-max-age", "0.2"]
    double = None
    if request.param == "clickhouse":
        double = start_double(root / "clickhouse")
        args += ["--store", double.url("roundtrip")]
    proc = ServerProcess(root / "data", *args)
    proc.store_kind = request.param  # type: ignore[attr-defined]
    try:
        yield proc.start()
    finally:
        proc.stop()
        if double is not None:
            stop_double(double)


def query(server: ServerProcess, q: str) -> list[dict[str, Any]]:
    with server.client() as client:
        response = client.post("/api/v1/query", json={"q": q, "limit": 1000, **WINDOW})
    assert response.status_code == 200, response.text
    return exactjson.loads(response.content)["rows"]  # an attribute may be an integer beyond 64 bits


def wait_for(server: ServerProcess, batch: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The batch's records once all ``count`` are searchable; fails (poison batch?) at the deadline."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = query(server, f"rt_batch:{batch}")
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    tail = "\n".join(server.log().splitlines()[-30:])
    raise AssertionError(f"batch {batch}: {len(rows)} of {count} acknowledged records searchable after "
                         f"{timeout} s (a record failing the whole insert?); server log:\n{tail}")


# -- what must hold ------------------------------------------------------------------------------


def phrase(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def nameable(key: str) -> bool:
    """Whether the query language can name the attribute ``key`` (not a canonical column name)."""
    if not FIELD_NAME.fullmatch(key) or any(not part for part in key.split(".")):
        return False
    try:
        return resolve_field(key).kind == "dynamic"  # else a canonical name (path, status, …)
    except QueryError:
        return False


def searchable(key: str, value: Any) -> str | None:
    """The query ``key:value`` for a scalar the query language can name, else None."""
    if not nameable(key):
        return None
    if isinstance(value, bool):
        return f"{key}:{'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{key}:{value}"
    if isinstance(value, float):
        return f"{key}:{value!r}"
    if isinstance(value, str):
        return f"{key}:{phrase(value)}"
    return None


def check_batch(server: ServerProcess, tally: Tally, altered: list[str], sent: dict[str, dict[str, Any]],
                extra: dict[str, Any], batch: str, bad: int, rejected: list[Any]) -> None:
    """Everything acknowledged comes back equal; bad lines (only they) are refused, with reasons."""
    assert len(rejected) == bad, rejected
    assert all(reason for reason in rejected), rejected
    tally.ack(sent)
    rows = wait_for(server, batch, len(sent))
    tally.saw(row.get("rt_id") for row in rows)
    for row in rows:
        rid = row.get("rt_id")
        if rid not in sent:
            continue
        want = sent[rid] | extra
        got = {k: v for k, v in row.items() if k not in ("timestamp", "observed_timestamp", "level", "service",
                                                         "message", "pattern_id")}
        if typed(got) != typed(want):
            altered.append(rid)
            diff = {k: (want.get(k, "<absent>"), got.get(k, "<absent>")) for k in set(want) | set(got)
                    if k not in want or k not in got or typed(want[k]) != typed(got[k])}
            raise AssertionError(f"{rid} came back altered (sent, got): {diff!r}")
        for key, value in sent[rid].items():
            q = searchable(key, value)
            if q is not None and not key.startswith("rt_"):
                hits = query(server, f"rt_id:{rid} AND {q}")
                assert len(hits) == 1, f"{rid}: the search {q!r} did not find the record"
    # | fields of attributes gives the stored values too (a dotted name: the first spelling present)
    names = sorted({k for attrs in sent.values() for k in attrs if nameable(k) and not k.startswith("rt_")})[:12]
    if names:
        table = query(server, f"rt_batch:{batch} | fields rt_id, {', '.join(names)}")
        assert len(table) == len(sent)
        for row in table:
            attrs = sent[row["rt_id"]] | extra
            for name in names:
                assert typed(row[name]) == typed(lookup(attrs, name)), (row["rt_id"], name, row[name])


def test_native_ingest_round_trip(server: ServerProcess) -> None:
    tally = Tally(f"roundtrip-native-{server.store_kind}")  # type: ignore[attr-defined]
    altered: list[str] = []

    @settings(max_examples=300 if FULL else 12, deadline=None, derandomize=not FULL,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batches(FOLDED))
    def run(generated: Any) -> None:
        records, bad_lines, rnd = generated
        batch = f"b{next(_batches)}n"
        lines: list[bytes] = []
        sent: dict[str, dict[str, Any]] = {}
        for i, (attrs, write) in enumerate(records):
            rid = f"{batch}r{i}"
            sent[rid] = {"rt_id": rid, "rt_batch": batch, **attrs}
            lines.append(write({"timestamp": T0, "service": "roundtrip", "message": f"record {rid}", **sent[rid]}))
        for line in bad_lines:
            lines.insert(rnd.randrange(len(lines) + 1), line)
        with server.client() as client:
            response = client.post("/api/v1/logs", content=b"\n".join(lines), headers={"content-type": "application/x-ndjson"})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["accepted"] == len(sent), answer
        check_batch(server, tally, altered, sent, {}, batch, len(bad_lines),
                    [r["error"] for r in answer["rejected"]])

    run()
    tally.extra["altered"] = len(altered)
    tally.report()


def test_bulk_ingest_round_trip(server: ServerProcess) -> None:
    """The same through the Elasticsearch ``_bulk`` API (its ECS mapping leaves these keys alone;
    it adds the index name as the attribute ``index``)."""
    tally = Tally(f"roundtrip-bulk-{server.store_kind}")  # type: ignore[attr-defined]
    altered: list[str] = []

    @settings(max_examples=100 if FULL else 5, deadline=None, derandomize=not FULL,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batches(FOLDED | ECS_HEADS))
    def run(generated: Any) -> None:
        records, _, _ = generated
        batch = f"b{next(_batches)}e"
        lines: list[bytes] = []
        sent: dict[str, dict[str, Any]] = {}
        for i, (attrs, write) in enumerate(records):
            rid = f"{batch}r{i}"
            sent[rid] = {"rt_id": rid, "rt_batch": batch, **attrs}
            lines += [b'{"index": {"_index": "rt"}}', write({"@timestamp": T0, "message": f"record {rid}",
                                                             "service": "roundtrip", **sent[rid]})]
        with server.client() as client:
            response = client.post("/_bulk", content=b"\n".join(lines) + b"\n",
                                   headers={"content-type": "application/x-ndjson"})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [next(iter(item.values()))["status"] for item in items] == [201] * len(sent), items
        check_batch(server, tally, altered, sent, {"index": "rt"}, batch, 0, [])

    run()
    tally.extra["altered"] = len(altered)
    tally.report()


def test_a_reported_case_each(server: ServerProcess) -> None:
    """The cases found from outside, named: they come back as sent and are found by their text."""
    cases = {"request_creation_time": "2018-07-02T22:22:48.364000Z", "when": "2026-12-06T10:00:00+05:30",
             "big": 2**64 + 1, "a.b": 1, "a": {"b": 2}, "": 3, ".x": 4, "x.": 5, "%2E": 6}
    rid = f"b{next(_batches)}x"
    with server.client() as client:
        body = exactjson.dumps({"timestamp": T0, "service": "roundtrip", "message": f"record {rid}",
                                "rt_id": rid, "rt_batch": rid, **cases})
        assert client.post("/api/v1/logs", content=body).json()["accepted"] == 1
    (row,) = wait_for(server, rid, 1)
    assert typed({k: row[k] for k in cases}) == typed(cases)
    for q in ('request_creation_time:"2018-07-02T22:22:48.364000Z"', 'when:"2026-12-06T10:00:00+05:30"',
              "big:18446744073709551617", "a.b:1", "a.b:2"):
        assert len(query(server, f"rt_id:{rid} AND {q}")) == 1, q
