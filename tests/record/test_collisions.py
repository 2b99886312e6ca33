"""Two values for one name: no value a record sends is dropped or hidden by another value of the
same name (docs/record.md "Two values for one name").

The property: for any record made of names that collide — canonical names, their aliases, an
``attributes`` object holding the same names, the names the folding sets (``level_raw``,
``trace_raw``, ``trace_header``), the server's own (``observed_timestamp``, ``severity_number``,
``pattern_id``), names that already carry the ``_attribute`` suffix — every value sent is in the
stored record: in the canonical field it was folded into (as docs/record.md says it folds), or as
an attribute under its own (dotted) name or ``<name>_attribute``, ``<name>_attribute2`` … And the
wire form (what a query returns) shows every stored attribute. The stored record is read back
from the store row the encoder writes (``encode_record`` → ``row_to_record``), tenant stamping
included. Before, ``attributes.service`` beside ``service``, a flat ``http.route`` beside the
``http`` object's, a sent ``level_raw``/``trace_raw``/``trace_header``, ``observed_timestamp``,
a ``severity_number`` beside a level, the body's ``tenant`` under a scoped key and a null
``attributes`` were dropped, and ``pattern_id`` or ``http`` were hidden in the answer.

The one exception, documented: ``null`` or ``""`` under a canonical name is that field left out.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import ServerProcess
from tests.record.values import typed

from logharbor import exactjson
from logharbor.record import (
    _ALIASES,
    HTTP_FIELDS,
    RecordError,
    http_value,
    normalize,
    normalize_level,
    normalize_trace_id,
    parse_timestamp,
    to_wire,
)
from logharbor.server.engine.store.rows import encode_record, row_to_record

RECEIVED = 1_764_043_200_123_456_789
#: names whose null or "" is the field left out (docs/record.md: the one exception)
EMPTY_IS_ABSENT = frozenset(("timestamp", "observed_timestamp", "level", "severity_number", "service", "source",
                             "host", "instance", "env", "version", "message", "trace_id", "span_id", "request_id",
                             "tenant", "http", *(f"http.{name}" for name in HTTP_FIELDS)))
_SUFFIX = re.compile(r"_attribute\d*$")


def _key(value: Any) -> str:
    return repr(typed(value))


def _text(value: Any) -> str:
    """A canonical text field's value as docs/record.md says it is stored (another JSON type as its text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return exactjson.dumps(value).decode()


def stored_index(attributes: dict[Any, Any]) -> set[tuple[str, str]]:
    """(dotted path, typed value) of every node of the stored attributes, each top-level key also
    under its name without an ``_attribute…`` suffix (where a value that lost its name is)."""
    index: set[tuple[str, str]] = set()

    def walk(path: str, value: Any) -> None:
        index.add((path, _key(value)))
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{path}.{key}", item)

    for key, value in attributes.items():
        walk(str(key), value)
        if _SUFFIX.search(str(key)):
            walk(_SUFFIX.sub("", str(key)), value)
    return index


def folded(path: str, value: Any, record: dict[str, Any]) -> bool:
    """Whether ``value``, sent under ``path``, is the canonical field it folds into, as documented."""
    entry = _ALIASES.get(path)
    if entry is None:
        return False
    field = entry[0]
    attributes = record["attributes"]
    if field == "timestamp":
        try:
            return record["timestamp"] == parse_timestamp(value)
        except RecordError:
            return False
    if field == "message":
        return record["message"] == _text(value)
    if field == "level":
        return record["level"] == normalize_level(value) or _key(attributes.get("level_raw")) == _key(value)
    if field == "trace":
        text = _text(value)
        trace_id = normalize_trace_id(value)
        return (trace_id is not None and record["trace_id"] == trace_id) or record["request_id"] == text \
            or attributes.get("trace_raw") == text
    if field == "span":
        return record["span_id"] == _text(value).lower()
    if field == "request":
        return record["request_id"] == _text(value)
    if field == "tenant":  # a scoped writer's tenant wins; the record's own is kept, as its text
        return _text(value) in (record["tenant"], *(v for k, v in attributes.items() if _SUFFIX.sub("", k) == "tenant"))
    if field in ("service", "source", "host", "instance", "env", "version"):
        return record[field] == _text(value)
    if field.startswith("http."):
        try:
            return _key(record["http"].get(field[5:])) == _key(http_value(field[5:], value))
        except RecordError:
            return False
    if field == "otel_severity":
        return _key(record["severity_number"]) == _key(value)
    return False  # observed_timestamp, http, attributes: never folded whole


