"""A protocol's own value and a record key of the same name: neither vanishes. A Fluent forward
tag beside a record's own ``tag`` key, a ``_bulk`` action's ``_index``/``_id`` beside a document's
own ``index``/``doc_id``: the record keeps its key (as before) and the protocol's value is kept as
``<name>_forward`` / ``<name>_bulk``. Before, ``setdefault`` dropped the protocol's value without
a word (``tag:app.access`` found nothing for such a record)."""

from __future__ import annotations

import orjson

from logharbor.server.ingest.base import RecordLimits
from logharbor.server.ingest.ecs import decode_bulk
from logharbor.server.ingest.forward import decode_entries

RECEIVED = 1_800_000_000_000_000_000


def _attrs(row: bytes) -> dict:  # type: ignore[type-arg]
    return orjson.loads(row)["attributes"]


def test_a_forward_tag_beside_a_record_tag_is_kept() -> None:
    entries = [[1_796_630_400, {"message": "m1", "tag": "from-record"}],
               [1_796_630_400, {"message": "m2", "tag": "app.access"}],
               [1_796_630_400, {"message": "m3", "tag": "x", "tag_forward": "taken"}],
               [1_796_630_400, {"message": "m4"}]]
    payload, accepted, rejected = decode_entries("app.access", entries, RECEIVED, RecordLimits())
    assert (accepted, rejected) == (4, 0)
    rows = [_attrs(line) for line in payload.split(b"\n")]
    assert rows[0]["tag"] == "from-record" and rows[0]["tag_forward"] == "app.access"
    assert rows[1] == {"tag": "app.access"}  # equal: one copy
    assert rows[2]["tag_forward"] == "taken" and rows[2]["tag_forward2"] == "app.access"
    assert rows[3] == {"tag": "app.access"}


def test_a_bulk_index_and_id_beside_the_documents_own_keys_are_kept() -> None:
    body = b"\n".join([
        b'{"create": {"_index": "logs-web", "_id": "a-1"}}',
        b'{"message": "m1", "index": "own-index", "doc_id": "own-id"}',
        b'{"index": {"_index": "logs-web"}}',
        b'{"message": "m2", "index": "logs-web"}',
        b""])
    docs, items, _ = decode_bulk(body, None, RECEIVED, RecordLimits())
    assert [item[3] for item in items] == [201, 201]
    first, second = (_attrs(row) for _, row, _ in docs)
    assert first["index"] == "own-index" and first["index_bulk"] == "logs-web"
    assert first["doc_id"] == "own-id" and first["doc_id_bulk"] == "a-1"
    assert second == {"index": "logs-web"}


def test_a_nested_value_beside_the_same_flat_name_is_kept() -> None:
    """A document giving one name both nested and flat with different values
    (``{"http": {"method": "GET"}, "http.method": "POST"}``, ``host.os`` beside ``host_os``):
    the flat one keeps the name, the nested one is kept as ``<name>_nested`` (``setdefault``
    dropped it); equal values stay one."""
    body = b"\n".join([
        b'{"create": {"_index": "x"}}',
        b'{"message": "m1", "http": {"method": "GET", "status": 200}, "http.method": "POST"}',
        b'{"create": {"_index": "x"}}',
        b'{"message": "m2", "host": {"hostname": "a", "os": {"name": "linux"}}, "host_os": "x"}',
        b'{"create": {"_index": "x"}}',
        b'{"message": "m3", "http": {"method": "GET"}, "http.method": "GET"}',
        b""])
    docs, items, _ = decode_bulk(body, None, RECEIVED, RecordLimits())
    assert [item[3] for item in items] == [201, 201, 201]
    first, second, third = (orjson.loads(row) for _, row, _ in docs)
    assert first["http_method"] == "POST" and first["attributes"]["http_method_nested"] == "GET"
    assert first["http_status"] == 200
    assert second["host"] == "a" and second["attributes"]["host_os"] == "x"
    assert second["attributes"]["host_os_nested"] == {"name": "linux"}
    assert third["http_method"] == "GET" and "http_method_nested" not in third["attributes"]


def test_true_beside_1_is_two_values() -> None:
    """Python has ``True == 1``; JSON has two values. A nested ``true`` beside a flat ``1`` (and an
    OTLP record's ``true`` beside its resource's ``1``) is kept, not taken for the same value."""
    from logharbor.server.ingest.otlp import decode_otlp

    body = b'{"create": {"_index": "x"}}\n{"message": "m", "host": {"os": true}, "host_os": 1}\n'
    docs, _, _ = decode_bulk(body, None, RECEIVED, RecordLimits())
    attrs = orjson.loads(docs[0][1])["attributes"]
    assert attrs["host_os"] == 1 and attrs["host_os_nested"] is True
    request = {"resourceLogs": [{"resource": {"attributes": [{"key": "flag", "value": {"intValue": "1"}}]},
                                 "scopeLogs": [{"logRecords": [{"body": {"stringValue": "m"}, "attributes": [
                                     {"key": "flag", "value": {"boolValue": True}}]}]}]}]}
    rows, accepted, _, _, _ = decode_otlp(orjson.dumps(request), True, RECEIVED, RecordLimits(), None)
    attrs = orjson.loads(rows)["attributes"]
    assert accepted == 1 and attrs["flag"] is True and attrs["flag_resource"] == 1
