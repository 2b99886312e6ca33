"""Helpers for protocol tests: records read back through the query API of a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import ServerProcess

ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


def records(server: ServerProcess, q: str, expected: int, *, limit: int = 10_000,
            timeout: float = 60.0) -> list[dict[str, Any]]:
    """The records matching ``q``, once there are at least ``expected`` of them (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = server.query(q, limit=limit, **ALL_TIME)["rows"]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module for the HTTP protocols (each test uses its own services);
    tests that count every row, or need listener flags, start their own with ``server_factory``."""
    proc = ServerProcess(tmp_path_factory.mktemp("ingest") / "data", "--batch-max-age", "0.2")
    proc.start()
    yield proc
    proc.stop()


def by_message(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["message"]: row for row in rows}
