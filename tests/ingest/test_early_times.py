"""Times before 1973-03-03 09:46:40Z (epoch seconds of fewer than 9 digits) are stored as sent.

Found by an attack: the store row wrote such a time as '0.500000000', which the engine reads as a
date and refuses: the batch failed forever, every later record of every protocol stayed in the WAL,
and a restart replayed the same batch (never ready). '500000000.0' was read as 1985.
"""

from __future__ import annotations

import time

import orjson
import pytest
from tests.conftest import ServerProcess

from logharbor.record import format_timestamp, parse_timestamp
from logharbor.server.engine.store.rows import _ts

EARLY = ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00.5Z", "1970-01-01T00:00:01.000000001Z",
         "1971-06-01T12:00:00Z", "1973-03-03T09:46:39.999999999Z", "1973-03-03T09:46:40Z"]


@pytest.mark.parametrize("text", EARLY)
def test_the_store_text_has_ten_digits_of_seconds(text: str) -> None:
    seconds, _, frac = _ts(parse_timestamp(text)).partition(".")
    assert len(seconds) == 10 and len(frac) == 9


def test_early_times_are_stored_and_do_not_block_later_records(server: ServerProcess) -> None:
    lines = [{"timestamp": t, "service": "early", "message": f"early {i}"} for i, t in enumerate(EARLY)]
    lines += [{"timestamp": 0, "service": "early", "message": "epoch zero"},
              {"timestamp": 99_999_999, "service": "early", "message": "epoch 99999999"}]
    with server.client() as client:
        answer = client.post("/api/v1/logs", content=b"\n".join(orjson.dumps(r) for r in lines),
                             headers={"content-type": "application/x-ndjson"}).json()
        assert answer == {"accepted": len(lines), "rejected": []}
        later = client.post("/api/v1/logs", content=orjson.dumps({"service": "early", "message": "after"}),
                            headers={"content-type": "application/x-ndjson"}).json()
        assert later["accepted"] == 1
    deadline = time.monotonic() + 60
    while True:
        rows = server.query("service:early", limit=100, **{"from": "1970-01-01T00:00:00Z",
                                                          "to": "2100-01-01T00:00:00Z"})["rows"]
        if len(rows) >= len(lines) + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    got = {r["message"]: r["timestamp"] for r in rows}
    assert "after" in got  # the store took the later batch: nothing is stuck
    for i, text in enumerate(EARLY):
        assert got[f"early {i}"] == format_timestamp(parse_timestamp(text)), (text, got[f"early {i}"])
    assert got["epoch zero"] == format_timestamp(0)
    assert got["epoch 99999999"] == format_timestamp(99_999_999 * 10**9)
    with server.client() as client:
        assert client.get("/readyz").status_code == 200