def appears(path: str, value: Any, record: dict[str, Any], index: set[tuple[str, str]]) -> bool:
    if (path, _key(value)) in index or folded(path, value, record):
        return True
    if value is None or value == "" or (value == {} and path == "http"):
        return path in EMPTY_IS_ABSENT
    if isinstance(value, dict) and value:  # an object's members may be stored as dotted keys
        return all(appears(f"{path}.{key}", item, record, index) for key, item in value.items())
    return False


def sent_values(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) of what a record sends: its keys, and its ``attributes`` object's."""
    out: list[tuple[str, Any]] = []
    for key, value in obj.items():
        if key == "attributes" and type(value) is dict:
            out.extend(value.items())
        else:
            out.append((key, value))
    return out


def missing(obj: dict[str, Any], record: dict[str, Any]) -> list[tuple[str, Any]]:
    index = stored_index(record["attributes"])
    return [(path, value) for path, value in sent_values(obj) if not appears(path, value, record, index)]


def hidden_in_wire(record: dict[str, Any]) -> list[tuple[Any, Any]]:
    """Stored attributes the wire form does not show under their name or a ``_attribute`` one."""
    wire = to_wire(record)
    shown = {(_SUFFIX.sub("", str(k)), _key(v)) for k, v in wire.items()} | {(str(k), _key(v)) for k, v in wire.items()}
    out = [(k, v) for k, v in record["attributes"].items() if (str(k), _key(v)) not in shown]
    for name in ("service", "message", "level", "trace_id", "request_id", "tenant"):
        if record.get(name) not in (None, "") and wire.get(name) != record[name]:
            out.append((name, record[name]))  # a canonical field shadowed by an attribute
    return out


# -- generated records of colliding names -------------------------------------------------------

CANONICAL = ["service", "message", "level", "timestamp", "trace_id", "span_id", "request_id", "host", "env",
             "version", "instance", "tenant", "observed_timestamp", "severity_number", "http"]
ALIASES = ["msg", "log", "event", "severity", "lvl", "@timestamp", "time", "ts", "trace.id", "traceId", "span.id",
           "service.name", "service_name", "hostname", "environment", "http.status", "http.method", "http.route",
           "http.path", "requestId"]
FOLDING = ["level_raw", "trace_raw", "trace_header", "pattern_id"]
SUFFIXED = ["service_attribute", "service_attribute2", "a_attribute", "level_raw_attribute", "http.route_attribute",
            "message_attribute", "tenant_attribute", "pattern_id_attribute"]
PLAIN = ["a", "b", "status", "path", "user_id"]
NAMES = CANONICAL + ALIASES + FOLDING + SUFFIXED + PLAIN

scalars = st.none() | st.booleans() | st.integers(-3, 70000) | st.sampled_from([0.0, -0.0, 1.0, 2.5, 2**70]) | \
    st.sampled_from(["", "a", "b", "x", "ERROR", "warn", "bogus", "12:00", "GET", "200"])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=2) |
                      st.dictionaries(st.sampled_from(["a", "b", "name", "id", "route", "status"]), inner, max_size=2),
                      max_leaves=4)
times = st.sampled_from(["2026-11-25T03:51:07Z", "2026-11-25T03:51:07.5+02:00", 1764043200, "1764043200123",
                         None, ""])
levels = st.sampled_from(["info", "WARN", "error", 30, "bogus", None, "", 17])
trace_ids = st.sampled_from(["5759e988bd862e3fe1be46a994272793", "bd862e3fe1be46a9", "req-1", None, "",
                             "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01",
                             "Root=1-5759e988-bd862e3fe1be46a994272793"])
http_objects = st.dictionaries(st.sampled_from(["status", "method", "route", "path", "x"]),
                               st.sampled_from([200, 503, "GET", "/a", None, "r"]), max_size=3)


def value_for(name: str) -> st.SearchStrategy[Any]:
    field = _ALIASES.get(name, ("", 0))[0]
    if field == "timestamp" and name in ("timestamp", "@timestamp"):
        return times  # these two refuse a record whose time does not read
    if field == "timestamp":
        return times | values
    if field == "level":
        return levels | values
    if field == "trace":
        return trace_ids | values
    if name == "http":
        return http_objects | st.sampled_from(["GET /", 5, None])
    if name in ("http.status",):
        return st.sampled_from([200, "404", None, 503])
    if field.startswith("http."):
        return st.sampled_from(["GET", "/p", None, "x"])
    if name == "severity_number":
        return st.sampled_from([9, 17, "9", 3, 30, "x", None])
    return values


