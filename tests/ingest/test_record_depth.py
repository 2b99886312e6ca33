"""A record nested deeper than the limit (100 levels) is refused by itself, with its reason, on every
HTTP protocol; the records beside it are stored and the server stays healthy.

Found by an attack: 500 nested objects made the native endpoint answer a 500 (Python's recursion
ran out while the record was encoded); 255 were refused only because orjson could not write them.
"""

from __future__ import annotations

import json

import orjson
import pytest
from tests.conftest import ServerProcess
from tests.ingest.conftest import records

LIMIT = 100


def nested(levels: int) -> bytes:
    """JSON text of objects nested ``levels`` deep (the outer one included)."""
    return b'{"a":' * levels + b"1" + b"}" * levels


def deep_record(levels: int, message: str) -> bytes:
    # the record is level 1, "attrs" adds the others
    return b'{"service":"depth","message":"' + message.encode() + b'","attrs":' + nested(levels - 1) + b"}"


@pytest.mark.parametrize("levels", [LIMIT + 1, 255, 500, 1000])
def test_native_refuses_the_deep_line_and_keeps_its_neighbours(server: ServerProcess, levels: int) -> None:
    body = b"\n".join([orjson.dumps({"service": "depth", "message": f"before {levels}"}),
                       deep_record(levels, f"deep {levels}"),
                       orjson.dumps({"service": "depth", "message": f"after {levels}"})])
    with server.client() as client:
        response = client.post("/api/v1/logs", content=body, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    (rejected,) = answer["rejected"]
    assert rejected["line"] == 2
    assert "deep" in rejected["error"] or "depth" in rejected["error"], rejected
    rows = records(server, f'service:depth AND "{levels}"', 2)
    assert sorted(r["message"] for r in rows) == [f"after {levels}", f"before {levels}"]


def test_native_keeps_a_record_at_the_limit(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.post("/api/v1/logs", content=deep_record(LIMIT, "at the limit"),
                               headers={"content-type": "application/x-ndjson"})
    assert response.json() == {"accepted": 1, "rejected": []}, response.text
    (row,) = records(server, 'service:depth AND "at the limit"', 1)
    value = row["attributes"]["attrs"] if "attributes" in row else row["attrs"]
    for _ in range(LIMIT - 2):  # attrs is 99 levels: down to the last one
        value = value["a"]
    assert value == {"a": 1}


def test_bulk_refuses_the_deep_document_as_an_item(server: ServerProcess) -> None:
    action = b'{"index":{"_index":"depth"}}'
    body = b"\n".join([action, orjson.dumps({"service": "depth", "message": "bulk ok"}),
                       action, deep_record(300, "bulk deep"), b""])
    with server.client() as client:
        response = client.post("/_bulk", content=body, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert response.json()["errors"] is True
    assert items[0]["index"]["status"] in (200, 201)
    assert items[1]["index"]["status"] == 400, items[1]
    assert "deep" in orjson.dumps(items[1]).decode()
    assert [r["message"] for r in records(server, 'service:depth AND "bulk"', 1)] == ["bulk ok"]


def test_loki_push_with_a_deep_json_line_is_refused_by_name(server: ServerProcess) -> None:
    line = deep_record(300, "loki deep").decode()
    body = {"streams": [{"stream": {"service_name": "depth-loki"},
                         "values": [["1700000000000000000", "loki ok"], ["1700000000000000001", line]]}]}
    with server.client() as client:
        response = client.post("/loki/api/v1/push", json=body)
    assert response.status_code == 400, response.text  # as Loki: the entry is named, the rest stored
    assert "levels deep" in response.json()["error"]["detail"][0]["error"]
    rows = records(server, 'service:"depth-loki"', 1)
    assert [r["message"] for r in rows] == ["loki ok"]
    with server.client() as client:  # the server is still well
        assert client.get("/readyz").status_code == 200


def test_otlp_json_with_a_deep_kvlist_is_refused_by_name(server: ServerProcess) -> None:
    value: dict = {"stringValue": "leaf"}  # type: ignore[type-arg]
    for _ in range(150):
        value = {"kvlistValue": {"values": [{"key": "a", "value": value}]}}
    logs = [{"timeUnixNano": "1700000000000000000", "body": {"stringValue": "otlp ok"}},
            {"timeUnixNano": "1700000000000000001", "body": {"stringValue": "otlp deep"},
             "attributes": [{"key": "deep", "value": value}]}]
    body = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "depth-otlp"}}]},
                              "scopeLogs": [{"logRecords": logs}]}]}
    with server.client() as client:
        response = client.post("/v1/logs", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" and "levels deep" in partial["errorMessage"]
    assert [r["message"] for r in records(server, 'service:"depth-otlp"', 1)] == ["otlp ok"]
    with server.client() as client:
        assert client.get("/readyz").status_code == 200


def test_a_byte_order_mark_does_not_cost_the_first_line(server: ServerProcess) -> None:
    """A body written by a tool that starts files with a UTF-8 BOM keeps its first record."""
    body = b"\xef\xbb\xbf" + orjson.dumps({"service": "bom", "message": "first"}) + b"\n" + \
        orjson.dumps({"service": "bom", "message": "second"})
    with server.client() as client:
        answer = client.post("/api/v1/logs", content=body, headers={"content-type": "application/x-ndjson"})
    assert answer.json() == {"accepted": 2, "rejected": []}, answer.text
    assert sorted(r["message"] for r in records(server, "service:bom", 2)) == ["first", "second"]
