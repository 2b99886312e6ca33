"""Loki's label names and Grafana's underscore paths read from the attributes text (store/sql/
attributes.py ``attribute_names_sql``), on a real chDB store, through the catalog's functions.

What each case would catch: a top-level-only key list names ``k8s`` instead of ``k8s.pod``; an
engine path turned back by a blind ``%2E`` → ``.`` names the key ``x%2Ey`` as ``x.y``; a sample
that is not restricted to the records that may hold a path misses a rare path, and then a
selector on its underscore name matches nothing. And a record's labels from ``| json`` are the
same whatever order its keys were sent in (the JSON column gave them in its path order)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor import exactjson
from logharbor.record import normalize
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.loki import catalog, drilldown
from logharbor.server.features.loki.logql import parse_logql
from logharbor.server.features.loki.streams import Context, record_labels
from logharbor.server.features.query import ast

NS = 1_000_000_000
BASE = 1_793_534_400 * NS  # 2026-11-01T12:00:00Z
START, END = BASE - 3600 * NS, BASE + 3600 * NS
#: one record of each attribute shape, then PLAIN records with flat attributes only
SHAPES = [
    {"k8s": {"pod": "p-1"}},                          # nested: k8s.pod
    {"svc.name": "shop"},                             # a literal dotted key: svc.name
    {"err": {"at": {"line": 3}}, "tags": ["a", 1]},   # deeper nesting; an array is one name
    {"x%2Ey": 1, "x%y": 2},                           # keys with '%': named as written
    {"gone": None, "empty": {}, "nothing": {"inner": None}},  # null and {}: no name
    {"n": 13.0, "big": 2**70},
    {"app_tier": "flat", "app.tier": "dotted"},        # app_tier is itself a path: it stays itself
    {"obj_key": {"a": 1}, "obj.key": 1},              # obj_key is an object, not a path: obj.key
    {"z0": -0.0, "flag": True, "one": 1},             # -0.0 keeps its sign, true is not 1
    {"z0": 0.0, "flag": 1, "one": 1.0},
]
#: PLAIN records hold the parts of svc_name (svc, name) without its path: one sample for all names,
#: filled with them, would miss the RARE path
PLAIN = 40
RARE = {"k8s": {"namespace": {"name": "rare-ns"}}}  # the last record: past a small sample


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    path: Path = tmp_path_factory.mktemp("loki-attrs") / "store"
    store = EmbeddedStore(path)
    store.open()
    attributes = [*SHAPES, *({"user_id": f"u-{i}", "svc": "a name"} for i in range(PLAIN)), RARE]
    records = [{"timestamp": BASE + i * NS, "service": "labels", "message": f"m{i}", "attributes": a}
               for i, a in enumerate(attributes)]
    store.insert(b"\n".join(encode_row(normalize(r, received_ns=BASE)) for r in records), dedup_token="labels")
    yield Context(store=store, scope=None, extra=None, max_limit=1000, settings={})
    store.close()


def test_label_names_list_every_leaf_path_as_a_query_names_it(ctx: Context) -> None:
    names = set(catalog.label_names(ctx, ast.MatchAll(), START, END))
    assert {"k8s.pod", "svc.name", "err.at.line", "tags", "x%2Ey", "x%y", "n", "big", "user_id",
            "k8s.namespace.name", "service", "level"} <= names
    assert not names & {"k8s", "err", "err.at", "x.y", "gone", "empty", "nothing", "nothing.inner", ""}


def test_a_rare_path_resolves_beyond_a_small_sample(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "NAMES_SAMPLE", 5)  # far fewer than the records before RARE
    asked = {"k8s_namespace_name", "svc_name", "user_id", "app_tier", "obj_key"}
    assert drilldown.resolve_label_paths(ctx, asked, START, END) == {
        "k8s_namespace_name": "k8s.namespace.name", "svc_name": "svc.name", "obj_key": "obj.key"}
    assert drilldown.resolve_label_paths(ctx, {"no_such_path"}, START, END) == {}


def test_stream_labels_are_the_values_json_text(ctx: Context) -> None:
    """A record's labels (``| json``, streams, ``line_format``): -0.0 was "0" (the sign lost) and
    1.0 was "1" (one value with 1); each is its JSON text, as the query API writes it."""
    lq = parse_logql('{service="labels"} | json')
    labels = record_labels({"service": "labels", "message": "m",
                            "attributes": {"z0": -0.0, "one": 1.0, "flag": True, "o": {"a": 1}}}, lq)
    assert (labels["z0"], labels["one"], labels["flag"]) == ("-0.0", "1.0", "true")
    # /label/<name>/values (and series, `sum by`) come from the engine's group-by text form, which
    # writes a double's shortest text (-0.0 is "-0", 1.0 is "1": docs/query.md): the sign and the
    # JSON types are kept apart there, the float's spelling is not
    values = {name: catalog.label_values(ctx, name, ast.MatchAll(), START, END) for name in ("z0", "flag")}
    assert values == {"z0": ["-0", "0"], "flag": ["1", "true"]}


def test_json_labels_do_not_depend_on_the_order_keys_were_sent() -> None:
    lq = parse_logql('{service="labels"} | json')
    orders = [{"a.b": "dotted", "a": {"b": "nested"}, "a_b": "flat", "z": 1},
              {"z": 1, "a_b": "flat", "a": {"b": "nested"}, "a.b": "dotted"},
              {"a": {"b": "nested"}, "z": 1, "a.b": "dotted", "a_b": "flat"}]
    labels = [record_labels({"service": "labels", "message": "m", "attributes": a}, lq) for a in orders]
    assert labels[0] == labels[1] == labels[2]
    assert labels[0]["a_b"] == "flat" and labels[0]["z"] == "1"  # what the JSON column's path order gave


def test_the_tail_sender_reads_a_record_with_an_integer_beyond_64_bits() -> None:
    """The tail hub's lines are exactjson's; read with orjson, 2**70 + 1 became a rounded float
    and its ``| json`` label said ...424 instead of ...425."""
    import asyncio

    from logharbor import exactjson
    from logharbor.server.features.loki import routes

    big = 2**70 + 1
    line = exactjson.dumps({"timestamp": "2026-11-01T12:00:00Z", "service": "labels", "message": "big one",
                            "n": big, "ratio": 13.0})

    class Sub:
        closed = False

        async def take(self) -> list[bytes]:
            self.closed = True
            return [line]

    class Socket:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send_text(self, text: str) -> None:
            self.sent.append(text)

    socket = Socket()
    asyncio.run(routes._tail_sender(socket, Sub(), parse_logql('{service="labels"} | json')))  # type: ignore[arg-type]
    (message,) = [exactjson.loads(t) for t in socket.sent]
    (stream,) = message["streams"]
    assert stream["values"][0][1] == "big one"
    # label text is the value's JSON text, as Loki's | json takes a number's lexeme: 13.0 is "13.0"
    assert stream["stream"]["n"] == str(big) and stream["stream"]["ratio"] == "13.0"


@given(st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e300, -1e300, 2.0**53, 1e16, -0.0, 13.0]))
@settings(max_examples=examples(200), deadline=None)
def test_a_float_label_is_the_number_sent(value: float) -> None:
    """A whole float's label was ``str(int(value))``: ``1e300`` became 301 digits, most of them
    not the number's, and ``-0.0`` became ``0``. A label is the float's JSON text as the query API
    writes it: read back as a number it is the float stored, sign included."""
    lq = parse_logql('{service="labels"} | json')
    labels = record_labels({"service": "labels", "message": "m", "attributes": {"f": value}}, lq)
    assert labels["f"] == exactjson.dumps(value).decode() and len(labels["f"]) <= 24
    assert float(labels["f"]) == value and math.copysign(1, float(labels["f"])) == math.copysign(1, value)