@st.composite
def colliding(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(NAMES), max_size=7, unique=True))
    obj: dict[str, Any] = {name: draw(value_for(name)) for name in names}
    nested = draw(st.lists(st.sampled_from(NAMES), max_size=5, unique=True))
    if nested or draw(st.booleans()):
        obj["attributes"] = {name: draw(value_for(name)) for name in nested} if nested else \
            draw(st.sampled_from([None, "", 5, [1]]))
    return obj


def stored(obj: dict[str, Any], tenant: str | None) -> dict[str, Any] | None:
    """The record as the store row written by ingest holds it (None: refused, with a reason)."""
    try:
        row = encode_record(obj, received_ns=RECEIVED, tenant=tenant)
    except RecordError:
        return None
    return dict(row_to_record(exactjson.loads(row)))


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(colliding(), st.sampled_from([None, "acme"]))
def test_every_value_sent_is_stored_and_shown(obj: dict[str, Any], tenant: str | None) -> None:
    record = stored(obj, tenant)
    if record is None:
        return
    assert missing(obj, record) == []
    assert hidden_in_wire(record) == []
    direct = dict(normalize(obj, received_ns=RECEIVED))  # the normalizer alone, without the row
    assert missing(obj, direct) == []
    assert hidden_in_wire(direct) == []


# -- named cases --------------------------------------------------------------------------------

CASES: list[tuple[dict[str, Any], str | None, dict[str, Any], dict[str, Any]]] = [
    # (sent, tenant, canonical fields expected, attributes expected)
    ({"service": "checkout", "attributes": {"service": "billing"}}, None,
     {"service": "checkout"}, {"service_attribute": "billing"}),
    ({"message": "a", "attributes": {"message": "b", "msg": "c"}}, None,
     {"message": "a"}, {"message_attribute": "b", "msg": "c"}),
    ({"attributes": {"a": 1}, "a": 2, "a_attribute": 3}, None, {}, {"a": 2, "a_attribute": 3, "a_attribute2": 1}),
    ({"attributes": {"a": 1}, "a": 1}, None, {}, {"a": 1}),  # one value, kept once
    ({"attributes": {"a": 1}, "a": 1.0}, None, {}, {"a": 1.0, "a_attribute": 1}),  # 1 is not 1.0
    ({"attributes": {"level": "error"}, "severity": "warn", "level": "info"}, None,
     {"level": "INFO"}, {"severity": "warn", "level_attribute": "error"}),
    ({"attributes": {"@timestamp": "2026-11-25T03:51:07Z"}, "@timestamp": "2026-11-25T03:51:08Z"}, None,
     {"timestamp": parse_timestamp("2026-11-25T03:51:08Z")}, {"@timestamp_attribute": "2026-11-25T03:51:07Z"}),
    ({"attributes": {"trace.id": "5759e988bd862e3fe1be46a994272793"}, "trace_id": "0af7651916cd43dd8448eb211c80319c",
      "trace.id": "x"}, None, {"trace_id": "0af7651916cd43dd8448eb211c80319c"},
     {"trace.id": "x", "trace.id_attribute": "5759e988bd862e3fe1be46a994272793"}),
    ({"http": {"status": 200, "route": "/x"}, "http.route": "/y"}, None,
     {"http": {"status": 200}}, {"http.route": "/y", "http.route_attribute": "/x"}),
    ({"http": {"status": 200}, "http.status": 404, "status": "ok"}, None,
     {"http": {"status": 200}}, {"http.status": 404, "status": "ok"}),
    ({"http": "GET /", "http.status": 200}, None, {"http": {"status": 200}}, {"http_attribute": "GET /"}),
    ({"http": "GET /"}, None, {"http": {}}, {"http": "GET /"}),
    ({"level": "bogus", "level_raw": "mine"}, None, {"level": "INFO"},
     {"level_raw": "bogus", "level_raw_attribute": "mine"}),
    ({"trace_id": "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01", "trace_header": "mine"}, None,
     {"trace_id": "5759e988bd862e3fe1be46a994272793"},
     {"trace_header": "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01", "trace_header_attribute": "mine"}),
    ({"trace_id": "nope", "request_id": "r", "trace_raw": "mine"}, None, {"request_id": "r"},
     {"trace_raw": "nope", "trace_raw_attribute": "mine"}),
    ({"observed_timestamp": "2020-01-01T00:00:00Z"}, None, {"observed_timestamp": RECEIVED},
     {"observed_timestamp_attribute": "2020-01-01T00:00:00Z"}),
    ({"level": "info", "severity_number": 17}, None, {"severity_number": 9}, {"severity_number_attribute": 17}),
    ({"severity_number": 9}, None, {"level": "INFO", "severity_number": 9}, {}),  # its own number: once
    ({"severity_number": 10}, None, {"level": "INFO", "severity_number": 9}, {"severity_number_attribute": 10}),
    ({"pattern_id": "mine", "message": "m"}, None, {"message": "m"}, {"pattern_id_attribute": "mine"}),
    ({"attributes": None}, None, {}, {"attributes": None}),
    ({"attributes": ""}, None, {}, {"attributes": ""}),
    ({"tenant": "other", "message": "m"}, "acme", {"tenant": "acme"}, {"tenant_attribute": "other"}),
    ({"tenant": "acme"}, "acme", {"tenant": "acme"}, {}),
    # an object under `service` is ECS's service.* fields: no name in it, so no service; kept as `service.a`
    ({"service": {"a": 1}}, None, {"service": "unknown"}, {"service.a": 1}),
    # … unless a dotted name it would make is taken: then it is the service's text, the dotted key stays
    ({"service": {"name": "checkout", "a": 1}, "attributes": {"service.name": "billing"}}, None,
     {"service": '{"name":"checkout","a":1}'}, {"service.name": "billing"}),
]


