"""Real Go loggers (#22 item 2): zap, zerolog and logrus, from Debian's packages (installed by
scripts/install.sh --test, built here in GOPATH mode by Go 1.19), write their JSON lines as their
documentation configures them (``go/main.go``); each line is folded by ``normalize`` and the
agent's json parser alike (``tests/record/test_dialects.agree``) and stored the same by a real
server: time (zap's float seconds, zerolog's epoch ms, logrus' RFC 3339 at +05:30), level
(``warning``, ``trace``), message, errors and stacks, attributes."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess
from tests.record.test_dialects import agree

from .conftest import HERE, arrived, needs

GOPATH = Path("/usr/share/gocode")


@pytest.fixture(scope="module")
def go_lines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, list[str]], int, int]]:
    """``{logger: [line, …]}`` as the Go program wrote them, and the ns window it ran in."""
    go = shutil.which("go") or "/usr/bin/go"
    needs(Path(go), "Go (golang-go)")
    for package in ("go.uber.org/zap", "github.com/rs/zerolog", "github.com/sirupsen/logrus"):
        needs(GOPATH / "src" / package, f"Debian's {package}")
    tmp = tmp_path_factory.mktemp("go")
    env = dict(os.environ, GO111MODULE="off", GOPATH=str(GOPATH), GOCACHE=str(tmp / "cache"), GOFLAGS="",
               TZ="Asia/Kolkata")
    binary = tmp / "gologgers"
    subprocess.run([go, "build", "-o", str(binary), str(HERE / "go" / "main.go")], env=env, check=True,
                   timeout=600, capture_output=True)
    before = time.time_ns() - 10**9  # logrus writes whole seconds
    out = subprocess.run([str(binary)], env=env, check=True, timeout=60, capture_output=True, text=True)
    after = time.time_ns()
    assert out.stderr == ""
    lines: dict[str, list[str]] = {}
    for row in out.stdout.splitlines():
        name, line = row.split("\t", 1)
        lines.setdefault(name, []).append(line)
    yield lines, before, after


def _ns(stamp: str) -> int:
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    base = dt.datetime.fromisoformat(seconds).replace(tzinfo=dt.UTC)
    return int(base.timestamp()) * 10**9 + int((fraction or "0").ljust(9, "0"))


def _check(lines: list[str], levels: list[str], messages: list[str], window: tuple[int, int]) -> list[dict[str, Any]]:
    folded = [agree(line) for line in lines]
    assert [r["level"] for r in folded] == levels
    assert [r["message"] for r in folded] == messages
    assert all(window[0] <= _ns(r["timestamp"]) <= window[1] for r in folded), [r["timestamp"] for r in folded]
    return folded


def test_zap(go_lines: Any) -> None:
    lines, *window = go_lines
    got = _check(lines["zap"], ["INFO", "WARN", "ERROR", "DEBUG"],
                 ["zap started", "zap slow", "zap request failed", "zap debug detail"], tuple(window))
    for line, record in zip(lines["zap"], got, strict=True):  # the float seconds, to a double's precision
        assert abs(_ns(record["timestamp"]) - orjson.loads(line)["ts"] * 10**9) < 1000
    assert got[0]["attributes"] == {"caller": "go/main.go:41", "url": "http://example.com", "attempt": 3}
    assert got[1]["attributes"]["took"] == 1.5
    error = got[2]
    assert error["attributes"]["error"] == "connection refused" and error["request_id"] == "r-7"
    assert error["attributes"]["error.stack"].startswith("main.main\n\t") and "stacktrace" not in error["attributes"]


def test_zerolog(go_lines: Any) -> None:
    lines, *window = go_lines
    got = _check(lines["zerolog"], ["DEBUG", "WARN", "ERROR"],
                 ["zerolog hello", "zerolog queue high", "zerolog write failed"], tuple(window))
    for line, record in zip(lines["zerolog"], got, strict=True):  # epoch milliseconds, exact
        assert _ns(record["timestamp"]) == orjson.loads(line)["time"] * 10**6
    assert got[0]["attributes"] == {"user": "u-1"} and got[1]["attributes"] == {"queue": 12}
    assert got[2]["attributes"]["error"] == "disk gone"
    assert got[2]["attributes"]["stack"][0] == {"func": "main", "line": "54", "source": "main.go"}


def test_logrus(go_lines: Any) -> None:
    lines, *window = go_lines
    got = _check(lines["logrus"], ["INFO", "WARN", "ERROR", "TRACE"],
                 ["logrus a walrus appears", "logrus the group's number increased", "logrus query failed",
                  "logrus trace detail"], tuple(window))
    for line, record in zip(lines["logrus"], got, strict=True):  # +05:30 read as the offset it is
        sent = dt.datetime.fromisoformat(orjson.loads(line)["time"])
        assert sent.utcoffset() == dt.timedelta(hours=5, minutes=30)
        assert _ns(record["timestamp"]) == int(sent.timestamp()) * 10**9
    assert got[0]["attributes"] == {"animal": "walrus", "number": 122}
    assert got[2]["attributes"] == {"error": "no such table"}


def test_a_real_server_stores_each_line_once_as_folded(server: ServerProcess, go_lines: Any) -> None:
    lines, *_ = go_lines
    every = [line for name in ("zap", "zerolog", "logrus") for line in lines[name]]
    response = httpx.post(server.url + "/api/v1/logs", content="\n".join(every).encode(), timeout=60,
                          headers={**server.headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 200 and response.json()["accepted"] == len(every), response.text
    rows = arrived(server, "zap OR zerolog OR logrus", len(every))
    by_message = {row["message"]: row for row in rows}
    assert len(rows) == len(by_message) == len(every)
    for line in every:
        want = agree(line)
        row = by_message[want["message"]]
        assert (row["timestamp"], row["level"]) == (want["timestamp"], want["level"]), (row, want)
        for name, value in want.get("attributes", {}).items():
            assert row[name] == value, (name, row)
