"""The sidecar shape, ``app | logharbor agent``, with a real shell pipe, a real agent process and a
real server: at the end of its input the agent delivers everything and exits by itself, 0 when
every record arrived, 1 (saying how many did not, and why) when they could not be delivered."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.agent.conftest import ROOT, free_port, wait_for, write_config
from tests.conftest import ServerProcess

APP = "import sys\nfor i in range({n}):\n    sys.stdout.write('{{\"seq\": %d, \"msg\": \"from the app\"}}\\n' % i)\n" \
      "sys.stdout.write('{{\"seq\": {n}, \"msg\": \"last line, no newline\"}}')\n"


def pipeline(tmp: Path, url: str, n: int, **sink: Any) -> subprocess.Popen[bytes]:
    """``python app.py | python -m logharbor.agent -c agent.yaml`` through /bin/sh."""
    app = tmp / "app.py"
    app.write_text(APP.format(n=n))
    cfg = write_config(tmp / "agent.yaml", {
        "data_dir": str(tmp / "agent-data"), "metrics": {"port": 0},
        "sources": {"app": {"type": "stdin", "parser": "json", "eof_timeout_secs": sink.pop("eof", 60)}},
        "sinks": {"srv": {"type": "logharbor", "url": url, "retry_initial_secs": 0.1,
                          "retry_max_secs": 0.5, "batch": {"timeout_secs": 0.1, "max_events": 500}, **sink}}})
    cmd = f"{sys.executable} {app} | {sys.executable} -m logharbor.agent -c {cfg}"
    return subprocess.Popen(["/bin/sh", "-c", cmd], cwd=ROOT, stderr=open(tmp / "agent.log", "wb"))


def stored(server: ServerProcess, n: int) -> collections.Counter[int]:
    rows = server.query(f"seq:[0 TO {n}] | fields seq", limit=10 * n, since="now-1d")["rows"]
    return collections.Counter(int(r["seq"]) for r in rows)


@pytest.mark.slow
def test_end_of_input_delivers_everything_and_exits_0(tmp_path: Path, server_factory: Any) -> None:
    srv = server_factory("--batch-max-age", "0.2")
    n = 3000
    proc = pipeline(tmp_path, srv.url, n, api_key=srv.create_key("writer"))
    assert proc.wait(120) == 0, (tmp_path / "agent.log").read_text()[-3000:]
    # exit 0 means acknowledged by the server (fsync'd in its WAL); the store gets them shortly
    assert srv.wait_rows(n + 1) >= n + 1
    counts = stored(srv, n)
    assert sorted(counts) == list(range(n + 1)) and set(counts.values()) == {1}
    assert "every record delivered" in (tmp_path / "agent.log").read_text()


@pytest.mark.slow
@pytest.mark.e2e
def test_a_server_that_comes_back_before_the_deadline_gets_everything(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "srv", "--batch-max-age", "0.2")
    srv.data_dir.mkdir()
    n = 1000
    try:
        key = srv.start().create_key("writer")
        srv.stop()  # down when the app writes and its input ends
        proc = pipeline(tmp_path, srv.url, n, api_key=key)
        log = tmp_path / "agent.log"
        assert wait_for(lambda: "end of input" in log.read_text(), 60)
        assert wait_for(lambda: "delivery failed, retrying" in log.read_text(), 30)
        assert proc.poll() is None  # waiting for the server, not exiting
        srv.start()
        assert proc.wait(120) == 0, log.read_text()[-3000:]
        assert srv.wait_rows(n + 1) >= n + 1
        assert sorted(stored(srv, n)) == list(range(n + 1))
    finally:
        srv.stop()


@pytest.mark.e2e
def test_undeliverable_input_exits_1_and_says_how_many(tmp_path: Path) -> None:
    proc = pipeline(tmp_path, f"http://127.0.0.1:{free_port()}", 200, eof=1.5)
    assert proc.wait(60) == 1
    text = (tmp_path / "agent.log").read_text()
    assert "not every record was delivered" in text and '"records":201' in text
