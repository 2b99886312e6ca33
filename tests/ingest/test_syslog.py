"""Syslog listeners against Debian's rsyslog (imfile → omfwd over TCP and UDP) and a TLS client."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from tests.conftest import ServerProcess, free_port
from tests.rsyslog import OSSL, RSYSLOGD

from logharbor.formats.syslog import format_rfc5424
from logharbor.server.ingest.syslog import SyslogFramer

from .conftest import by_message, records


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not Path(RSYSLOGD).exists(), reason="rsyslog is installed by scripts/install.sh --test")
def test_rsyslog_forwards_over_tcp_and_udp(server_factory, rsyslog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tcp, udp = free_port(), _free_udp_port()
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--syslog-tcp", f"127.0.0.1:{tcp}",
                                           "--syslog-udp", f"127.0.0.1:{udp}")
    source = tmp_path / "app.log"
    source.write_text("".join(f"order {i} failed\n" for i in range(100)))
    rsyslog(source, f"""
action(type="omfwd" Target="127.0.0.1" Port="{tcp}" Protocol="tcp" TCP_Framing="octet-counted"
       Template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" Target="127.0.0.1" Port="{tcp}" Protocol="tcp" Template="RSYSLOG_ForwardFormat")
action(type="omfwd" Target="127.0.0.1" Port="{udp}" Protocol="udp"
       Template="RSYSLOG_TraditionalForwardFormat")
""")
    rows = records(server, "service:shopapp", 300, limit=1000)
    assert len(rows) == 300, server.log()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["message"]] = counts.get(row["message"], 0) + 1
        assert row["level"] == "ERROR" and row["facility"] == "local3" and row["host"] == "rsyslog-test"
        assert row["source"] == "syslog" and row["syslog_severity"] == 3
    assert counts == {f"order {i} failed": 3 for i in range(100)}  # once per framing/transport

    with source.open("a") as fh:  # lines appended later arrive too
        fh.write("late line\n")
    late = records(server, '"late line"', 3)
    assert len(late) == 3


def test_framing_and_tls_and_allow_list(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    tls, tcp = free_port(), free_port()
    server: ServerProcess = server_factory(
        "--batch-max-age", "0.2", "--syslog-tls", f"127.0.0.1:{tls}", "--syslog-tcp", f"127.0.0.1:{tcp}",
        "--listener-tls-cert", str(cert), "--listener-tls-key", str(key))
    five = format_rfc5424(pri=8 * 16 + 4, timestamp="2026-11-01T12:00:00.123456Z", host="h5", app="tlsapp",
                          procid=42, msgid="ID7", structured_data={"req@1": {"id": "r-1"}},
                          message="five four two four")
    ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", tls)) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        conn.sendall(f"{len(five.encode())} {five}".encode())
        conn.sendall(b"<13>Nov  1 12:00:01 h3 tlsapp[7]: three one six four\n")
        conn.sendall(b"<11>Nov  1 12:00:02 h3 tlsapp: split ")  # one message over two writes
        conn.sendall(b"across writes\nnot syslog at all tlsapp\n")
    rows = by_message(records(server, "service:tlsapp OR tlsapp", 4))
    assert set(rows) == {"five four two four", "three one six four", "split across writes",
                         "not syslog at all tlsapp"}
    five_row = rows["five four two four"]
    assert five_row["timestamp"] == "2026-11-01T12:00:00.123456Z" and five_row["level"] == "WARN"
    assert five_row["facility"] == "local0" and five_row["pid"] == 42 and five_row["msgid"] == "ID7"
    assert five_row["structured_data"] == {"req@1": {"id": "r-1"}} and five_row["host"] == "h5"
    assert rows["three one six four"]["level"] == "INFO" and rows["three one six four"]["pid"] == 7
    assert rows["not syslog at all tlsapp"]["host"] == "127.0.0.1"  # no header: the peer's address

    # a plain-TCP connection works too; nothing from outside the allow-list is taken (the
    # default allow-list is loopback only; the server here is asked to allow nothing else)
    with socket.create_connection(("127.0.0.1", tcp)) as conn:
        conn.sendall(b"<14>Nov  1 12:00:03 h4 plainapp: over plain tcp\n")
    assert records(server, "service:plainapp", 1)[0]["message"] == "over plain tcp"


def test_refused_outside_allow_list(server_factory) -> None:  # type: ignore[no-untyped-def]
    tcp = free_port()
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--syslog-tcp", f"127.0.0.1:{tcp}",
                                           "--listener-allow", "10.99.0.0/16")
    with socket.create_connection(("127.0.0.1", tcp)) as conn:
        conn.sendall(b"<14>Nov  1 12:00:03 h4 refused: should not be stored\n")
        conn.settimeout(10)
        assert conn.recv(10) == b""  # the server closed the connection
    server.ingest([{"message": "after the refused line"}])  # stored: an earlier line would be too
    assert server.store_rows() == 1


def test_framer_octet_counting_lf_and_truncation() -> None:
    framer = SyslogFramer(max_bytes=16)
    assert framer.feed(b"5 hello3 abc\nline one\n") == [(b"hello", False), (b"abc", False),
                                                         (b"line one", False)]
    assert framer.feed(b"7 par") == []
    assert framer.feed(b"tial\nrest") == [(b"partial", False)]
    assert framer.close() == [(b"rest", False)]
    long = SyslogFramer(max_bytes=4)
    assert long.feed(b"10 abcdefghij<1>x\n") == [(b"abcd", True), (b"<1>x", False)]
    assert long.feed(b"<2>toolong\nok\n") == [(b"<2>t", True), (b"ok", False)]
    nul = SyslogFramer(max_bytes=64)
    assert nul.feed(b"<14>a: one\x00<14>a: two\x00<14>a: th") == [(b"<14>a: one", False), (b"<14>a: two", False)]
    assert nul.feed(b"ree\x00") == [(b"<14>a: three", False)]


def test_python_sysloghandler_udp_and_tcp(server_factory) -> None:  # type: ignore[no-untyped-def]
    """The standard library's ``logging.handlers.SysLogHandler`` (NUL-terminated over TCP)."""
    import logging
    import logging.handlers

    tcp, udp = free_port(), _free_udp_port()
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--syslog-tcp", f"127.0.0.1:{tcp}",
                                           "--syslog-udp", f"127.0.0.1:{udp}")
    handlers = [
        logging.handlers.SysLogHandler(("127.0.0.1", udp), facility="local5"),
        logging.handlers.SysLogHandler(("127.0.0.1", tcp), facility="local5", socktype=socket.SOCK_STREAM),
    ]
    logger = logging.getLogger("stdlib-syslog")
    logger.propagate = False
    for handler in handlers:
        handler.setFormatter(logging.Formatter("pyapp[%(process)d]: %(message)s"))
        logger.addHandler(handler)
    try:
        logger.error("stdlib error line")
        logger.warning("stdlib warning line")
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
    rows = records(server, "service:pyapp", 4)
    assert sorted(r["message"] for r in rows) == ["stdlib error line"] * 2 + ["stdlib warning line"] * 2
    for row in rows:
        assert row["facility"] == "local5" and row["level"] in ("ERROR", "WARN")


