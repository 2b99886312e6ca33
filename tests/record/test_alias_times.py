"""``time``, ``ts``, ``date`` … are the record's time only when they hold one (issue #20's class
"stored values altered"): a duration or a time of day under them was refused, or moved the record
to 1970 where no search of recent days finds it and retention deletes it."""

from __future__ import annotations

import pytest

from logharbor.record import RecordError, normalize

NOW = 1_796_000_000_000_000_000


@pytest.mark.parametrize("key", ["time", "ts", "timeMillis", "datetime", "date"])
@pytest.mark.parametrize("value", [0.25, 12, "12", "12:00:00", "Monday", True, [], {"a": 1}, "1e3", -5])
def test_a_value_that_is_not_a_time_stays_an_attribute(key: str, value: object) -> None:
    record = normalize({"message": "m", key: value}, received_ns=NOW)
    assert record["timestamp"] == NOW
    assert record["attributes"] == {key: value}


@pytest.mark.parametrize(("key", "value", "ns"), [
    ("time", "2026-11-01T12:00:00Z", 1_793_534_400_000_000_000),
    ("ts", 1_793_534_400, 1_793_534_400_000_000_000),
    ("ts", "1793534400.5", 1_793_534_400_500_000_000),
    ("timeMillis", 1_793_534_400_000, 1_793_534_400_000_000_000),
    ("date", "2024-01-01", 1_704_067_200_000_000_000),
    ("time", "1999-12-31T23:59:59Z", 946_684_799_000_000_000),  # a written date: any year
])
def test_a_time_under_an_alias_is_the_records_time(key: str, value: object, ns: int) -> None:
    record = normalize({"message": "m", key: value}, received_ns=NOW)
    assert record["timestamp"] == ns
    assert key not in record["attributes"]


@pytest.mark.parametrize("key", ["timestamp", "@timestamp"])
def test_timestamp_itself_must_hold_a_time(key: str) -> None:
    with pytest.raises(RecordError, match="timestamp"):
        normalize({"message": "m", key: "12:00:00"}, received_ns=NOW)


def test_the_first_alias_decides_and_the_others_stay() -> None:
    record = normalize({"message": "m", "time": "12:00:00", "ts": 1_793_534_400}, received_ns=NOW)
    # "time" comes first among the aliases: it is not a time, so the receive time; "ts" stays too
    assert record["timestamp"] == NOW
    assert record["attributes"] == {"ts": 1_793_534_400, "time": "12:00:00"}


def test_an_attributes_object_is_read_as_the_records_own_keys() -> None:
    """Its level, service and time were dropped without a word (found by an attack)."""
    record = normalize({"k": "v", "attributes": {"level": "error", "service": "svc",
                                                  "timestamp": "2024-01-01T00:00:00Z", "x": 1}}, received_ns=NOW)
    assert (record["level"], record["service"], record["timestamp"]) == ("ERROR", "svc", 1_704_067_200_000_000_000)
    assert record["attributes"] == {"x": 1, "k": "v"}
    top_wins = normalize({"level": "warn", "attributes": {"level": "error"}}, received_ns=NOW)
    assert top_wins["level"] == "WARN"
