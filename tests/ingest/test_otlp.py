"""OTLP/HTTP logs against the OpenTelemetry Python SDK and its OTLP/HTTP exporter (protobuf, JSON)."""

from __future__ import annotations

import gzip
import logging
import time

import httpx
import orjson
import pytest
from google.protobuf import json_format
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from tests.conftest import ServerProcess

from .conftest import by_message, records

RESOURCE = {"service.name": "otel-svc", "service.version": "2.0.1", "deployment.environment.name": "test",
            "host.name": "otel-host", "host.arch": "amd64"}


def _emit(provider: LoggerProvider, tag: str) -> str:
    """Log through stdlib logging inside a span, plus one structured record; returns the trace id."""
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger = logging.getLogger(f"otel-test-{tag}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("checkout") as span:
        logger.error(f"{tag} payment declined", extra={"order_id": "o-42", "http.response.status_code": 502})
        logger.debug(f"{tag} cart loaded")
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.get_logger("structured").emit(
        severity_number=SeverityNumber.WARN2, body={"message": f"{tag} structured", "items": [1, 2]},
        attributes={"user_id": "u-7"})
    logger.removeHandler(handler)
    return trace_id


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.NoCompression])
def test_sdk_exporter_protobuf(server: ServerProcess, compression: Compression) -> None:
    tag = compression.value
    exporter = OTLPLogExporter(endpoint=server.url + "/v1/logs", headers=server.headers,
                               compression=compression, timeout=30)
    inspect = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(inspect))
    trace_id = _emit(provider, tag)
    batch = inspect.get_finished_logs()
    assert exporter.export(batch) == LogRecordExportResult.SUCCESS  # a real HTTP export, checked
    provider.shutdown()

    rows = by_message(records(server, f"service:otel-svc AND {tag}", 3))
    error = rows[f"{tag} payment declined"]
    assert error["level"] == "ERROR" and error["version"] == "2.0.1" and error["env"] == "test"
    assert error["host"] == "otel-host" and error["host_arch"] == "amd64"
    assert error["trace_id"] == trace_id and len(error["span_id"]) == 16
    assert error["order_id"] == "o-42" and error["http"] == {"status": 502}
    assert error["scope.name"] == f"otel-test-{tag}"  # dotted keys come back as sent (docs/record.md)
    assert rows[f"{tag} cart loaded"]["level"] == "DEBUG"
    structured = rows[f"{tag} structured"]
    assert structured["level"] == "WARN" and structured["body"] == {"message": f"{tag} structured",
                                                                    "items": [1, 2]}
    assert structured["user_id"] == "u-7"


def test_protobuf_json_mapping_of_the_sdk_request(server: ServerProcess) -> None:
    """The SDK's own request, written with protobuf's JSON mapping (base64 ids, enum names)."""
    inspect = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(inspect))
    trace_id = _emit(provider, "pjson")
    body = json_format.MessageToJson(encode_logs(inspect.get_finished_logs()))
    assert "SEVERITY_NUMBER_" in body
    response = httpx.post(server.url + "/v1/logs", content=gzip.compress(body.encode()), timeout=30,
                          headers={**server.headers, "content-type": "application/json",
                                   "content-encoding": "gzip"})
    assert response.status_code == 200 and response.json() == {}
    rows = by_message(records(server, "pjson", 3))
    assert rows["pjson payment declined"]["trace_id"] == trace_id
    assert rows["pjson structured"]["level"] == "WARN"


SPEC_EXAMPLE = {  # opentelemetry-proto examples/logs.json (OTLP JSON: hex ids, string int64)
    "resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeLogs": [{
            "scope": {"name": "my.library", "version": "1.0.0",
                      "attributes": [{"key": "my.scope.attribute",
                                      "value": {"stringValue": "some scope attribute"}}]},
            "logRecords": [{
                "timeUnixNano": "1544712660300000000", "observedTimeUnixNano": "1544712660300000000",
                "severityNumber": 10, "severityText": "Information",
                "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
                "body": {"stringValue": "Example log record"},
                "attributes": [
                    {"key": "string.attribute", "value": {"stringValue": "some string"}},
                    {"key": "boolean.attribute", "value": {"boolValue": True}},
                    {"key": "int.attribute", "value": {"intValue": "10"}},
                    {"key": "double.attribute", "value": {"doubleValue": 637.704}},
                    {"key": "array.attribute", "value": {"arrayValue": {"values": [
                        {"stringValue": "many"}, {"stringValue": "values"}]}}},
                    {"key": "map.attribute", "value": {"kvlistValue": {"values": [
                        {"key": "some.map.key", "value": {"stringValue": "some value"}}]}}},
                ],
            }, {
                "timeUnixNano": "99999999999999999999", "body": {"stringValue": "after 2262"},
            }],
        }],
    }],
}