def test_udp_bursts_are_all_written(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Datagrams arriving while a batch is being written go into the next batch (none left behind)."""
    udp = _free_udp_port()
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--syslog-udp", f"127.0.0.1:{udp}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for burst in range(15):
            for i in range(100):
                sock.sendto(f"<134>Nov  1 12:00:00 h udpburst: b{burst} m{i}".encode(), ("127.0.0.1", udp))
            time.sleep(0.01)  # paced so the loopback socket buffer never overflows
    assert server.wait_rows(1500) == 1500
    rows = records(server, "service:udpburst", 1500)
    assert len({row["message"] for row in rows}) == 1500




@pytest.mark.skipif(not OSSL.exists(), reason="rsyslog-openssl is installed by scripts/install.sh --test")
def test_rsyslog_forwards_over_tls(server_factory, rsyslog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """rsyslog's own TLS driver (OpenSSL), verifying the server's certificate by name (RFC 5425)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=logharbor.test",
                    "-addext", "subjectAltName=DNS:logharbor.test,IP:127.0.0.1"], check=True, capture_output=True)
    tls = free_port()
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--syslog-tls", f"127.0.0.1:{tls}",
                                           "--listener-tls-cert", str(cert), "--listener-tls-key", str(key))
    source = tmp_path / "tls.log"
    source.write_text("".join(f"tls line {i}\n" for i in range(50)))
    rsyslog(source, f"""
global(DefaultNetstreamDriverCAFile="{cert}")
action(type="omfwd" Target="127.0.0.1" Port="{tls}" Protocol="tcp" StreamDriver="ossl" StreamDriverMode="1"
       StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="logharbor.test"
       TCP_Framing="octet-counted" Template="RSYSLOG_SyslogProtocol23Format")
""")
    rows = records(server, "service:shopapp", 50)
    assert sorted(row["message"] for row in rows) == sorted(f"tls line {i}" for i in range(50)), server.log()
    assert {row["facility"] for row in rows} == {"local3"}


