"""Terminal escapes in log text: the real CLI against a real server prints them visibly.

The attack: whoever makes an application log a line chooses its bytes, and a person reading
logs with ``logharbor query``/``tail``/``trace`` runs them in a terminal. ESC sequences (clear
screen, cursor-up + erase line, OSC 0 title, OSC 8 links), C1 CSI, carriage returns and rich
markup must come out as visible text, not as terminal commands; ``--raw`` keeps the bytes;
json/ndjson are data and stay exact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
from tests.conftest import ROOT, ServerProcess

pytestmark = pytest.mark.slow  # the CLI through real terminals

TRACE = "5759e988bd862e3fe1be46a994272793"
#: what an attacker writes into a log message: clear screen, go up and erase the line above,
#: set the window title, a hidden link, a C1 CSI, a carriage return over the line, rich markup
EVIL = ("paid\x1b[2J\x1b[1A\x1b[2K\x1b]0;owned\x07\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
        "\u009b31m\rFAKE [link=http://evil.example/]x[/link] \u202eesrever")
#: control characters a terminal obeys; none may reach it from log text unless --raw
CONTROLS = ("\x1b", "\x07", "\x9b", "\r", "\u202e")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("terminal") / "data", "--batch-max-age", "0.2").start()
    proc.ingest([{"service": "checkout\x1b[31m", "level": "ERROR", "message": EVIL, "trace_id": TRACE,
                  "order_id": "o-\x1b[2J"}])
    yield proc
    proc.stop()


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGHARBOR_", "FORCE_COLOR"))}
    env.update(LOGHARBOR_API_KEY=server.api_key, LOGHARBOR_SERVER=server.url, COLUMNS="400")
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def assert_escaped(out: str) -> None:
    leaked = [c for c in CONTROLS if c in out]
    assert not leaked, f"control characters reached the terminal: {leaked!r} in {out!r}"
    assert "\\x1b[2J" in out and "\\x07" in out and "\\x9b" in out and "\\x0d" in out
    assert "[link=http://evil.example/]x[/link]" in out  # shown as text, not made a link


@pytest.mark.parametrize("output", ["table", "csv"])
def test_query_prints_control_characters_visibly(server: ServerProcess, output: str) -> None:
    result = cli(server, "query", "order_id:*", "-o", output, "--since", "1d")
    assert result.returncode == 0, result.stderr
    assert_escaped(result.stdout)
    assert "checkout\\x1b[31m" in result.stdout


def test_query_block_layout_and_stats_columns_are_escaped_too(server: ServerProcess) -> None:
    narrow = cli(server, "query", "order_id:* | fields service, message, order_id", "--since", "1d")
    assert narrow.returncode == 0, narrow.stderr
    assert "\x1b" not in narrow.stdout and "o-\\x1b[2J" in narrow.stdout
    stats = cli(server, "query", "* | stats count() by service", "--since", "1d")
    assert "\x1b" not in stats.stdout and "checkout\\x1b[31m" in stats.stdout


def test_raw_prints_the_stored_bytes_and_json_is_unchanged(server: ServerProcess) -> None:
    raw = cli(server, "query", "order_id:*", "-o", "csv", "--raw", "--since", "1d")
    assert raw.returncode == 0, raw.stderr
    assert "\x1b[2J" in raw.stdout
    as_json = cli(server, "query", "order_id:*", "-o", "json", "--since", "1d")
    assert orjson.loads(as_json.stdout)["rows"][0]["message"] == EVIL
    ndjson = cli(server, "query", "order_id:*", "-o", "ndjson", "--since", "1d")
    assert orjson.loads(ndjson.stdout.splitlines()[0])["message"] == EVIL


def test_trace_waterfall_prints_control_characters_visibly(server: ServerProcess) -> None:
    result = cli(server, "trace", TRACE, "--since", "1d")
    assert result.returncode == 0, result.stderr
    assert_escaped(result.stdout)
    assert orjson.loads(cli(server, "trace", TRACE, "--since", "1d", "-o", "json").stdout)["records"][0][
        "message"] == EVIL


def test_tail_prints_control_characters_visibly_and_indents_continuation_lines(server: ServerProcess) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGHARBOR_", "FORCE_COLOR"))}
    env.update(LOGHARBOR_API_KEY=server.api_key, LOGHARBOR_SERVER=server.url)
    proc = subprocess.Popen([sys.executable, "-m", "logharbor.cli.main", "tail", "service:tailed"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT, text=True)
    lines: list[str] = []
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "tailing" in proc.stderr.readline()
        server.ingest([{"service": "tailed", "message": EVIL + "\n12:00:00.000 INFO  checkout forged line"}],
                      wait=False)
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout.readline() for _ in range(2)),  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while reader.is_alive() and time.monotonic() < deadline:
            reader.join(0.1)
        assert len(lines) == 2, lines
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out = "".join(lines)
    assert_escaped(out)
    assert not lines[1].startswith("12:00:00.000"), "a second line of a message passed for a record"
    assert lines[1].strip().startswith("12:00:00.000 INFO  checkout forged line")
