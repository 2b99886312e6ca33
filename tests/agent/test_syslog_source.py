"""The ``syslog`` source as a real agent process: Debian's rsyslog forwarding to it over TCP
(octet-counted and LF), UDP and TLS, and plain sockets for RFC 3164 / 5424, framing, oversize
messages, garbage and the connection limit. Records land in the counting receiver."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.agent.conftest import free_port, log_events, wait_for
from tests.rsyslog import OSSL, RSYSLOGD

from logharbor.agent.config import ConfigError, parse_config
from logharbor.formats.syslog import format_rfc5424
from logharbor.record import parse_timestamp


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def agent_cfg(tmp: Path, url: str, **source: Any) -> dict[str, Any]:
    return {"data_dir": str(tmp / "state"), "metrics": {"port": 0},
            "sources": {"sl": {"type": "syslog", **source}},
            "sinks": {"srv": {"type": "logharbor", "url": url, "compression": "none",
                              "batch": {"timeout_secs": 0.1}}}}


def started(agent: Any) -> bool:
    return "syslog listening" in agent.log()


@pytest.mark.skipif(not Path(RSYSLOGD).exists(), reason="rsyslog is installed by scripts/install.sh --test")
def test_rsyslog_forwards_to_the_agent_over_tcp_and_udp(tmp_path: Path, rsyslog, receiver_factory,
                                                        agent_factory) -> None:  # type: ignore[no-untyped-def]
    tcp, udp = free_port(), free_udp_port()
    r = receiver_factory()
    agent = agent_factory(agent_cfg(tmp_path, r.url, tcp=f"127.0.0.1:{tcp}", udp=f"127.0.0.1:{udp}"))
    assert wait_for(lambda: started(agent), 30), agent.log()
    source = tmp_path / "app.log"
    source.write_text("".join(f"order {i} failed\n" for i in range(100)))
    rsyslog(source, f"""
