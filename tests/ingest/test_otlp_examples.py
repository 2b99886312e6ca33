"""The shapes of opentelemetry-proto's example payloads (``examples/logs.json``, ``events.json``),
in JSON and protobuf: every field sent is kept (observed time, severity text, dotted keys inside a
map), and an id that is not one is kept raw and said in ``partialSuccess`` (#22 item 11)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from tests.conftest import ServerProcess

from .conftest import by_message, records


def _string(value: str) -> dict[str, Any]:
    return {"stringValue": value}


def payload(service: str, records_: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": _string(service)}]},
        "scopeLogs": [{"scope": {"name": "lib.one", "version": "0.9",
                                 "attributes": [{"key": "lib.scope.flag", "value": _string("on")}]},
                       "logRecords": records_}],
    }]}


#: logs.json's shape: times as JSON numbers, severity text with no number, upper-case hex ids, a
#: map whose keys have dots
LOG_RECORD = {
    "timeUnixNano": 1_700_000_000_123_456_789, "observedTimeUnixNano": 1_700_000_001_000_000_000,
    "severityText": "Information", "traceId": "0AF7651916CD43DD8448EB211C80319C",
    "spanId": "B7AD6B7169203331", "body": _string("an example record"),
    "attributes": [
        {"key": "text.attr", "value": _string("some text")},
        {"key": "map.attr", "value": {"kvlistValue": {"values": [
            {"key": "a.dotted.key", "value": _string("dotted")},
            {"key": "plain", "value": {"kvlistValue": {"values": [
                {"key": "inner.dot", "value": {"intValue": "7"}}]}}}]}}},
    ],
}
#: events.json's shape: a number and a text severity, the event's name as an attribute, a map body
#: written as a bare list of pairs (``"kvlistValue": [...]``, not ``{"values": [...]}``)
EVENT_RECORD = {
    "timeUnixNano": "1700000000200000000", "observedTimeUnixNano": "1700000000300000000",
    "severityNumber": 9, "severityText": "INFO",
    "attributes": [{"key": "event.name", "value": _string("browser.page_view")}],
    "body": {"kvlistValue": [
        {"key": "type", "value": {"intValue": "0"}},
        {"key": "url", "value": _string("https://shop.example/cart")},
        {"key": "page.title", "value": _string("Cart")},
    ]},
}


def post(server: ServerProcess, body: bytes, ctype: str) -> httpx.Response:
    return httpx.post(server.url + "/v1/logs", content=body, timeout=30,
                      headers={**server.headers, "content-type": ctype})


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_every_field_of_the_examples_is_kept(server: ServerProcess, encoding: str) -> None:
    service = f"otel-ex-{encoding}"
    body = payload(service, [LOG_RECORD, EVENT_RECORD])
    if encoding == "json":
        response = post(server, orjson.dumps(body), "application/json")
        assert response.status_code == 200 and response.json() == {}
    else:
        message = json_format.ParseDict(_protobuf_json(body), ExportLogsServiceRequest())
        response = post(server, message.SerializeToString(), "application/x-protobuf")
        assert response.status_code == 200
        assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")
    rows = records(server, f"service:{service}", 2)
    log = by_message(rows)["an example record"]
    assert log["timestamp"] == "2023-11-14T22:13:20.123456789Z"
    assert log["observed_time_unix_nano"] == 1_700_000_001_000_000_000
    assert log["level"] == "INFO" and log["severity_text"] == "Information"
    assert log["trace_id"] == "0af7651916cd43dd8448eb211c80319c" and log["span_id"] == "b7ad6b7169203331"
    assert log["text.attr"] == "some text" and log["lib.scope.flag"] == "on"
    assert log["map.attr"] == {"a.dotted.key": "dotted", "plain": {"inner.dot": 7}}  # as sent
    (event,) = [row for row in rows if row is not log]
    assert event["level"] == "INFO" and event["severity_text"] == "INFO"
    assert event["event.name"] == "browser.page_view"
    assert event["body"] == {"type": 0, "url": "https://shop.example/cart", "page.title": "Cart"}
    assert event["observed_time_unix_nano"] == 1_700_000_000_300_000_000
    assert event["timestamp"] == "2023-11-14T22:13:20.200000Z"


def _protobuf_json(body: dict[str, Any]) -> dict[str, Any]:
    """The same request in the protobuf JSON mapping (base64 ids, ``values`` lists) for ParseDict."""
    import base64

    text = orjson.loads(orjson.dumps(body))
    for record in text["resourceLogs"][0]["scopeLogs"][0]["logRecords"]:
        for key, size in (("traceId", 16), ("spanId", 8)):
            if key in record:
                raw = bytes.fromhex(record[key]) if len(record[key]) == 2 * size else record[key].encode()
                record[key] = base64.b64encode(raw).decode()
        if isinstance(record.get("body", {}).get("kvlistValue"), list):
            record["body"]["kvlistValue"] = {"values": record["body"]["kvlistValue"]}
    return text


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_an_id_that_is_not_one_is_kept_and_said(server: ServerProcess, encoding: str) -> None:
    """A malformed trace or span id does not cost the record, and is not dropped silently: the
    record is stored with the raw value in ``trace_raw``/``span_raw``, and ``partialSuccess``
    (0 rejected, an error message: the spec's warning form) names it."""
    service = f"otel-badid-{encoding}"
    good = {"timeUnixNano": "1700000000000000000", "body": _string("good ids"),
            "traceId": "5759e988bd862e3fe1be46a994272793", "spanId": "53995c3f42cd8ad8"}
    bad = {"timeUnixNano": "1700000000000000001", "body": _string("bad ids"),
           "traceId": "5759e988bd862e3f", "spanId": "not-hex!"}
    unset = {"timeUnixNano": "1700000000000000002", "body": _string("zero ids"),
             "traceId": "0" * 32, "spanId": ""}
    body = payload(service, [good, bad, unset])
    if encoding == "json":
        response = post(server, orjson.dumps(body), "application/json")
        partial = response.json()["partialSuccess"]
        assert partial["rejectedLogRecords"] in ("0", 0)
        message = partial["errorMessage"]
    else:
        request = ExportLogsServiceRequest()
        json_format.ParseDict(_protobuf_json(payload(service, [good, unset])), request)
        wrong = request.resource_logs[0].scope_logs[0].log_records.add()
        wrong.time_unix_nano = 1_700_000_000_000_000_001
        wrong.body.string_value = "bad ids"
        wrong.trace_id = bytes.fromhex("5759e988bd862e3f")  # 8 bytes, not 16
        wrong.span_id = b"\x01\x02\x03"
        response = post(server, request.SerializeToString(), "application/x-protobuf")
        answer = ExportLogsServiceResponse.FromString(response.content)
        assert answer.partial_success.rejected_log_records == 0
        message = answer.partial_success.error_message
    assert response.status_code == 200
    assert "trace_id" in message and "trace_raw" in message
    rows = by_message(records(server, f"service:{service}", 3))
    assert rows["good ids"]["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert "trace_raw" not in rows["good ids"]
    assert "trace_id" not in rows["bad ids"] and rows["bad ids"]["trace_raw"] == "5759e988bd862e3f"
    assert rows["bad ids"]["span_raw"] == ("not-hex!" if encoding == "json" else "010203")
    assert "trace_id" not in rows["zero ids"] and "trace_raw" not in rows["zero ids"]  # unset, per spec
    metrics = httpx.get(server.url + "/metrics", headers=server.headers, timeout=30).text
    assert 'logharbor_ingest_ignored_total{protocol="otlp",what="trace_id"}' in metrics
