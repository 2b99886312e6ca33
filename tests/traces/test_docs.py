"""docs/traces-and-tail.md stays true: every example on the page runs against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.conftest import ROOT, ServerProcess
from tests.tail.clients import post

DOC = (ROOT / "docs" / "traces-and-tail.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)


RECORDS = [orjson.loads(line) for line in blocks("ndjson")[0].splitlines() if line.strip()]
COMMANDS = [line for b in blocks("bash") for line in b.splitlines() if line and not line.startswith("export")]


def command(start: str) -> str:
    (found,) = [c for c in COMMANDS if c.startswith(start)]
    return found


def env_for(server: ServerProcess) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return dict(os.environ, LOGHARBOR_SERVER=server.url, LOGHARBOR_API_KEY=server.api_key, COLUMNS="120",
                PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server holding the page's four records, once."""
    server = ServerProcess(tmp_path_factory.mktemp("docs-trace") / "data", "--batch-max-age", "0.2").start()
    post(server, RECORDS)
    assert server.wait_rows(len(RECORDS)) == len(RECORDS)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tailing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("docs-tail") / "data", "--batch-max-age", "0.2").start()
    yield server
    server.stop()


def test_the_page_has_its_examples() -> None:
    assert len(RECORDS) == 4
    assert len(COMMANDS) == 6
    assert len(blocks("python")) == 1


def test_the_curl_trace_example_answers_the_documented_timings(traced: ServerProcess) -> None:
    out = subprocess.run(["bash", "-c", command("curl -s -H")], capture_output=True, text=True, timeout=60,
                         env=env_for(traced))
    assert out.returncode == 0, out.stderr
    answer = orjson.loads(out.stdout)
    assert answer["timings"] == orjson.loads(blocks("json")[0])
    oldest_first = sorted(RECORDS, key=lambda r: r["timestamp"])
    assert [r["message"] for r in answer["records"]] == [r["message"] for r in oldest_first]
    assert answer["layers"] == ["alb", "app", "nginx"]
    assert answer["stats"]["queries"] == 2  # the Root's own time is right, so the hinted window holds it


def test_the_clock_offsets_example_answers_current_and_history(traced: ServerProcess) -> None:
    with traced.client() as client:  # what the leader's job does every minute
        assert client.post("/api/v1/clock/estimate").status_code == 200
    out = subprocess.run(["bash", "-c", command('curl -s "$LOGHARBOR_SERVER/api/v1/clock')], capture_output=True,
                         text=True, timeout=60, env=env_for(traced))
    assert out.returncode == 0, out.stderr
    answer = orjson.loads(out.stdout)
    # the page's request is from 2026-11-01, long before the last 15 minutes: nothing to estimate from
    assert answer == {"window_s": 900, "reference_layer": "alb", "current": [], "history": [],
                      "history_truncated": False}


def test_the_trace_command_example_draws_the_documented_waterfall(traced: ServerProcess) -> None:
    out = subprocess.run(["bash", "-c", command("logharbor trace ")], capture_output=True, text=True,
                         timeout=60, env=env_for(traced))
    assert out.returncode == 0, out.stderr
    shown = next(b for b in blocks("text") if "waterfall" in b or "alb → target" in b)
    for line in shown.splitlines():
        if "│" in line:  # a waterfall row: its label, start and duration as documented
            label, start, duration, _ = (part.strip() for part in line.split("│"))
            assert re.search(rf"{re.escape(label)}\s+│\s+{re.escape(start)}\s+│\s+{re.escape(duration)}",
                             out.stdout), line
    assert "4 records from alb, app, nginx" in out.stdout
    assert "request ids: a1b2c3d4e5f60718293a4b5c6d7e8f90" in out.stdout


def follow(cmd: list[str], server: ServerProcess, ready: str, expect: int) -> list[str]:
    """Start a follower, wait for its ready line, post the page's records, read ``expect`` lines."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env_for(server), cwd=ROOT)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if ready in line:
                break
        post(server, RECORDS)
        lines: list[str] = []
        for line in proc.stdout:
            if line.strip() and not line.startswith((":", "event:")):
                lines.append(line.rstrip("\n"))
            if len(lines) == expect:
                return lines
        raise AssertionError(f"the stream ended early: {lines}")
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_the_curl_tail_example_streams_the_documented_events(tailing: ServerProcess) -> None:
    lines = follow(["bash", "-c", "exec " + command("curl -sN")], tailing, "event: subscribed", 3)
    assert lines[0] == 'data: {"q":"service:checkout AND level:ERROR"}'
    got = [orjson.loads(line[len("data: "):]) for line in lines[1:]]
    assert [r["message"] for r in got] == ["payment declined", "POST /api/orders 502"]
    documented = [orjson.loads(line[6:].replace('"…"', '""')) for line in next(
        b for b in blocks("text") if "event: subscribed" in b).splitlines() if line.startswith('data: {"time')]
    for mine, doc in zip(got, documented, strict=True):
        assert {k: v for k, v in mine.items() if k != "observed_timestamp"} == \
            {k: v for k, v in doc.items() if k != "observed_timestamp"}


def test_the_python_websocket_example_prints_matching_records(tailing: ServerProcess, tmp_path: Path) -> None:
    script = tmp_path / "ws_example.py"
    script.write_text(blocks("python")[0])
    lines = follow([sys.executable, str(script)], tailing, "subscribed", 4)
    # in the order they were written, which is the page's order
    assert lines == ["ERROR shop-alb POST https://shop.example.com:443/api/orders HTTP/1.1",
                     "ERROR nginx POST /api/orders HTTP/1.1",
                     "ERROR checkout payment declined", "ERROR checkout POST /api/orders 502"]


@pytest.mark.e2e
def test_the_tail_command_example_prints_the_documented_lines(tailing: ServerProcess) -> None:
    lines = follow(["bash", "-c", "exec " + command("logharbor tail ")], tailing, "tailing", 2)
    documented = [line for line in next(b for b in blocks("text") if "dropped: this" in b).splitlines()
                  if "ERROR" in line]
    assert lines == documented