action(type="omfwd" Target="127.0.0.1" Port="{tcp}" Protocol="tcp" TCP_Framing="octet-counted"
       Template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" Target="127.0.0.1" Port="{tcp}" Protocol="tcp" Template="RSYSLOG_ForwardFormat")
action(type="omfwd" Target="127.0.0.1" Port="{udp}" Protocol="udp" Template="RSYSLOG_TraditionalForwardFormat")
""")
    assert wait_for(lambda: len(r.records()) >= 300, 60), agent.log()
    with source.open("a") as fh:  # lines appended later arrive too
        fh.write("late line\n")
    assert wait_for(lambda: len(r.records()) >= 303, 30), agent.log()
    assert agent.stop() == 0  # drains: a line sent twice is in the file now
    counts: dict[str, int] = {}
    for rec in r.records():
        counts[rec["message"]] = counts.get(rec["message"], 0) + 1
        assert rec["level"] == "ERROR" and rec["facility"] == "local3" and rec["host"] == "rsyslog-test"
        assert rec["service"] == "shopapp" and rec["source"] == "syslog" and rec["peer"] == "127.0.0.1"
    assert counts == {**{f"order {i} failed": 3 for i in range(100)}, "late line": 3}  # once per transport


@pytest.mark.skipif(not OSSL.exists(), reason="rsyslog-openssl is installed by scripts/install.sh --test")
def test_rsyslog_forwards_to_the_agent_over_tls(tmp_path: Path, rsyslog, receiver_factory,
                                                agent_factory) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=logharbor.test",
                    "-addext", "subjectAltName=DNS:logharbor.test,IP:127.0.0.1"], check=True, capture_output=True)
    tls = free_port()
    r = receiver_factory()
    agent = agent_factory(agent_cfg(tmp_path, r.url, tls=f"127.0.0.1:{tls}", tls_cert_file=str(cert),
                                    tls_key_file=str(key)))
    assert wait_for(lambda: started(agent), 30), agent.log()
    source = tmp_path / "tls.log"
    source.write_text("".join(f"tls line {i}\n" for i in range(50)))
    rsyslog(source, f"""
global(DefaultNetstreamDriverCAFile="{cert}")
action(type="omfwd" Target="127.0.0.1" Port="{tls}" Protocol="tcp" StreamDriver="ossl" StreamDriverMode="1"
       StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="logharbor.test"
       TCP_Framing="octet-counted" Template="RSYSLOG_SyslogProtocol23Format")
""")
    assert wait_for(lambda: len(r.records()) >= 50, 60), agent.log()
    assert agent.stop() == 0
    assert sorted(x["message"] for x in r.records()) == sorted(f"tls line {i}" for i in range(50))


def test_plain_sockets_3164_5424_framing_oversize_garbage_and_limits(tmp_path: Path, receiver_factory,
                                                                    agent_factory) -> None:  # type: ignore[no-untyped-def]
    tcp, udp = free_port(), free_udp_port()
    r = receiver_factory()
    agent = agent_factory(agent_cfg(tmp_path, r.url, tcp=f"127.0.0.1:{tcp}", udp=f"127.0.0.1:{udp}",
                                    max_message_bytes=300, max_connections=2, timezone="Europe/Paris"))
    assert wait_for(lambda: started(agent), 30), agent.log()
    five = format_rfc5424(pri=8 * 16 + 4, timestamp="2026-11-01T12:00:00.123456Z", host="h5", app="api",
                          procid=42, msgid="ID7", structured_data={"req@1": {"id": "r-1"}},
                          message="five four two four")
    big = "<14>1 2026-11-01T12:00:01Z h5 api - - - " + "x" * 1000
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"<11>Nov 25 05:06:07 web1 nginx[12]: upstream timed out", ("127.0.0.1", udp))
        u.sendto(big.encode(), ("127.0.0.1", udp))
    with socket.create_connection(("127.0.0.1", tcp)) as c:
        c.sendall(f"{len(five)} {five}".encode())  # octet counting
        c.sendall(f"{len(big)} {big}".encode())  # over max_message_bytes: cut, the rest skipped
        c.sendall(b"<13>Nov 25 05:06:08 web2 app: lf framed\n")
        c.sendall(b"\xff\xfe not syslog at all\n")
        c.sendall(b"<999>1 2026-11-01T12:00:00Z h - - - - bad pri\n")
        c.sendall(b"<13>Nov 25 05:06:09 web2 app: last line without newline")
    assert wait_for(lambda: len(r.records()) >= 8, 30), agent.log()
    by_msg = {x["message"][:40]: x for x in r.records()}
    udp3164 = by_msg["upstream timed out"]
    assert udp3164["host"] == "web1" and udp3164["service"] == "nginx" and udp3164["pid"] == 12
    assert udp3164["level"] == "ERROR" and udp3164["facility"] == "user"
    year = time.gmtime().tm_year
    assert udp3164["timestamp"] in {parse_timestamp(f"{y}-11-25T05:06:07+01:00") for y in (year - 1, year)}
    octet = by_msg["five four two four"]
    assert octet["structured_data"] == {"req@1": {"id": "r-1"}} and octet["msgid"] == "ID7"
    assert octet["facility"] == "local0" and octet["level"] == "WARN"
    assert octet["timestamp"] == parse_timestamp("2026-11-01T12:00:00.123456Z")
    cut = [x for x in r.records() if x["message"].startswith("xxx")]
    assert len(cut) == 2 and all(x["truncated"] is True for x in cut)  # one by UDP, one by TCP
    assert all(len(x["message"]) < 300 for x in cut)
    # a datagram's length is known: said; the log says a message was cut (once per 10 s at most)
    assert sorted(x.get("original_bytes", 0) for x in cut) == [0, len(big)]
    assert log_events(agent, "line longer than the limit shipped truncated")[0]["kept_bytes"] == 300
    assert by_msg["lf framed"]["host"] == "web2"
    assert by_msg["last line without newline"]["service"] == "app"
    garbage = [x for x in r.records() if "parse_error" in x]
    assert any("999" in x["parse_error"] for x in garbage)
    assert any("not syslog at all" in x["message"] for x in r.records())
    assert len(r.records()) == 8  # nothing lost, nothing doubled: the tail of the big one was skipped

    # max_connections: a third connection is closed at once; the two first still deliver
    held = [socket.create_connection(("127.0.0.1", tcp)) for _ in range(2)]
    for i, c in enumerate(held):  # a line through each: both are accepted and counted now
        c.sendall(f"<13>Nov 25 05:06:10 h app: held {i}\n".encode())
    assert wait_for(lambda: len(r.records()) >= 10, 30), agent.log()
    third = socket.create_connection(("127.0.0.1", tcp))
    third.settimeout(5)
    assert third.recv(1) == b""  # closed by the agent
    third.close()
    assert "max_connections" in agent.log()
    for i, c in enumerate(held):
        c.sendall(f"<13>Nov 25 05:06:11 h app: still held {i}\n".encode())
        c.close()
    assert wait_for(lambda: len(r.records()) >= 12, 30), agent.log()
    assert agent.stop() == 0


def test_parser_reads_the_msg_part(tmp_path: Path, receiver_factory, agent_factory) -> None:  # type: ignore[no-untyped-def]
    tcp = free_port()
    r = receiver_factory()
    agent = agent_factory(agent_cfg(tmp_path, r.url, tcp=f"127.0.0.1:{tcp}", parser="json",
                                    fields={"env": "prod"}))
    assert wait_for(lambda: started(agent), 30), agent.log()
    with socket.create_connection(("127.0.0.1", tcp)) as c:
        c.sendall(b'<11>Nov 25 05:06:07 web1 shop: {"msg":"paid","order_id":"o-9","level":"info"}\n')
        c.sendall(b"<11>Nov 25 05:06:07 web1 shop: not json\n")
    assert wait_for(lambda: len(r.records()) >= 2, 30), agent.log()
    assert agent.stop() == 0
    paid, plain = sorted(r.records(), key=lambda x: "parse_error" in x)
    assert paid["msg"] == "paid" and paid["order_id"] == "o-9" and paid["level"] == "info"
    assert paid["level_syslog"] == "ERROR"  # the PRI's level, kept beside the app's own
    assert "message" not in paid and paid["service"] == "shop" and paid["env"] == "prod"
    assert plain["message"] == "not json" and "parse_error" in plain and plain["level"] == "ERROR"


def test_a_busy_port_stops_the_agent_at_start_with_a_clear_error(tmp_path: Path, receiver_factory,
                                                                 agent_factory) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        agent = agent_factory(agent_cfg(tmp_path, "http://127.0.0.1:9", tcp=f"127.0.0.1:{port}"))
        assert agent.proc.wait(60) == 2
    assert f"cannot listen on tcp 127.0.0.1:{port}" in agent.log()


@pytest.mark.parametrize(("source", "reason"), [
    ({}, "give at least one listener"),
    ({"tcp": "514"}, "is not host:port"),
    ({"tls": "127.0.0.1:6514"}, "needs tls_cert_file and tls_key_file"),
    ({"tls": "127.0.0.1:6514", "tls_cert_file": "/nonexistent.pem", "tls_key_file": "/nonexistent.key"},
     "no such file: /nonexistent.pem"),
    ({"udp": "127.0.0.1:514", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"udp": "127.0.0.1:514", "max_message_bytes": 10}, "greater than or equal to 256"),
])
def test_bad_options_are_named(source: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"sources": {"s": {"type": "syslog", **source}}, "sinks": {"o": {"type": "stdout"}}})
    assert "sources.s" in str(err.value) and reason in str(err.value)


def test_tls_listener_with_a_python_client(tmp_path: Path, receiver_factory, agent_factory) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    tls = free_port()
    r = receiver_factory()
    agent = agent_factory(agent_cfg(tmp_path, r.url, tls=f"127.0.0.1:{tls}", tls_cert_file=str(cert),
                                    tls_key_file=str(key)))
    assert wait_for(lambda: started(agent), 30), agent.log()
    with socket.create_connection(("127.0.0.1", tls)) as plain:  # not TLS: refused, the agent carries on
        plain.sendall(b"<13>Nov 25 05:06:07 h app: cleartext\n")
        plain.settimeout(5)
        try:
            assert plain.recv(100) == b""  # the handshake failed: closed
        except ConnectionResetError:
            pass
    ctx = ssl.create_default_context(cafile=str(cert))
    five = format_rfc5424(pri=13, timestamp="2026-11-01T12:00:00Z", host="h", app="app", message="over tls")
    with socket.create_connection(("127.0.0.1", tls)) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        conn.sendall(f"{len(five.encode())} {five}".encode())
    assert wait_for(lambda: len(r.records()) >= 1, 30), agent.log()
    assert agent.stop() == 0  # drains: anything more is in the file now
    assert [x["message"] for x in r.records()] == ["over tls"]


def test_a_reload_that_changes_the_source_rebinds_its_port(tmp_path: Path, receiver_factory,
                                                           agent_factory) -> None:  # type: ignore[no-untyped-def]
    """SIGHUP with a changed syslog source: the old listener is closed before the new one binds the
    same port, and messages before and after the reload all arrive."""
    tcp = free_port()
    r = receiver_factory()
    cfg = agent_cfg(tmp_path, r.url, tcp=f"127.0.0.1:{tcp}", fields={"env": "before"})
    agent = agent_factory(cfg)
    assert wait_for(lambda: started(agent), 30), agent.log()
    with socket.create_connection(("127.0.0.1", tcp)) as c:
        c.sendall(b"<13>Nov 25 05:06:07 h app: first\n")
    assert wait_for(lambda: len(r.records()) >= 1, 30), agent.log()
    cfg["sources"]["sl"]["fields"] = {"env": "after"}
    agent.config.write_text(yaml.safe_dump(cfg))
    agent.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: agent.log().count("syslog listening") >= 2, 30), agent.log()

    def send_second() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", tcp), timeout=2) as c:
                c.sendall(b"<13>Nov 25 05:06:08 h app: second\n")
            return True
        except OSError:
            return False

    assert wait_for(send_second, 10)
    assert wait_for(lambda: len(r.records()) >= 2, 30), agent.log()
    assert agent.stop() == 0
    assert [(x["message"], x["env"]) for x in r.records()] == [("first", "before"), ("second", "after")]


def test_a_clean_stop_delivers_what_peers_already_sent_and_an_unterminated_last_message(
        tmp_path: Path, receiver_factory, agent_factory) -> None:  # type: ignore[no-untyped-def]
    tcp = free_port()
    r = receiver_factory()
    agent = agent_factory(agent_cfg(tmp_path, r.url, tcp=f"127.0.0.1:{tcp}"))
    assert wait_for(lambda: started(agent), 30), agent.log()
    burst = 2000
    with socket.create_connection(("127.0.0.1", tcp)) as c:
        c.sendall(b"".join(f"<13>Nov 25 05:06:10 h app: burst {i}\n".encode() for i in range(burst)))
        c.sendall(b"<13>Nov 25 05:06:11 h app: the last one, no newline")
        assert agent.stop() == 0  # while the connection is still open and its data unread or framed
    got = [x["message"] for x in r.records()]
    assert sorted(got) == sorted([f"burst {i}" for i in range(burst)] + ["the last one, no newline"])


def test_a_stop_reads_a_connection_the_kernel_completed_before_the_listener_took_it(tmp_path: Path) -> None:
    """A peer whose handshake the kernel completed (the connection waits in the listen backlog)
    has sent its messages when the stop comes: they are read, not reset with the closing listener.
    (The listener closed at once at a stop, so on a busy machine a peer that connected just before
    lost what it sent.)"""
    import threading

    from logharbor.agent.sources.syslog import Config, SyslogSource

    source = SyslogSource("sl", Config.model_validate({"type": "syslog", "tcp": f"127.0.0.1:{free_port()}"}),
                          tmp_path, 1)  # listening from here on, but nothing accepts yet
    chunks: list[Any] = []
    with socket.create_connection(source.bound["tcp"], timeout=30) as peer:
        peer.sendall(b"<13>Nov 25 05:06:10 h app: sent before the stop\n<13>Nov 25 05:06:11 h app: unterminated")
        stop = threading.Event()
        stop.set()  # the stop comes before any accept: the connection is still in the backlog
        runner = threading.Thread(target=source.run, args=(chunks.append, stop), daemon=True)
        runner.start()
        runner.join(30)
    source.close()
    assert not runner.is_alive()
    assert [r["message"] for c in chunks for r in c.records] == ["sent before the stop", "unterminated"]


def test_a_stop_reads_the_datagrams_the_kernel_queued_on_the_udp_socket(tmp_path: Path) -> None:
    """Datagrams the kernel accepted into the UDP socket's receive queue before the stop are
    delivered, not discarded with the closing socket (the reader thread took them one at a time
    and the stop closed the socket under it: of a burst sent just before, most were lost).
    UDP has no acknowledgement: "sent" here is what the kernel queued (its drop count stays 0)."""
    import threading

    from logharbor.agent.sources.syslog import Config, SyslogSource

    source = SyslogSource("sl", Config.model_validate({"type": "syslog", "udp": f"127.0.0.1:{free_udp_port()}"}),
                          tmp_path, 1)  # bound from here on, but nothing reads yet
    sent = [f"queued {i}" for i in range(2000)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for text in sent:
            sender.sendto(f"<13>Nov 25 05:06:10 h app: {text}".encode(), source.bound["udp"])
    chunks: list[Any] = []
    stop = threading.Event()
    stop.set()  # the stop comes before the reader ran: every datagram is still in the kernel
    runner = threading.Thread(target=source.run, args=(chunks.append, stop), daemon=True)
    runner.start()
    runner.join(60)
    source.close()
    assert not runner.is_alive()
    got = [r["message"] for c in chunks for r in c.records]
    assert len(got) == len(sent) and set(got) == set(sent), f"{len(sent) - len(set(got))} lost"


def test_connections_over_max_connections_are_counted_and_logged_once_per_burst(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A flood of connections over ``max_connections`` is refused, counted one by one, and logged
    once (it was one warning per refused connection: a flood of sockets became a flood of log)."""
    import logging
    import threading

    from logharbor.agent import telemetry
    from logharbor.agent.sources.syslog import Config, SyslogSource

    caplog.set_level(logging.WARNING, logger="logharbor.agent")
    source = SyslogSource("sl-cap", Config.model_validate({"type": "syslog", "tcp": f"127.0.0.1:{free_port()}",
                                                           "max_connections": 1}), tmp_path, 1)
    counter = telemetry.METRICS.connections_refused.labels("sl-cap")
    before = counter._value.get()
    chunks: list[Any] = []
    stop = threading.Event()
    runner = threading.Thread(target=source.run, args=(chunks.append, stop), daemon=True)
    runner.start()
    try:
        with socket.create_connection(source.bound["tcp"], timeout=30) as held:
            held.sendall(b"<13>Nov 25 05:06:10 h app: held\n")
            assert wait_for(lambda: any(r["message"] == "held" for c in chunks for r in c.records), 30)
            for _ in range(5):
                with socket.create_connection(source.bound["tcp"], timeout=30) as extra:
                    assert extra.recv(1) == b""  # closed by the agent
            held.sendall(b"<13>Nov 25 05:06:11 h app: still held\n")
            assert wait_for(lambda: any(r["message"] == "still held" for c in chunks for r in c.records), 30)
    finally:
        stop.set()
        runner.join(30)
        source.close()
    assert counter._value.get() - before == 5
    lines = [r for r in caplog.records if "max_connections reached" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]


def test_a_parsed_msg_field_beside_the_header_keeps_both(tmp_path: Path) -> None:
    """``parser: json``: a MSG field the header also gives (``host``, ``level``, ``service``) with
    another value wins the name; the header's value is kept as ``<name>_syslog`` (it was replaced
    without a word); equal values stay one."""
    from logharbor.agent.sources.syslog import Config, SyslogSource

    source = SyslogSource("sl-parse", Config.model_validate({"type": "syslog", "tcp": f"127.0.0.1:{free_port()}",
                                                             "parser": "json"}), tmp_path, 1)
    try:
        rec = source.record(b'<11>Nov 25 05:06:07 web1 shop: {"msg": "paid", "host": "pod-7", "level": "info", '
                            b'"service": "shop", "host_syslog": "taken"}', False, "10.0.0.9")
    finally:
        source.close()
    assert rec["host"] == "pod-7" and rec["host_syslog"] == "taken" and rec["host_syslog2"] == "web1"
    assert rec["level"] == "info" and rec["level_syslog"] == "ERROR"
    assert rec["service"] == "shop" and "service_syslog" not in rec
    assert rec["peer"] == "10.0.0.9" and rec["msg"] == "paid"