def test_otlp_json_spec_example_and_partial_success(server: ServerProcess) -> None:
    response = httpx.post(server.url + "/v1/logs", content=orjson.dumps(SPEC_EXAMPLE), timeout=30,
                          headers={**server.headers, "content-type": "application/json"})
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" and "2262" in partial["errorMessage"]
    (row,) = records(server, "service:my.service", 1)
    assert row["timestamp"] == "2018-12-13T14:51:00.300000Z"
    assert row["level"] == "INFO" and row["message"] == "Example log record"
    assert row["trace_id"] == "5b8efff798038103d269b633813fc60c" and row["span_id"] == "eee19b7ec3c1b174"
    # dotted keys come back as they were sent (docs/record.md), and are found as int.attribute:10
    assert row["int.attribute"] == 10 and row["boolean.attribute"] is True
    assert row["array.attribute"] == ["many", "values"]
    assert row["scope.name"] == "my.library" and row["scope.version"] == "1.0.0"


def test_errors_are_rpc_status_with_spec_codes(server: ServerProcess) -> None:
    headers = {**server.headers, "content-type": "application/x-protobuf"}
    bad = httpx.post(server.url + "/v1/logs", content=b"\xff\xff\xff", headers=headers, timeout=30)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/x-protobuf"
    assert bad.content[:2] == b"\x08\x03"  # google.rpc.Status code 3, INVALID_ARGUMENT
    ok = httpx.post(server.url + "/v1/logs", content=b"", headers=headers, timeout=30)
    assert ok.status_code == 200
    assert not ExportLogsServiceResponse.FromString(ok.content).HasField("partial_success")
    wrong = httpx.post(server.url + "/v1/logs", content=b"x", timeout=30,
                       headers={**server.headers, "content-type": "text/csv"})
    assert wrong.status_code == 415
    assert httpx.post(server.url + "/v1/logs", content=b"", timeout=30,
                      headers={"content-type": "application/x-protobuf"}).status_code == 401


def test_full_wal_is_a_retryable_429_status(server_factory) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = server_factory("--pause-batcher", "--wal-max-mb", "1")
    inspect = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(inspect))
    logger = provider.get_logger("bulk")
    for i in range(300):  # about 200 KiB of rows: a few requests fill a 1 MiB WAL
        logger.emit(severity_number=SeverityNumber.INFO, body=f"filler {i} " + "x" * 400)
    body = encode_logs(inspect.get_finished_logs()).SerializeToString()
    headers = {**server.headers, "content-type": "application/x-protobuf"}
    statuses = []
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for _ in range(10):
            response = client.post("/v1/logs", content=body)
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    assert response.headers["retry-after"].isdigit()
    assert response.headers["content-type"] == "application/x-protobuf"
    assert response.content[:2] == b"\x08\x08"  # google.rpc.Status code 8, RESOURCE_EXHAUSTED


def test_a_tenant_scoped_writer_stamps_its_tenant(server: ServerProcess) -> None:
    """Whatever the payload says, a scoped key's records carry the key's tenant (ES, Loki, OTLP)."""
    key = server.create_key("writer", tenant="acme")
    auth = {"authorization": f"Bearer {key}"}
    es = httpx.post(server.url + "/_bulk", timeout=30, headers={**auth, "content-type": "application/x-ndjson"},
                    content=b'{"index":{"_index":"t"}}\n{"message":"es scoped","service":"scoped","tenant":"evil"}\n')
    assert es.status_code == 200 and es.json()["errors"] is False
    loki = httpx.post(server.url + "/loki/api/v1/push", timeout=30, headers={**auth, "content-type": "application/json"},
                      content=orjson.dumps({"streams": [{"stream": {"service_name": "scoped", "tenant": "evil"},
                                                         "values": [[str(time.time_ns()), "loki scoped"]]}]}))
    assert loki.status_code == 204
    body = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "scoped"}}]},
        "scopeLogs": [{"logRecords": [{"body": {"stringValue": "otlp scoped"}}]}]}]}
    otlp = httpx.post(server.url + "/v1/logs", timeout=30, headers={**auth, "content-type": "application/json"},
                      content=orjson.dumps(body))
    assert otlp.status_code == 200
    rows = records(server, "service:scoped", 3)
    assert {row["message"]: row["tenant"] for row in rows} == {
        "es scoped": "acme", "loki scoped": "acme", "otlp scoped": "acme"}


