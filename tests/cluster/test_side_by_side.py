"""Two logharbor servers side by side on one ClickHouse (the HTTP double) and one PostgreSQL:
either takes ingest into its own WAL, either answers any query, and a live tail on one sees what
the other ingested."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

from logharbor.sealing import generate_key_file

from .conftest import Double

pytestmark = pytest.mark.slow


@pytest.fixture
def pair(tmp_path, chdouble: Double, pg_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Servers A and B on one store database and one metadata database (fresh for the test)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(pg_url)
    with engine.begin() as conn:  # a fresh metadata database per test
        conn.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    store = chdouble.url(f"pair_{tmp_path.name[-12:].replace('-', '_')}")
    meta = pg_url.replace("postgresql+psycopg://", "postgresql://")
    secrets = tmp_path / "secrets.key"  # one channel-secrets key for the servers sharing the metadata
    generate_key_file(secrets)
    args = ("--store", store, "--meta", meta, "--batch-max-age", "0.2", "--ingest-workers", "0",
            "--secrets-key-file", str(secrets))
    a = ServerProcess(tmp_path / "a", *args).start()
    b = ServerProcess(tmp_path / "b", *args)
    try:
        b.start()
        # one admin key, made by the first server, is valid on both (keys live in PostgreSQL)
        b.api_key, b.headers = a.api_key, a.headers
        yield a, b
    finally:
        b.stop()
        a.stop()


def wait_query(server: ServerProcess, q: str, n: int, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = server.query(q, since="1h", limit=1000)["rows"]
        if len(rows) >= n:
            return rows
        time.sleep(0.2)
    return rows


def test_either_server_ingests_and_either_answers(pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = pair
    assert not (b.data_dir / "admin.key").exists(), "the second server must find the shared admin key"
    a.ingest([{"service": "checkout", "message": f"from a {i}", "level": "ERROR"} for i in range(5)], wait=False)
    b.ingest([{"service": "search", "message": f"from b {i}", "level": "INFO"} for i in range(7)], wait=False)
    for server in (a, b):
        assert len(wait_query(server, "service:checkout", 5)) == 5
        assert len(wait_query(server, "service:search", 7)) == 7
        stats = server.query("* | stats count() as n by service | sort service")["rows"]
        assert [(r["service"], int(r["n"])) for r in stats] == [("checkout", 5), ("search", 7)]
    # each server has its own WAL: their segment files are apart
    assert (a.data_dir / "wal").is_dir() and (b.data_dir / "wal").is_dir()
    # a key made through B works on A (the metadata database is shared)
    reader = b.create_key("reader")
    r = httpx.post(a.url + "/api/v1/query", json={"q": "*", "since": "1h"},
                   headers={"authorization": f"Bearer {reader}"}, timeout=30)
    assert r.status_code == 200 and len(r.json()["rows"]) == 12
    tail_on_one_server_sees_what_the_other_ingested(a, b)


def tail_on_one_server_sees_what_the_other_ingested(a: ServerProcess, b: ServerProcess) -> None:
    """(Part of the test above: two server starts are the slow part, so they are shared.)"""
    got: list[dict] = []
    subscribed = threading.Event()

    def tail() -> None:
        with httpx.stream("GET", a.url + "/api/v1/tail", params={"q": "service:payments"},
                          headers={**a.headers, "accept": "application/x-ndjson"}, timeout=60) as response:
            for line in response.iter_lines():
                if not line.strip():
                    continue  # the NDJSON keepalive is a blank line
                item = orjson.loads(line)
                if "subscribed" in item:
                    subscribed.set()
                elif "message" in item:
                    got.append(item)
                    if len(got) >= 6:
                        return

    thread = threading.Thread(target=tail, daemon=True)
    thread.start()
    assert subscribed.wait(30)
    b.ingest([{"service": "payments", "message": f"remote {i}"} for i in range(3)], wait=False)
    b.ingest([{"service": "other", "message": "not for this tail"}], wait=False)
    a.ingest([{"service": "payments", "message": f"local {i}"} for i in range(3)], wait=False)
    thread.join(45)
    messages = sorted(item["message"] for item in got)
    assert messages == ["local 0", "local 1", "local 2", "remote 0", "remote 1", "remote 2"]