def test_rfc3164_times_are_read_in_the_senders_zone(server_factory) -> None:  # type: ignore[no-untyped-def]
    """An RFC 3164 time has no zone: --syslog-timezone says it (Berlin is UTC+1 in November), and
    --syslog-timezones gives other networks theirs (Kolkata, UTC+5:30, from 127.0.0.2); an ISO time
    written without its offset is local too, one with its offset is kept (issue #22)."""
    tcp = free_port()
    server: ServerProcess = server_factory(
        "--batch-max-age", "0.2", "--syslog-tcp", f"127.0.0.1:{tcp}", "--syslog-timezone", "Europe/Berlin",
        "--syslog-timezones", "127.0.0.2/32=Asia/Kolkata", "--listener-allow", "127.0.0.0/8")
    lines = {
        "127.0.0.1": [b"<11>Nov 25 2026 10:00:00 web-1 app[1]: berlin bsd\n",
                      b"<11>2026-11-25T10:00:00 web-1 app[1]: berlin iso without offset\n",
                      b"<11>2026-11-25T10:00:00+00:00 web-1 app[1]: iso with its offset\n"],
        "127.0.0.2": [b"<11>Nov 25 2026 10:00:00 web-2 app[1]: kolkata bsd\n"],
    }
    for source, messages in lines.items():
        with socket.create_connection(("127.0.0.1", tcp), source_address=(source, 0)) as sock:
            sock.sendall(b"".join(messages))
    rows = by_message(records(server, "service:app", 4))
    assert rows["berlin bsd"]["timestamp"] == "2026-11-25T09:00:00.000000Z"
    assert rows["berlin iso without offset"]["timestamp"] == "2026-11-25T09:00:00.000000Z"
    assert rows["iso with its offset"]["timestamp"] == "2026-11-25T10:00:00.000000Z"
    assert rows["kolkata bsd"]["timestamp"] == "2026-11-25T04:30:00.000000Z"


def test_a_bad_syslog_zone_fails_the_start_naming_it() -> None:
    from pydantic import ValidationError

    from logharbor.server.config import ServerConfig

    with pytest.raises(ValidationError, match="syslog_timezone: unknown time zone 'Europe/Berlinn'"):
        ServerConfig(syslog_timezone="Europe/Berlinn")
    with pytest.raises(ValidationError, match=re.escape("'10.0.0.0/33=UTC' is not NETWORK=ZONE")):
        ServerConfig(syslog_timezones=["10.0.0.0/33=UTC"])
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Base'"):
        ServerConfig(syslog_timezones=["10.0.0.0/8=Mars/Base"])


def test_a_time_out_of_range_costs_nothing_beside_it(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A device whose clock was never set: ``Dec 31 1969 …`` was refused after parsing (dropped,
    a DEBUG line), and an ISO time without offset before 1973 raised out of the parser — on UDP that
    lost the write of every sender's datagrams waiting with it, on TCP the connection and what it
    had sent. Each is stored unparsed with its reason now, and the lines beside them are stored."""
    from tests.faults.conftest import Tally

    tcp, udp = free_port(), _free_udp_port()
    server: ServerProcess = server_factory(
        "--batch-max-age", "0.2", "--syslog-tcp", f"127.0.0.1:{tcp}", "--syslog-udp", f"127.0.0.1:{udp}",
        "--syslog-timezone", "Europe/Berlin", "--listener-allow", "127.0.0.0/8")
    poison = [b"<11>Dec 31 1969 23:59:59 dev-1 clk[1]: unset clock %s",
              b"<11>1970-06-01T00:00:00 dev-1 clk[1]: unset clock iso %s",
              b"<11>Jan  1 2300 00:00:00 dev-1 clk[1]: far clock %s"]
    tally = Tally("syslog lines with times out of range, beside good ones (UDP and TCP)")
    sent: list[bytes] = []
    for transport in ("udp", "tcp"):
        lines = []
        for i in range(30):
            template = poison[i % 3] if i % 5 == 0 else b"<11>Nov 25 2026 10:00:00 web-1 app[1]: good %s"
            lines.append(template % f"{transport}-{i}".encode())
        sent += lines
        if transport == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for line in lines:
                    sock.sendto(line, ("127.0.0.1", udp))
        else:
            with socket.create_connection(("127.0.0.1", tcp)) as sock:
                sock.sendall(b"".join(line + b"\n" for line in lines))
    tally.ack(line.rsplit(b" ", 1)[1].decode() for line in sent)
    deadline = time.monotonic() + 60
    while True:  # from 1970: the ISO line is stored at its own time, 1970-05-31T23:00Z (Berlin)
        rows = server.query("service:clk OR service:app OR _exists_:parse_error", limit=1000,
                            **{"from": "1970-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})["rows"]
        if len(rows) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    tally.saw(r["message"].rsplit(" ", 1)[1] for r in rows)
    tally.report()
    unparsed = [r for r in rows if "parse_error" in r]
    assert len(unparsed) == 8 and all("syslog time" in r["parse_error"] for r in unparsed), unparsed
    assert {r["timestamp"] for r in rows if "unset clock iso" in r["message"]} == {"1970-05-31T23:00:00.000000Z"}
