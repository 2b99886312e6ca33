"""Syslog: the RFC 5424 and RFC 3164 examples, structured data, NILVALUE, BOM, PRI mapping,
missing years and hosts, bad lines."""

from __future__ import annotations

import pytest

from logharbor.formats import ParserConfigError, build_parser
from logharbor.formats.syslog import parse_syslog
from logharbor.record import normalize, parse_timestamp

NOW = parse_timestamp("2026-11-01T12:00:00Z")


def test_rfc5424_example_1_with_bom() -> None:
    line = ("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
            "\ufeff'su root' failed for lonvick on /dev/pts/8")
    raw = parse_syslog(line)
    assert raw == {
        "source": "syslog", "level": "FATAL", "syslog_severity": 2, "facility": "auth",
        "timestamp": parse_timestamp("2003-10-11T22:14:15.003Z"), "host": "mymachine.example.com",
        "service": "su", "msgid": "ID47", "message": "'su root' failed for lonvick on /dev/pts/8",
    }


def test_rfc5424_example_2_offset_and_pid() -> None:
    raw = parse_syslog("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
                       "%% It's time to make the do-nuts.")
    assert raw["timestamp"] == parse_timestamp("2003-08-24T12:14:15.000003Z")
    assert raw["pid"] == 8710 and raw["facility"] == "local4" and raw["level"] == "INFO"
    assert "msgid" not in raw and "structured_data" not in raw


def test_rfc5424_structured_data() -> None:
    line = ('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
            '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
            '[examplePriority@32473 class="high" note="a \\"quoted\\" \\] bracket\\\\"] '
            '\ufeffAn application event')
    raw = parse_syslog(line)
    assert raw["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high", "note": 'a "quoted" ] bracket\\'},
    }
    assert raw["message"] == "An application event"
    rec = normalize(raw, received_ns=0)
    assert rec["service"] == "evntslog"
    assert rec["attributes"]["structured_data"]["exampleSDID@32473"]["eventID"] == "1011"


def test_rfc5424_all_nil_and_no_message() -> None:
    raw = parse_syslog("<14>1 - - - - - -")
    assert raw == {"source": "syslog", "level": "INFO", "syslog_severity": 6, "facility": "user",
                   "message": ""}
    rec = normalize(raw, received_ns=5)
    assert rec["timestamp"] == 5 and rec["service"] == "unknown"


def test_rfc3164_examples() -> None:
    raw = parse_syslog("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
                       now_ns=NOW)
    assert raw["timestamp"] == parse_timestamp("2026-10-11T22:14:15Z")
    assert raw["host"] == "mymachine" and raw["service"] == "su" and raw["level"] == "FATAL"
    assert raw["message"] == "'su root' failed for lonvick on /dev/pts/8"
    bfg = parse_syslog("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", now_ns=NOW)
    assert bfg["host"] == "10.0.0.99" and bfg["message"] == "Use the BFG!" and "service" not in bfg
    assert bfg["timestamp"] == parse_timestamp("2026-02-05T17:32:18Z")


def test_rfc3164_tag_pid_without_host_and_file_lines() -> None:
    raw = parse_syslog("<86>Nov  1 11:59:00 sshd[1234]: Accepted publickey for deploy", now_ns=NOW)
    assert "host" not in raw and raw["service"] == "sshd" and raw["pid"] == 1234
    assert raw["facility"] == "authpriv" and raw["level"] == "INFO"
    file_line = parse_syslog("Nov  1 11:59:00 web-1 CRON[77]: (root) CMD (run-parts)", now_ns=NOW)
    assert file_line["host"] == "web-1" and file_line["service"] == "CRON" and file_line["pid"] == 77
    assert "level" not in file_line


def test_rfc3164_year_inference_and_explicit_year() -> None:
    december = parse_syslog("<13>Dec 31 23:59:59 h app: old", now_ns=parse_timestamp("2027-01-01T00:00:30Z"))
    assert december["timestamp"] == parse_timestamp("2026-12-31T23:59:59Z")
    # a sender's clock a little fast over New Year: next year's, not eleven months back
    january = parse_syslog("<13>Jan  1 00:00:05 h app: new", now_ns=parse_timestamp("2026-12-31T23:59:58Z"))
    assert january["timestamp"] == parse_timestamp("2027-01-01T00:00:05Z")
    leap = parse_syslog("<13>Feb 29 10:00:00 h app: leap", now_ns=parse_timestamp("2029-03-01T00:00:00Z"))
    assert leap["timestamp"] == parse_timestamp("2028-02-29T10:00:00Z")  # not refused in 2029
    explicit = parse_syslog("<13>Mar  3 2021 01:02:03 h app: x", now_ns=NOW)
    assert explicit["timestamp"] == parse_timestamp("2021-03-03T01:02:03Z")
    frac = parse_syslog("<13>Mar  3 01:02:03.250 h app: x", now_ns=NOW)
    assert frac["timestamp"] == parse_timestamp("2026-03-03T01:02:03.25Z")


