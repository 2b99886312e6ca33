"""A PostgreSQL metadata database that goes away under a running server: keys checked recently
keep working (ingest and queries go on), a key never seen gets a 503 with a JSON body (not a 401:
it may be valid), and everything is normal again once the database is back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import ServerProcess, free_port
from tests.postgres import Postgres

from logharbor.server.meta.keys import _CACHE_S


@pytest.mark.e2e
def test_recently_checked_keys_survive_a_metadata_outage(tmp_path: Path) -> None:
    pg = Postgres(free_port()).start()
    server = ServerProcess(tmp_path / "data", "--meta", pg.url.replace("postgresql+psycopg://", "postgresql://"),
                           "--batch-max-age", "0.2")
    try:
        server.start()
        writer = server.create_key("writer")
        reader = server.create_key("reader")
        never_used = server.create_key("reader")
        line = b'{"service":"outage","message":"before"}\n'

        def post(key: str, body: bytes) -> httpx.Response:
            return httpx.post(server.url + "/api/v1/logs", content=body, timeout=30,
                              headers={"Authorization": f"Bearer {key}", "content-type": "application/x-ndjson"})

        def query(key: str) -> httpx.Response:
            return httpx.post(server.url + "/api/v1/query", json={"q": "service:outage"}, timeout=30,
                              headers={"Authorization": f"Bearer {key}"})

        assert post(writer, line).status_code == 200
        assert query(reader).status_code == 200
        pg.stop("immediate")  # the database is gone, as in a crash or a failover
        time.sleep(_CACHE_S + 0.5)  # past the normal 5 s cache: each key check now needs the database

        during = post(writer, b'{"service":"outage","message":"during"}\n')
        assert during.status_code == 200, during.text
        assert query(reader).status_code == 200
        refused = query(never_used)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "metadata_unavailable" and refused.headers["Retry-After"]
        assert "unreachable" in server.log()

        pg.start()
        assert query(never_used).status_code == 200  # checked for real again
        assert server.wait_rows(2) == 2
    finally:
        server.stop()
        pg.close()
