"""rsyslog's omelasticsearch and syslog-ng's ``syslog()``, ``http()`` and ``elasticsearch-http()``
(its stock template) against a real server. Each daemon receives RFC 5424 messages over TCP with
the sender's own times (microseconds, a +05:30 offset) and forwards them; every message must
arrive once with that instant, its level, message, service (APP-NAME) and host, and the daemon
must report no error (rsyslog's ``errorfile`` stays empty, neither logs a failure).

rsyslog is Debian's (``rsyslog-elasticsearch``); syslog-ng is Debian's 3.38 unpacked into
``.peers/syslog-ng`` by ``scripts/install.sh --test`` (its package conflicts with rsyslog's)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ROOT, ServerProcess, free_port
from tests.rsyslog import RSYSLOGD

from .conftest import arrived, needs, utc

OMELASTICSEARCH = Path("/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so")
SYSLOG_NG = ROOT / ".peers" / "syslog-ng"
COUNT = 8
#: (RFC 5424 severity, level logharbor stores)
SEVERITIES = [(3, "ERROR"), (4, "WARN"), (6, "INFO"), (7, "DEBUG"), (2, "FATAL"), (5, "INFO")]
KOLKATA = dt.timezone(dt.timedelta(hours=5, minutes=30))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """This module's server also listens for syslog over TCP (syslog-ng's ``syslog()``)."""
    port = free_port()
    proc = ServerProcess(tmp_path_factory.mktemp("daemons") / "data", "--batch-max-age", "0.2",
                         "--syslog-tcp", f"127.0.0.1:{port}")
    proc.syslog_port = port  # type: ignore[attr-defined]
    proc.start()
    yield proc
    proc.stop()


def messages(app: str, token: str) -> list[dict[str, Any]]:
    """What each daemon is sent: RFC 5424 lines with their own times, and the record expected."""
    base = dt.datetime.now(KOLKATA).replace(microsecond=0) - dt.timedelta(minutes=5)
    out = []
    for i in range(COUNT):
        severity, level = SEVERITIES[i % len(SEVERITIES)]
        stamp = base + dt.timedelta(seconds=i, microseconds=123_456 + i)
        text = f"{app} {token} message {i}"
        line = (f"<{16 * 8 + severity}>1 {stamp.isoformat()} shop-host-{i % 2} {app} 4242 - - {text}")
        out.append({"line": line, "message": text, "level": level, "timestamp": utc(stamp),
                    "host": f"shop-host-{i % 2}"})
    return out


def send(port: int, lines: list[str]) -> None:
    """RFC 6587 octet-counted frames over one TCP connection (what syslog daemons send each other)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with conn:
        for line in lines:
            data = line.encode()
            conn.sendall(f"{len(data)} ".encode() + data)


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the daemon did not listen")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def check(rows: list[dict[str, Any]], sent: list[dict[str, Any]], service: str) -> None:
    by = {}
    for row in rows:
        assert row["message"] not in by, f"stored twice: {row['message']}"
        by[row["message"]] = row
    assert set(by) == {want["message"] for want in sent}
    for want in sent:
        row = by[want["message"]]
        assert row["timestamp"] == want["timestamp"], (want, row)
        assert row["level"] == want["level"], (want, row)
        assert row["service"] == service and row["host"] == want["host"], row


FAILURE_WORDS = ("error", "fail", "suspended", "refused")


def _failures(log: Path) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines()
            if any(word in line.lower() for word in FAILURE_WORDS)]


def test_rsyslog_omelasticsearch(server: ServerProcess, tmp_path: Path) -> None:
    """rsyslog 8.2302 ``omelasticsearch`` in bulk mode with rsyslog's documented JSON template
    (``@timestamp`` from ``timereported`` in RFC 3339, ``severity``, ``host``, ``message``),
    ``programname`` as ``service``, basic auth with the writer key, ``errorfile`` set."""
    needs(Path(RSYSLOGD), "rsyslog")
    needs(OMELASTICSEARCH, "rsyslog-elasticsearch")
    token = uuid.uuid4().hex[:10]
    port = free_port()
    errorfile = tmp_path / "es-errors.json"
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{tmp_path}")
module(load="imtcp")
module(load="omelasticsearch")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="shop-json" type="list" option.json="on") {{
  constant(value="{{\\"@timestamp\\":\\"") property(name="timereported" dateFormat="rfc3339")
  constant(value="\\",\\"host\\":\\"") property(name="hostname")
  constant(value="\\",\\"severity\\":\\"") property(name="syslogseverity-text")
  constant(value="\\",\\"facility\\":\\"") property(name="syslogfacility-text")
  constant(value="\\",\\"service\\":\\"") property(name="programname")
  constant(value="\\",\\"message\\":\\"") property(name="msg")
  constant(value="\\"}}")
}}
action(type="omelasticsearch" server="127.0.0.1" serverport="{server.port}" searchIndex="rsyslog-shop"
       template="shop-json" bulkmode="on" esVersion.major="8" uid="logharbor" pwd="{server.api_key}"
       errorfile="{errorfile}")