def test_rfc3164_timezone_option_and_iso_time() -> None:
    parser = build_parser("syslog", timezone="America/New_York")
    raw = parser.parse("<13>Jul  4 08:00:00 h app: fireworks")
    assert format(raw["timestamp"] // 10**9 % 86400 // 3600) == "12"  # 08:00 EDT is 12:00 UTC
    iso = parse_syslog("<13>2026-11-01T12:00:00.123+01:00 web-1 app[9]: iso")
    assert iso["timestamp"] == parse_timestamp("2026-11-01T11:00:00.123Z") and iso["pid"] == 9


def test_pri_to_level_covers_every_severity() -> None:
    levels = [parse_syslog(f"<{8 + sev}>1 - h a - - - m")["level"] for sev in range(8)]
    assert levels == ["FATAL", "FATAL", "FATAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG"]
    assert parse_syslog("<191>1 - h a - - - m")["facility"] == "local7"


@pytest.mark.parametrize("line,reason", [
    ("", "not a syslog line"),
    ("just text", "not a syslog line"),
    ("<200>1 - - - - - - x", "PRI"),
    ("<13>1 2026-13-01T00:00:00Z h a - - - x", "time"),
    ("<13>1 - h a - - [broken x", "structured data"),
    ("<13>1 - h a - - nosd x", "structured data"),
    ("<13>1 short", "incomplete"),
])
def test_bad_lines_are_kept(line: str, reason: str) -> None:
    raw = parse_syslog(line)
    assert raw["message"] == line and reason in raw["parse_error"]
    assert set(raw) == {"message", "parse_error"}


def test_bad_timezone_is_a_config_error() -> None:
    with pytest.raises(ParserConfigError, match="option 'timezone'"):
        build_parser("syslog", timezone="Nowhere/Town")


def test_a_time_before_1973_keeps_its_instant() -> None:
    """A bare "20" read as 20 s after the epoch was returned as 2e10 ns, which normalize re-read
    as seconds (year 2603) and rejected: the record failed instead of being stored."""
    from logharbor.formats import build_parser
    from logharbor.record import normalize

    raw = build_parser("syslog").parse('<165>1 20 host app 12 ID47 - message')
    assert normalize(raw, received_ns=0)["timestamp"] == 20 * 10**9


def test_framer_a_peer_closing_mid_octet_counted_message_leaves_it_marked_truncated() -> None:
    """Regression: its length prefix used to be shipped as text (``100 <13>par``), unmarked."""
    from logharbor.formats.syslog_framing import SyslogFramer

    framer = SyslogFramer(max_bytes=1024)
    assert framer.feed(b"5 hello100 <13>app: par") == [(b"hello", False)]
    assert framer.close() == [(b"<13>app: par", True)]
    lf = SyslogFramer(max_bytes=1024)
    assert lf.feed(b"<13>app: no newline") == []
    assert lf.close() == [(b"<13>app: no newline", False)]


def test_framer_an_over_long_nul_framed_message_does_not_swallow_the_next_ones() -> None:
    """Regression: the rest of an over-long message was skipped up to the next LF only, so every
    NUL-terminated message after it (Python's SysLogHandler over TCP) was lost with it."""
    from logharbor.formats.syslog_framing import SyslogFramer

    framer = SyslogFramer(max_bytes=16)
    got = framer.feed(b"<14>a: " + b"x" * 40 + b"\x00<14>a: two\x00<14>a: three\x00")
    assert got == [(b"<14>a: xxxxxxxxx", True), (b"<14>a: two", False), (b"<14>a: three", False)]
    split = SyslogFramer(max_bytes=16)  # the end of the over-long message arrives in a later read
    assert split.feed(b"<14>a: " + b"y" * 40) == [(b"<14>a: yyyyyyyyy", True)]
    assert split.feed(b"y" * 10 + b"\x00<14>a: next\x00") == [(b"<14>a: next", False)]