@pytest.mark.parametrize(("sent", "tenant", "fields", "attributes"), CASES)
def test_named_collisions(sent: dict[str, Any], tenant: str | None, fields: dict[str, Any],
                          attributes: dict[str, Any]) -> None:
    record = stored(sent, tenant)
    assert record is not None
    for name, value in fields.items():
        assert typed(record[name]) == typed(value), name
    assert typed(record["attributes"]) == typed(attributes)
    assert missing(sent, record) == [] and hidden_in_wire(record) == []


def test_the_wire_form_never_hides_a_stored_value() -> None:
    """Rows written before this rule (or by another writer) may hold an attribute named as a field
    the wire form shows: it is shown as ``<name>_attribute`` (a name sent as such keeps its own)."""
    record = dict(normalize({"service": "checkout", "level": "info", "message": "m"}, received_ns=RECEIVED))
    record["attributes"] = {"service": "billing", "service_attribute": "sent", "level": "INFO", "pattern_id": "p",
                            "timestamp": 5, "http": "x"}
    wire = to_wire(record)
    assert wire["service"] == "checkout" and wire["level"] == "INFO" and wire["message"] == "m"
    assert wire["service_attribute"] == "sent" and wire["service_attribute2"] == "billing"
    assert wire["pattern_id_attribute"] == "p" and wire["timestamp_attribute"] == 5
    assert wire["http"] == "x"  # no http object on this record: the attribute has the name
    assert "level_attribute" not in wire  # the same value as the field: shown once
    assert hidden_in_wire(record) == []


def test_a_real_server_stores_and_finds_both_values(server: ServerProcess) -> None:
    """Through ingest, the WAL, the store and the query API: both values come back, and the one that
    lost its name is found by ``<name>_attribute``."""
    lines = [{"timestamp": "2026-11-25T03:51:07Z", "service": "checkout", "message": "one",
              "attributes": {"service": "billing", "user_id": "u-1"}},
             {"timestamp": "2026-11-25T03:51:08Z", "service": "checkout", "message": "two",
              "pattern_id": "mine", "http": {"status": 200, "route": "/x"}, "http.route": "/y"}]
    body = b"\n".join(orjson.dumps(line) for line in lines)
    with server.client() as client:
        answer = client.post("/api/v1/logs", content=body, headers={"content-type": "application/x-ndjson"}).json()
        assert answer == {"accepted": 2, "rejected": []}
        assert server.wait_rows(2) >= 2
        window = {"from": "2026-11-25T00:00:00Z", "to": "2026-11-26T00:00:00Z"}
        first = client.post("/api/v1/query", json={"q": "service_attribute:billing", **window}).json()["rows"]
        second = client.post("/api/v1/query", json={"q": "pattern_id_attribute:mine", **window}).json()["rows"]
        route = client.post("/api/v1/query", json={"q": 'http.route_attribute:"/x"', **window}).json()["rows"]
    (one,) = first
    assert one["service"] == "checkout" and one["service_attribute"] == "billing" and one["user_id"] == "u-1"
    (two,) = second
    assert two["pattern_id_attribute"] == "mine" and two["pattern_id"] != "mine"
    assert two["http.route"] == "/y" and two["http.route_attribute"] == "/x"
    assert [row["message"] for row in route] == ["two"]
