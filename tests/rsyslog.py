"""Debian's rsyslogd as a test peer: the paths of its binary and TLS module, and a starter that runs
it in the foreground with a config of its own (the ``rsyslog`` fixture in tests/conftest.py)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OSSL", "RSYSLOGD", "rsyslog_starter"]

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
#: the OpenSSL network stream driver (Debian's rsyslog-openssl), for TLS forwarding
OSSL = Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so")


@contextmanager
def rsyslog_starter(tmp_path: Path) -> Iterator[Callable[[Path, str], subprocess.Popen[bytes]]]:
    """``start(source, actions)``: an rsyslogd reading one file (``imfile``, tagged ``shopapp``,
    severity error, facility local3) and running ``actions``; all are stopped at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(source: Path, actions: str) -> subprocess.Popen[bytes]:
        work = tmp_path / f"rsyslog{len(procs)}"
        work.mkdir()
        conf = work / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{work}" localHostname="rsyslog-test")
module(load="imfile" mode="polling" PollingInterval="1")
input(type="imfile" File="{source}" Tag="shopapp:" Severity="error" Facility="local3")
{actions}
""")
        proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "pid")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