def test_one_unreadable_json_record_is_rejected_alone(server: ServerProcess) -> None:
    """A record whose timeUnixNano or intValue is not an integer is a partial success naming it,
    not a 400 for the whole request (the Collector drops a 400's good records for good)."""
    logs = [{"timeUnixNano": "abc", "body": {"stringValue": "bad time"}},
            {"timeUnixNano": "1700000000000000000", "body": {"stringValue": "otlp alone ok"}},
            {"body": {"stringValue": "bad int"}, "attributes": [{"key": "n", "value": {"intValue": "x1"}}]}]
    body = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otlp-alone"}}]},
                              "scopeLogs": [{"logRecords": logs}]}]}
    with server.client() as client:
        response = client.post("/v1/logs", content=orjson.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "2"
    assert "timeUnixNano 'abc' is not an integer" in partial["errorMessage"]
    rows = records(server, 'service:"otlp-alone"', 1)
    assert [r["message"] for r in rows] == ["otlp alone ok"]


ANY_VALUES = [  # (AnyValue as JSON text, what is stored, or None: the record is rejected)
    ('{"boolValue": false}', False), ('{"boolValue": "false"}', False), ('{"boolValue": "true"}', True),
    ('{"boolValue": "no"}', None), ('{"boolValue": 0}', None),
    ('{"stringValue": "5"}', "5"), ('{"stringValue": 5}', None), ('{"stringValue": null}', None),
    ('{"doubleValue": 1.0}', 1.0), ('{"doubleValue": -0.0}', -0.0), ('{"doubleValue": "2.5"}', 2.5),
    ('{"doubleValue": 3}', 3.0), ('{"doubleValue": true}', None), ('{"doubleValue": "1_0"}', None),
    ('{"intValue": "18446744073709551617"}', 18446744073709551617),
    ('{"intValue": 18446744073709551617}', 18446744073709551617),  # a JSON number beyond 64 bits: exact
    ('{"intValue": true}', None), ('{"bytesValue": "AAEC"}', "AAEC"), ('{"bytesValue": 7}', None),
    ('{"arrayValue": {"values": [{"boolValue": "yes"}]}}', None),
]


def test_any_values_keep_their_json_type_or_reject_their_record(server: ServerProcess) -> None:
    """Each AnyValue kind is held to its JSON type: ``bool("false")`` stored true, a number under
    ``stringValue`` was stored as a number, ``true`` under ``doubleValue`` as 1.0, and an
    ``intValue`` written as a JSON number beyond 64 bits lost its last digits (orjson)."""
    logs = [f'{{"body": {{"stringValue": "anyvalue {i}"}}, "attributes": [{{"key": "v", "value": {text}}}]}}'
            for i, (text, _) in enumerate(ANY_VALUES)]
    body = ('{"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": '
            '{"stringValue": "otlp-anyvalue"}}]}, "scopeLogs": [{"logRecords": [' + ",".join(logs) + "]}]}]}")
    with server.client() as client:
        response = client.post("/v1/logs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    rejected = [i for i, (_, want) in enumerate(ANY_VALUES) if want is None]
    assert response.json()["partialSuccess"]["rejectedLogRecords"] == str(len(rejected))
    rows = records(server, 'service:"otlp-anyvalue"', len(ANY_VALUES) - len(rejected))
    stored = {int(r["message"].split()[1]): r.get("attributes", r)["v"] for r in rows}
    want = {i: v for i, (_, v) in enumerate(ANY_VALUES) if v is not None}
    assert {i: (type(v), v) for i, v in stored.items()} == {i: (type(v), v) for i, v in want.items()}
    assert str(stored[9]) == "-0.0"  # the sign of a zero kept


def test_an_empty_any_value_is_the_attribute_null(server: ServerProcess) -> None:
    """OTel's empty AnyValue (no kind set) was dropped with its key at the top level, though it
    was kept as null inside a map; it is null in both, through JSON and protobuf alike."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    body = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otlp-empty"}},
                                                          {"key": "res.empty", "value": {}}]},
                              "scopeLogs": [{"logRecords": [{"body": {"stringValue": "empty value"}, "attributes": [
                                  {"key": "empty", "value": {}},
                                  {"key": "map", "value": {"kvlistValue": {"values": [{"key": "n", "value": {}}]}}}]}]}]}]}
    proto = json_format.ParseDict(body, ExportLogsServiceRequest()).SerializeToString()
    with server.client() as client:
        for content, ctype in ((orjson.dumps(body), "application/json"), (proto, "application/x-protobuf")):
            response = client.post("/v1/logs", content=content, headers={"content-type": ctype})
            assert response.status_code == 200, response.text
    rows = records(server, 'service:"otlp-empty"', 2)
    assert len(rows) == 2
    for row in rows:
        attrs = row.get("attributes", row)
        assert "empty" in attrs and attrs["empty"] is None and "res.empty" in attrs and attrs["res.empty"] is None
        assert attrs["map"] == {"n": None}
