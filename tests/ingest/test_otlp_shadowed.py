"""A log record's attribute named as a field the record itself sets is kept, not overwritten.

OTLP keeps a log record's attributes apart from its body, severity, time and ids; logharbor's
record has one namespace, so an attribute ``message`` beside a body (or ``level`` beside a
severity, ``timestamp`` beside a time) used to vanish without a word. It is kept as
``<name>_attribute`` and said in the partial success."""

from __future__ import annotations

import base64

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from logharbor.server.ingest.base import RecordLimits
from logharbor.server.ingest.otlp import decode_otlp

RECEIVED = 1_800_000_000_000_000_000


TRACE = "5759e988bd862e3fe1be46a994272793"


def _request(attributes: dict[str, str], trace: str = TRACE) -> dict:  # type: ignore[type-arg]
    return {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1799999999000000000", "severityNumber": 17,
            "body": {"stringValue": "payment declined"},
            "traceId": trace,
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()]}]}]}]}


def _stored(body: bytes, is_json: bool) -> tuple[dict, str, dict[str, int]]:  # type: ignore[type-arg]
    rows, accepted, rejected, message, notes = decode_otlp(body, is_json, RECEIVED, RecordLimits(), None)
    assert (accepted, rejected) == (1, 0), message
    return orjson.loads(rows), message, notes


SHADOWED = {"message": "from the attribute", "level": "warn", "timestamp": "yesterday",
            "trace_id": "not-the-trace"}


def test_attributes_named_as_record_fields_are_kept_on_both_encodings() -> None:
    request = _request({**SHADOWED, "user_id": "u-1"})
    # protobuf's JSON mapping writes bytes as base64 (OTLP/JSON writes ids as hex)
    as_base64 = _request({**SHADOWED, "user_id": "u-1"}, base64.b64encode(bytes.fromhex(TRACE)).decode())
    protobuf = json_format.ParseDict(as_base64, ExportLogsServiceRequest()).SerializeToString()
    for body, is_json in ((orjson.dumps(request), True), (protobuf, False)):
        row, message, notes = _stored(body, is_json)
        text = orjson.dumps(row).decode()
        assert row["message"] == "payment declined" and row["level"] == "ERROR"
        assert row["trace_id"] == TRACE
        for name, value in SHADOWED.items():
            assert f'"{name}_attribute":"{value}"' in text, (name, text)
        assert '"user_id":"u-1"' in text
        assert notes.get("attribute") == len(SHADOWED) and "kept as the attribute" in message


def test_an_attribute_equal_to_the_field_is_not_doubled() -> None:
    row, _message, notes = _stored(orjson.dumps(_request({"message": "payment declined"})), True)
    assert "message_attribute" not in orjson.dumps(row).decode() and "attribute" not in notes



def test_a_kept_name_already_taken_loses_no_value() -> None:
    """``message`` beside a body and ``message_attribute`` both as attributes: both values are in
    the row (the kept one under the next free name), on both encodings."""
    attributes = {"message": "A1", "message_attribute": "A2", "level": "A3", "level_attribute": "A4"}
    as_base64 = _request(attributes, base64.b64encode(bytes.fromhex(TRACE)).decode())
    protobuf = json_format.ParseDict(as_base64, ExportLogsServiceRequest()).SerializeToString()
    for body, is_json in ((orjson.dumps(_request(attributes)), True), (protobuf, False)):
        row, message, notes = _stored(body, is_json)
        text = orjson.dumps(row).decode()
        for value in attributes.values():
            assert f'"{value}"' in text, (value, text)
        assert notes.get("attribute") == 2, message


def test_two_semantic_convention_names_of_one_field_keep_both_values() -> None:
    """The old and the new name of one field (``http.status_code`` and
    ``http.response.status_code``) with different values: one fills the field, the other stays
    an attribute under its own name; neither vanishes."""
    attributes = {"http.status_code": "502", "http.response.status_code": "200",
                  "service.name": "other-name"}
    for body in (orjson.dumps(_request(attributes)),):
        row, _, _ = _stored(body, True)
        text = orjson.dumps(row).decode()
        for value in ("502", "200", "other-name"):
            assert value in text, (value, text)


def test_a_record_attribute_named_as_a_resource_or_scope_attribute_keeps_both() -> None:
    """A log record's attribute (or a scope's) of the same name as its resource's with another
    value: the inner one wins the name (it is the more specific), the outer one is kept as
    ``<name>_resource`` / ``<name>_scope`` and said in the partial success. Before, the record's
    attribute replaced the resource's without a word (``service`` from ``service.name`` too)."""
    def kv(pairs: dict[str, str]) -> list[dict]:  # type: ignore[type-arg]
        return [{"key": k, "value": {"stringValue": v}} for k, v in pairs.items()]

    request = {"resourceLogs": [{"resource": {"attributes": kv({"service.name": "checkout", "region": "eu",
                                                                "pod": "p-1"})},
                                 "scopeLogs": [{"scope": {"name": "lib", "attributes": kv({"region": "us"})},
                                                "logRecords": [{"body": {"stringValue": "m"},
                                                                "attributes": kv({"service.name": "payments",
                                                                                  "region": "ap",
                                                                                  "pod": "p-1"})}]}]}]}
    protobuf = json_format.ParseDict(request, ExportLogsServiceRequest()).SerializeToString()
    for body, is_json in ((orjson.dumps(request), True), (protobuf, False)):
        row, message, notes = _stored(body, is_json)
        attrs = row["attributes"]
        assert row["service"] == "payments" and attrs["service_resource"] == "checkout"
        assert attrs["region"] == "ap" and attrs["region_resource"] == "eu" and attrs["region_scope"] == "us"
        assert attrs["pod"] == "p-1" and "pod_resource" not in attrs  # equal values: one copy
        assert notes == {"resource": 2, "scope": 1} and "region_resource" in message
