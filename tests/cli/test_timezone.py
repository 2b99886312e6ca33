"""``--tz``: the times the CLI shows people, in one zone setting (issue #26 item 9)."""

from __future__ import annotations

import pytest
from rich.console import Console

from logharbor.cli.tail import format_record
from logharbor.cli.timezone import parse_zone


def test_wire_times_convert_digit_for_digit() -> None:
    wire = "2026-07-01T23:59:59.123456789Z"
    assert parse_zone("utc").convert(wire) == wire
    assert parse_zone("Europe/Paris").convert(wire) == "2026-07-02T01:59:59.123456789+02:00"  # summer
    assert parse_zone("Europe/Paris").convert("2026-11-01T12:00:00Z") == "2026-11-01T13:00:00+01:00"
    assert parse_zone("Asia/Kolkata").convert(wire, sep=" ", digits=3, offset=False) == \
        "2026-07-02 05:29:59.123"
    assert parse_zone("UTC").convert("not a time") == "not a time"
    with pytest.raises(ValueError, match="not a time zone"):
        parse_zone("Mars/Olympus")


def test_tail_lines_follow_the_zone() -> None:
    record = {"timestamp": "2026-11-01T12:34:56.789123Z", "level": "ERROR", "service": "checkout",
              "message": "payment declined"}
    console = Console(width=200, color_system=None)
    with console.capture() as captured:
        console.print(format_record(record, zone=parse_zone("America/New_York")))
        console.print(format_record(record, zone=parse_zone("utc")))
    first, second = captured.get().splitlines()
    assert first.startswith("07:34:56.789 ERROR checkout payment declined")
    assert second.startswith("12:34:56.789 ERROR")
