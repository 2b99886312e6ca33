"""Helpers for protocol tests: records read back through the query API of a real server."""

from __future__ import annotations

from typing import Any

from tests.conftest import ServerProcess

ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


def records(server: ServerProcess, q: str, expected: int, *, limit: int = 10_000) -> list[dict[str, Any]]:
    """The records matching ``q`` once the store has at least ``expected`` rows in all."""
    server.wait_rows(expected)
    return server.query(q, limit=limit, **ALL_TIME)["rows"]


def by_message(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["message"]: row for row in rows}
