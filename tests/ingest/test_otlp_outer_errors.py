"""An unreadable value in a *resource* or *scope* (not a log record) of an OTLP/JSON request.

One request carries many resources (a Collector batches every service it receives from). A
resource or scope attribute whose value is not of its kind (``"boolValue": "yes"``) made the
whole request a 400 — which the Collector does not retry — so the good records of every other
resource in it were lost. Now only the records under that resource or scope are rejected, named in
``partialSuccess``; a ``doubleValue`` written as an integer too large for a double rejects its
record (it was a 500 for the whole request).
"""

from __future__ import annotations

from typing import Any

from tests.conftest import ServerProcess
from tests.faults.conftest import Tally

from logharbor import exactjson

from .conftest import records


def _kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def _logs(service: str, n: int) -> list[dict[str, Any]]:
    return [{"body": {"stringValue": f"{service} {i}"}, "attributes": [_kv("seq", {"stringValue": f"{service}-{i}"})]}
            for i in range(n)]


def test_a_bad_resource_or_scope_value_rejects_only_its_records(server: ServerProcess) -> None:
    good = {"resource": {"attributes": [_kv("service.name", {"stringValue": "otlp-outer-good"})]},
            "scopeLogs": [{"scope": {"name": "fine"}, "logRecords": _logs("otlp-outer-good", 3)},
                          {"scope": {"name": "bad", "attributes": [_kv("s", {"intValue": "x"})]},
                           "logRecords": _logs("otlp-outer-badscope", 2)}]}
    bad = {"resource": {"attributes": [_kv("service.name", {"stringValue": "otlp-outer-bad"}),
                                       _kv("flag", {"boolValue": "yes"})]},
           "scopeLogs": [{"logRecords": _logs("otlp-outer-bad", 4)}]}
    huge = {"resource": {"attributes": [_kv("service.name", {"stringValue": "otlp-outer-huge"})]},
            "scopeLogs": [{"logRecords": [
                {"body": {"stringValue": "huge double"}, "attributes": [_kv("seq", {"stringValue": "h-0"}),
                                                                       _kv("d", {"doubleValue": 10**400})]},
                {"body": {"stringValue": "fine double"}, "attributes": [_kv("seq", {"stringValue": "h-1"}),
                                                                       _kv("d", {"doubleValue": 2})]}]}]}
    body = exactjson.dumps({"resourceLogs": [bad, good, huge]})  # 10**400 as its digits
    tally = Tally("OTLP/JSON request with a bad resource and a bad scope value")
    with server.client() as client:
        response = client.post("/v1/logs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == str(4 + 2 + 1), partial
    assert "boolValue 'yes'" in partial["errorMessage"] or '"yes"' in partial["errorMessage"], partial
    tally.ack([f"otlp-outer-good-{i}" for i in range(3)] + ["h-1"])
    rows = records(server, 'service:"otlp-outer-good" OR service:"otlp-outer-huge" OR '
                   'service:"otlp-outer-bad"', 4)
    tally.saw(r.get("attributes", r)["seq"] for r in rows)
    tally.extra.update(rejected=int(partial["rejectedLogRecords"]))
    tally.report()
    assert len(rows) == 4
