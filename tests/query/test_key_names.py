"""Every attribute key the store keeps can be named in the query language (issue #28 item 2).

A key in any script (``müşteri``, ``用户``) is a bare name; any other key (spaces, colons,
quotes, dots meant literally, an empty key) is written in backticks (docs/query.md, "Field names").
The property: storable ⇒ findable, by ``name:value``, ``_exists_:name`` and ``fields name``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from logharbor.record import normalize
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row, row_to_record
from logharbor.server.features.query import compile_query, parse, to_text
from logharbor.server.features.query.compiler import exact_fields
from logharbor.server.features.query.errors import UnknownFieldError
from logharbor.server.features.query.fields import field_text

_ids = itertools.count()


@pytest.fixture(scope="module")
def store(chdb_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(chdb_path, table="key_names")  # the package's chDB path (conftest)
    s.open()
    yield s
    s.close()


def run(store: EmbeddedStore, q: str) -> list[dict]:  # type: ignore[type-arg]
    compiled = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=100,
                             max_limit=1000)
    return [exact_fields(compiled, row) for row in store.query(compiled.sql, compiled.params)]


def kept_as_attribute(key: str) -> bool:
    """The record keeps ``key`` as an attribute of that name (not folded into a canonical field)."""
    record = normalize({"service": "keys", "message": "m", key: "v"})
    return record.get("attributes", {}).get(key) == "v"


def store_and_find(store: EmbeddedStore, keys: list[str]) -> None:
    keys = [k for k in dict.fromkeys(keys) if kept_as_attribute(k)]
    if not keys:
        return
    batch = next(_ids)
    values = {key: f"v{batch}x{n}" for n, key in enumerate(keys)}
    rows = [encode_row(normalize({"service": "keys", "message": "m", "rid": f"r{batch}", key: value}))
            for key, value in values.items()]
    assert store.insert(b"\n".join(rows), dedup_token=f"keys-{batch}") == len(rows)
    for key, value in values.items():
        name = field_text(key)
        assert to_text(parse(f"{name}:{value}")) == f"{name}:{value}", name  # prints as written
        found = run(store, f"{name}:{value}")
        assert [row_to_record(r)["attributes"][key] for r in found] == [value], (key, name)
        # a backticked name is exactly its key; a bare one also covers a key going on from it
        # with a dot ({"a.x": …} is a field under a: docs/query.md)
        under = 0 if name.startswith("`") else sum(k.startswith(key + ".") for k in values)
        assert len(run(store, f"rid:r{batch} _exists_:{name}")) == 1 + under, (key, name)
        if "\x00" in key or len(name) > 256:  # no SQL identifier spells it: a clear 400
            with pytest.raises(UnknownFieldError, match="cannot name a column of the answer"):
                run(store, f"rid:r{batch} | fields {name}")
            continue
        shown = run(store, f"rid:r{batch} {name}:{value} | fields rid, {name}")
        assert len(shown) == 1 and orjson.dumps(shown[0]).count(value.encode()) == 1, (key, name, shown)


@pytest.mark.parametrize("key", [
    "müşteri", "用户", "ключ", "naïve_key", "emoji🙂", "a b", "a:b", "", ".", "a..b", "a.", ".a",
    "a.b", "`", "a`b", "\\", "a\\`b", "%2E", "x%y", "1abc", "-x", "@x", "x\ny", "(x)", "a|b",
    'say "hi"', "a,b", "a=b", "*", "?", "service", "status", "attributes", "rid2", "\u00a0nbsp",
    "a\x00b", "k" * 300, "a.b.c.d.e.f.g", "x" * 300 + ".y",
])
def test_a_key_is_found_by_its_name(store: EmbeddedStore, key: str) -> None:
    store_and_find(store, [key])


def test_non_ascii_keys_need_no_quotes(store: EmbeddedStore) -> None:
    rows = [encode_row(normalize({"service": "keys", "message": "m", "müşteri": "x1", "用户": 1,
                                  "заказ": {"номер": 7}}))]
    store.insert(b"\n".join(rows), dedup_token="keys-bare")
    assert len(run(store, "müşteri:x1")) == 1
    assert len(run(store, "用户:1")) == 1
    assert len(run(store, "заказ.номер:7")) == 1
    assert len(run(store, "müşteri:x1 | stats count() by 用户")) == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=10), min_size=1, max_size=6))
@example(["", ".x"])  # a backticked name is exact: `` `` `` is not present in {".x": …}
@example(["a", "a.x"])  # a bare name covers {"a.x": …}
def test_storable_keys_are_findable(store: EmbeddedStore, keys: list[str]) -> None:
    store_and_find(store, keys)


def test_the_fields_list_names_each_key_as_a_query_reads_it(server) -> None:  # type: ignore[no-untyped-def]
    """Through a real server: ``/api/v1/fields`` lists every key by the name a query reaches it
    with (what the UI's field list puts into the search box), and that name finds the record."""
    keys = {"müşteri": "x1", "用户": "x2", "a b": "x3", "k.j": "x4", "a`b": "x5", "": "x6",
            "nested": {"c d": "x7", "ok": {"ü": "x8"}}}
    server.ingest([{"service": "keys", "message": "m", "rid": "fl", **keys}])
    with server.client() as client:
        answer = client.get("/api/v1/fields", params={"q": "rid:fl", "from": "now-1h", "to": "now+1h"})
        assert answer.status_code == 200, answer.text
        names = {f["name"] for f in answer.json()["fields"]}
        expected = {"müşteri", "用户", "`a b`", "`k.j`", "`a\\`b`", "``", "nested.`c d`", "nested.ok.ü"}
        assert expected <= names, names
        for name in expected:
            found = server.query(f"rid:fl {name}:x*", **{"from": "now-1h", "to": "now+1h"})
            assert len(found["rows"]) == 1, (name, found)


def test_the_live_tail_reaches_the_same_keys(server) -> None:  # type: ignore[no-untyped-def]
    """The tail compiles its filter with the same resolver and runs it on each batch in the
    engine: a bare non-ASCII name, a quoted key and the empty key match there as in a search."""
    from tests.tail.clients import SseClient, post

    client = SseClient(server, "müşteri:t1 OR `a b`:t2 OR ``:t3 OR rid:tail-end")
    client.wait_subscribed()
    post(server, [{"service": "keys", "message": "m1", "müşteri": "t1"},
                  {"service": "keys", "message": "m0", "müşteri": "other"},
                  {"service": "keys", "message": "m2", "a b": "t2"},
                  {"service": "keys", "message": "m3", "": "t3"},
                  {"service": "keys", "message": "end", "rid": "tail-end"}])
    got, _dropped = client.records_until("end")
    client.close()
    assert [r["message"] for r in got] == ["m1", "m2", "m3", "end"]