""")
    log = tmp_path / "rsyslog.log"
    # the sender's zone is +05:30, rsyslog's own is Berlin: the instant must survive both
    env = dict(os.environ, TZ="Europe/Berlin")
    with open(log, "wb") as out:
        proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(tmp_path / "pid")],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_listening(port, proc, log)
        sent = messages("rsyslog-shop", token)
        send(port, [m["line"] for m in sent])
        rows = arrived(server, f"service:rsyslog-shop AND {token}", COUNT)
    finally:
        stop(proc)
    check(rows, sent, "rsyslog-shop")
    assert all(row["index"] == "rsyslog-shop" and row["facility"] == "local0" for row in rows)
    assert not errorfile.exists() or errorfile.read_text() == "", errorfile.read_text()
    assert _failures(log) == []


def _syslog_ng(tmp_path: Path, conf_text: str) -> tuple[subprocess.Popen[bytes], Path]:
    conf = tmp_path / "syslog-ng.conf"
    conf.write_text(conf_text)
    log = tmp_path / "syslog-ng.log"
    env = dict(os.environ, LD_LIBRARY_PATH=str(SYSLOG_NG / "usr/lib/syslog-ng"), TZ="Europe/Berlin")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(SYSLOG_NG / "usr/sbin/syslog-ng"), "-F", "-e", "--no-caps", "-f", str(conf),
             f"--module-path={SYSLOG_NG / 'usr/lib/syslog-ng/3.38'}", "-R", str(tmp_path / "persist"),
             "-p", str(tmp_path / "pid"), "-c", str(tmp_path / "ctl")],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    return proc, log


@pytest.fixture(scope="module")
def syslog_ng(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory,
              ) -> Iterator[tuple[dict[str, list[dict[str, Any]]], str, Path]]:
    """syslog-ng 3.38 with three destinations, each fed by its own source: ``syslog()`` over TCP
    to the syslog listener, ``http()`` posting ``format-json`` lines to native ingest, and the
    stock ``elasticsearch-http()`` (its own template: ``@timestamp`` plus the rfc5424 macros in
    upper case) to ``_bulk``. ``frac-digits(6)`` keeps the microseconds. Yields what each source
    was sent, the run's token and syslog-ng's log; runs until the module's tests are done."""
    needs(SYSLOG_NG / "usr/sbin/syslog-ng", "syslog-ng")
    tmp_path = tmp_path_factory.mktemp("syslog-ng")
    token = uuid.uuid4().hex[:10]
    ports = [free_port() for _ in range(3)]
    scl = SYSLOG_NG / "usr/share/syslog-ng/include/scl/elasticsearch/elastic-http.conf"
    proc, log = _syslog_ng(tmp_path, f"""@version: 3.38
@include "{scl}"
options {{ frac-digits(6); keep-hostname(yes); stats-freq(0); }};
source s_syslog {{ syslog(ip("127.0.0.1") port({ports[0]}) transport("tcp")); }};
source s_http {{ syslog(ip("127.0.0.1") port({ports[1]}) transport("tcp")); }};
source s_es {{ syslog(ip("127.0.0.1") port({ports[2]}) transport("tcp")); }};
destination d_syslog {{ syslog("127.0.0.1" transport("tcp") port({server.syslog_port})); }};
destination d_http {{
  http(url("{server.url}/api/v1/logs") method("POST") user("logharbor") password("{server.api_key}")
       headers("Content-Type: application/x-ndjson") batch-lines(4) batch-timeout(200)
       body-suffix("\\n")
       body('$(format-json timestamp=${{ISODATE}} level=${{LEVEL}} service=${{PROGRAM}} host=${{HOST}} message=${{MESSAGE}} pid=int(${{PID}}))'));
}};
destination d_es {{
  elasticsearch-http(url("{server.url}/_bulk") index("syslog-ng") type("") user("logharbor")
                     password("{server.api_key}") batch-lines(4) batch-timeout(200));
}};
log {{ source(s_syslog); destination(d_syslog); }};
log {{ source(s_http); destination(d_http); }};
log {{ source(s_es); destination(d_es); }};
""")
    try:
        for port in ports:
            wait_listening(port, proc, log)
        sent = {app: messages(app, token) for app in ("sng-syslog", "sng-http", "sng-es")}
        for port, app in zip(ports, sent, strict=True):
            send(port, [m["line"] for m in sent[app]])
        yield sent, token, log
    finally:
        stop(proc)


def _delivered(server: ServerProcess, syslog_ng: Any, app: str) -> list[dict[str, Any]]:
    sent, token, log = syslog_ng
    rows = arrived(server, f"service:{app} AND {token}", COUNT)
    check(rows, sent[app], app)
    assert _failures(log) == [], log.read_text(errors="replace")[-3000:]
    return rows


def test_syslog_ng_syslog(server: ServerProcess, syslog_ng: Any) -> None:
    """``syslog("host" transport("tcp") port(…))``: RFC 5424, octet counting."""
    _delivered(server, syslog_ng, "sng-syslog")


def test_syslog_ng_http(server: ServerProcess, syslog_ng: Any) -> None:
    """``http()`` with a ``format-json`` body to native ingest."""
    rows = _delivered(server, syslog_ng, "sng-http")
    assert all(row["pid"] == 4242 for row in rows)


def test_syslog_ng_elasticsearch_http(server: ServerProcess, syslog_ng: Any) -> None:
    """The stock ``elasticsearch-http()``: its upper-case keys are read by the syslog-ng logger
    dialect (#22 item 2, ``logharbor.dialects``; record.md#logger-dialects)."""
    rows = _delivered(server, syslog_ng, "sng-es")
    assert all(row["index"] == "syslog-ng" for row in rows)
