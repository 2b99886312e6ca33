"""The records a clock estimate reads (``ClockOffsets.records``): the two ALB attributes are taken
from the attributes text in the engine (store/sql/clock.py), as their text form, on a real chDB
store. A wrong expression shows here: ``JSONExtractRaw`` keeps a string's quotes (the creation
time would not parse), a path into a nested object must not stand in for the top-level key, and a
null or a non-number is no value. (``JSONExtractString`` would pass: on chDB 4.4 it gives a
number's text too, and '' for null, which the estimate also reads as absent.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logharbor.record import normalize
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.traces.clock import ClockOffsets

S = 10**9
BASE = 1_793_534_400 * S  # 2026-11-01T12:00:00Z
CREATED = "2026-11-01T11:59:59.123456Z"
#: request_id → the attributes sent, and what the estimate must read of them
CASES = {
    "r-float": ({"request_creation_time": CREATED, "request_processing_ms": 13.0},
                {"request_creation_time": CREATED, "request_processing_ms": 13.0}),
    "r-frac": ({"request_processing_ms": 0.25, "request_creation_time": CREATED},
               {"request_creation_time": CREATED, "request_processing_ms": 0.25}),
    "r-text": ({"request_processing_ms": "12.5"}, {"request_processing_ms": 12.5}),  # a number's text
    "r-null": ({"request_creation_time": None, "request_processing_ms": None}, {}),
    "r-bad": ({"request_processing_ms": "fast", "request_creation_time": ""}, {}),
    "r-nested": ({"alb": {"request_creation_time": CREATED, "request_processing_ms": 1.0}}, {}),
    "r-none": ({}, {}),
}


@pytest.fixture(scope="module")
def offsets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockOffsets]:
    store = EmbeddedStore(Path(tmp_path_factory.mktemp("clockrecords")) / "store")
    store.open()
    records = [{"timestamp": BASE + i * S, "service": "alb", "source": "alb", "request_id": rid,
                "http": {"duration_ms": 20.0, "status": 200}, "attributes": sent}
               for i, (rid, (sent, _)) in enumerate(CASES.items())]
    store.insert(b"\n".join(encode_row(normalize(r, received_ns=BASE)) for r in records), dedup_token="clock")
    yield ClockOffsets(store)
    store.close()


def test_the_alb_attributes_are_read_as_sent(offsets: ClockOffsets) -> None:
    got = {r["request_id"]: r for r in offsets.records(BASE, BASE + 60 * S)}
    assert set(got) == set(CASES)
    for rid, (_, expected) in CASES.items():
        assert got[rid]["attributes"] == expected, rid
        assert type(got[rid]["attributes"].get("request_processing_ms", 0.0)) is float
        assert got[rid]["http"] == {"duration_ms": 20.0} and got[rid]["service"] == "alb"
