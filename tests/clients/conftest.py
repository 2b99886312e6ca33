"""Real clients (Node loggers, Python Loki handlers, rsyslog, syslog-ng) against one real server
per test module; each test checks that every record arrived once, as the client meant it."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import ServerProcess

HERE = Path(__file__).parent
ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


def needs(path: Path, what: str) -> None:
    """Skip (fail in CI, where scripts/install.sh --test has run) when a peer is not installed."""
    if not path.exists():
        message = f"{what} is installed by scripts/install.sh --test ({path} is missing)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("clients") / "data", "--batch-max-age", "0.2")
    proc.start()
    yield proc
    proc.stop()


def arrived(server: ServerProcess, q: str, expected: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every record matching ``q`` once ``expected`` have arrived (or the time is up), then after a
    refresh (everything acknowledged is stored): a duplicate shows as one row too many."""
    deadline = time.monotonic() + timeout
    while True:
        rows = server.query(q, limit=10_000, **ALL_TIME)["rows"]
        if len(rows) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    httpx.post(server.url + "/_refresh", headers=server.headers, timeout=60).raise_for_status()
    return server.query(q, limit=10_000, **ALL_TIME)["rows"]


def utc(stamp: dt.datetime) -> str:
    """A time as logharbor returns it: UTC, 6 fraction digits."""
    return stamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ms(ms: int) -> str:
    return utc(dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(microsecond=(ms % 1000) * 1000))


def from_ns(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos // 1000:06d}Z" if nanos % 1000 == 0 else f"{base}.{nanos:09d}Z"
