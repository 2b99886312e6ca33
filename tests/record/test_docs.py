"""docs/record.md stays true: its example line, sent to a real server, comes back as the page says;
its alias table is the one the code folds by."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ServerProcess
from tests.record.values import typed

from logharbor import exactjson
from logharbor import record as record_module

DOC = (Path(__file__).resolve().parents[2] / "docs" / "record.md").read_text(encoding="utf-8")


def block(kind: str) -> bytes:
    (text,) = re.findall(rf"```{kind}\n(.*?)```", DOC, flags=re.S)
    return text.encode()


def test_the_example_comes_back_as_the_page_says(server: ServerProcess) -> None:
    sent = exactjson.loads(block("record-sent"))
    returned = exactjson.loads(block("record-returned"))
    with server.client() as client:
        answer = client.post("/api/v1/logs", content=exactjson.dumps(sent),
                             headers={"content-type": "application/x-ndjson"}).json()
        assert answer == {"accepted": 1, "rejected": []}
        assert server.wait_rows(1) >= 1
        response = client.post("/api/v1/query", json={"q": "service:checkout", "from": "2026-07-01T00:00:00Z",
                                                      "to": "2026-07-02T00:00:00Z"})
    (row,) = exactjson.loads(response.content)["rows"]
    assert row.pop("observed_timestamp") and row.pop("pattern_id")
    assert typed(row) == typed(returned)


def test_the_alias_table_is_the_codes() -> None:
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`|]+)` \|$", DOC, flags=re.M))
    assert rows["timestamp"].split() == list(record_module.TIMESTAMP_KEYS)
    assert rows["message"].split() == list(record_module._MESSAGE_KEYS)
    assert rows["level"].split() == list(record_module._LEVEL_KEYS)
    assert rows["trace_id"].split() == list(record_module._TRACE_KEYS)
    assert rows["span_id"].split() == list(record_module._SPAN_KEYS)
    assert rows["request_id"].split() == list(record_module._REQUEST_KEYS)
    assert rows["service"].split() == list(record_module._SERVICE_KEYS)
