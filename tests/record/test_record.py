"""The canonical record: alias folding, timestamps, levels, trace ids (DESIGN §2)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logharbor.record import (
    RecordError,
    format_timestamp,
    normalize,
    normalize_level,
    normalize_trace_id,
    otel_level,
    parse_timestamp,
    to_wire,
)

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def ns_of(value: dt.datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


datetimes = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2261, 12, 31),
                         timezones=st.just(UTC))


@given(datetimes)
def test_rfc3339_roundtrip(value: dt.datetime) -> None:
    ns = ns_of(value)
    assert parse_timestamp(value.isoformat()) == ns
    assert parse_timestamp(format_timestamp(ns)) == ns


@given(datetimes, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_offsets_are_applied(value: dt.datetime, minutes: int) -> None:
    local = value.astimezone(dt.timezone(dt.timedelta(minutes=minutes)))
    assert parse_timestamp(local.isoformat()) == ns_of(value)


@given(st.integers(min_value=0, max_value=999_999_999), datetimes)
def test_nanosecond_fractions_are_kept(frac: int, value: dt.datetime) -> None:
    base = value.replace(microsecond=0)
    text = base.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"
    assert parse_timestamp(text) == ns_of(base) + frac


@given(st.integers(min_value=1_000_000_000, max_value=9_000_000_000))  # 2001..2255: units are unambiguous
def test_epoch_units_are_told_apart(seconds: int) -> None:
    ns = seconds * 1_000_000_000
    assert parse_timestamp(seconds) == ns
    assert parse_timestamp(seconds * 1000) == ns
    assert parse_timestamp(seconds * 1_000_000) == ns
    assert parse_timestamp(ns) == ns
    assert parse_timestamp(str(seconds * 1000)) == ns
    assert parse_timestamp(f"{seconds}.250") == ns + 250_000_000


@given(datetimes, st.integers(min_value=0, max_value=9), st.integers(min_value=0, max_value=999_999_999))
def test_fast_utc_path_agrees_with_the_general_parser(value: dt.datetime, digits: int, frac: int) -> None:
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{frac:09d}"[: digits + 1] if digits else ""
    assert parse_timestamp(base + fraction + "Z") == parse_timestamp(base + fraction + "+00:00")


@pytest.mark.parametrize("text, expected", [
    ("2026-11-01T12:34:56.789123Z", "2026-11-01T12:34:56.789123Z"),
    ("2026-11-01T14:34:56.789+02:00", "2026-11-01T12:34:56.789000Z"),
    ("2026-11-01 12:34:56,5", "2026-11-01T12:34:56.500000Z"),
    ("2026-11-01T12:34:56-0530", "2026-11-01T18:04:56.000000Z"),
    ("2026-11-01", "2026-11-01T00:00:00.000000Z"),
    ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000000Z"),
])
def test_timestamp_examples(text: str, expected: str) -> None:
    assert format_timestamp(parse_timestamp(text)) == expected


@pytest.mark.parametrize("bad", ["", "yesterday", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
                                 "2026-11-01T25:00:00Z", -5, True, None, [1], float("nan"), 1e30])
def test_bad_timestamps_name_the_problem(bad: object) -> None:
    with pytest.raises(RecordError, match="timestamp"):
        parse_timestamp(bad)


@pytest.mark.parametrize("raw, level", [
    ("warning", "WARN"), ("WARN", "WARN"), ("err", "ERROR"), ("critical", "FATAL"), ("Info", "INFO"),
    ("notice", "INFO"), ("DEBUG", "DEBUG"), ("trace", "TRACE"), ("fatal", "FATAL"), ("emerg", "FATAL"),
    ("ERROR2", "ERROR"), ("silly", "TRACE"), ("http", "INFO"),
    # a number in `level` is pino's and bunyan's scale (issue #22: pino's 20 was read as OTel ERROR)
    (10, "TRACE"), (20, "DEBUG"), (30, "INFO"), (40, "WARN"), (50, "ERROR"), (60, "FATAL"), (35, "INFO"),
    (99, "FATAL"), ("20", "DEBUG"), (50.0, "ERROR"),
    # Go slog: offsets from its four names
    ("INFO+2", "INFO"), ("WARN+2", "WARN"), ("ERROR+4", "ERROR"), ("DEBUG-4", "TRACE"), ("INFO-2", "DEBUG"),
])
def test_levels(raw: object, level: str) -> None:
    assert normalize_level(raw) == level


@pytest.mark.parametrize("raw", [0, 1, 9, -10, float("nan"), float("inf"), True, "bogus", "INFO+x"])
def test_unknown_levels(raw: object) -> None:
    assert normalize_level(raw) is None


@given(st.integers(min_value=1, max_value=24))
def test_every_otel_severity_number_maps(n: int) -> None:
    assert otel_level(n) == ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")[(n - 1) // 4]
    assert otel_level(str(n)) == otel_level(n)


@pytest.mark.parametrize("raw", [0, 25, -1, "x", 9.0, True, None])
def test_otel_level_refuses_what_is_not_a_severity_number(raw: object) -> None:
    assert otel_level(raw) is None


def test_severity_number_is_read_when_no_level_key_gives_one() -> None:
    assert normalize({"severity_number": 17, "message": "m"})["level"] == "ERROR"
    assert normalize({"severity_number": "5", "message": "m"})["level"] == "DEBUG"
    # a level key that reads wins; one that does not is kept in level_raw, and the number decides
    both = normalize({"severity_text": "Warning", "severity_number": 17, "message": "m"})
    assert both["level"] == "WARN" and "severity_number" not in both["attributes"]
    odd = normalize({"level": "E", "severity_number": 17, "message": "m"})
    assert odd["level"] == "ERROR" and odd["attributes"] == {"level_raw": "E"}
    assert normalize({"severity_number": 99, "message": "m"})["level"] == "INFO"


hex32 = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32).filter(lambda s: set(s) != {"0"})


@given(hex32)
def test_trace_id_forms(trace: str) -> None:
    assert normalize_trace_id(trace.upper()) == trace
    amzn = f"Root=1-{trace[:8]}-{trace[8:]};Parent=53995c3f42cd8ad8;Sampled=1"
    assert normalize_trace_id(amzn) == trace
    assert normalize_trace_id(f"Self=1-67891234-12456789abcdef012345678;{amzn}") == trace
    assert normalize_trace_id(f"1-{trace[:8]}-{trace[8:]}") == trace
    assert normalize_trace_id(f"00-{trace}-00f067aa0ba902b7-01") == trace


@pytest.mark.parametrize("bad", ["req-123", "0" * 32, "xyz", "", 42, "Root=1-zz-yy"])
def test_non_trace_ids(bad: object) -> None:
    assert normalize_trace_id(bad) is None


def test_normalize_folds_aliases_and_keeps_types() -> None:
    rec = normalize({
        "@timestamp": "2026-11-01T12:34:56.789123Z", "msg": "payment declined", "severity": "err",
        "service": "checkout", "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793",
        "http": {"method": "POST", "path": "/api/orders", "status": "502", "duration_ms": 1234.5},
        "userId": "u-123", "order": {"items": [{"sku": "A1", "qty": 2}]}, "amount": 12.5, "ok": False,
    }, received_ns=1)
    assert rec["level"] == "ERROR" and rec["severity_number"] == 17
    assert rec["message"] == "payment declined"
    assert rec["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert rec["http"] == {"method": "POST", "path": "/api/orders", "status": 502, "duration_ms": 1234.5}
    assert rec["attributes"]["userId"] == "u-123"
    assert rec["attributes"]["order"] == {"items": [{"sku": "A1", "qty": 2}]}
    assert rec["attributes"]["amount"] == 12.5 and rec["attributes"]["ok"] is False
    assert rec["attributes"]["trace_header"].startswith("Root=1-")
    wire = to_wire(rec)
    assert wire["timestamp"] == "2026-11-01T12:34:56.789123Z"
    assert wire["userId"] == "u-123" and wire["http"]["status"] == 502


def test_missing_fields_get_defaults_and_nothing_is_dropped() -> None:
    rec = normalize({"message": "x"}, received_ns=1_700_000_000_000_000_000)
    assert rec["timestamp"] == 1_700_000_000_000_000_000
    assert rec["service"] == "unknown" and rec["level"] == "INFO"
    rec = normalize({"message": "x", "request_id": "abc", "trace_id": "not-a-trace"}, received_ns=1)
    assert rec["trace_id"] is None and rec["request_id"] == "abc"
    assert rec["attributes"]["trace_raw"] == "not-a-trace"


def test_level_from_http_status_when_absent() -> None:
    assert normalize({"http": {"status": 503}}, received_ns=1)["level"] == "ERROR"
    assert normalize({"http": {"status": 404}}, received_ns=1)["level"] == "WARN"
    assert normalize({"http": {"status": 200}}, received_ns=1)["level"] == "INFO"


def test_unknown_level_is_kept_raw() -> None:
    rec = normalize({"level": "loud"}, received_ns=1)
    assert rec["level"] == "INFO" and rec["attributes"]["level_raw"] == "loud"


@pytest.mark.parametrize("bad", [{"http": {"status": "abc"}}, {"http": {"duration_ms": -1}},
                                 {"timestamp": "never"}])
def test_bad_values_raise(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(RecordError):
        normalize(bad, received_ns=1)


@given(st.dictionaries(st.text(max_size=12), st.one_of(
    st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
    st.text(max_size=20)), max_size=8))
def test_normalize_never_crashes_on_any_object(obj: dict) -> None:  # type: ignore[type-arg]
    try:
        rec = normalize(obj, received_ns=1)
    except RecordError:
        return
    assert rec["level"] in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
    assert isinstance(rec["timestamp"], int) and rec["service"]
