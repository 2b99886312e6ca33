"""One real server process holding the query tests' golden corpus, with recording rules.

The corpus is ingested through ``POST /api/v1/logs`` (the native protocol), so LogQL answers are
compared with the native language over exactly the same records.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess
from tests.query.corpus import records

NS = 1_000_000_000
#: the corpus spans 2026-11-01T12:00Z … 12:19Z (one record a minute)
T12 = 1_793_534_400  # 2026-11-01T12:00:00Z, record r01 (r20 is at 12:19)
START_NS = (T12 - 3600) * NS
END_NS = (T12 + 3600) * NS

#: the corpus lies at a fixed date, so the rules look back from a day after it: a window ending
#: ``now - DELAY`` (whole days) keeps the corpus inside ``30d`` whatever today's date is
DELAY = f"{max(0, int(time.time() - T12) // 86400 - 1)}d"

RULES = """
groups:
  - name: corpus
    interval: 10s
    labels: {team: core}      # group labels: on every series of the group's rules
    rules:
      - record: logharbor:records:count30d
        query: "*"
        window: 30d
        delay: {delay}
        group_by: [service]
  - name: quality
    rules:
      - record: logharbor:latency:p99_30d
        query: "* | stats p99(duration_ms) as p99 by service"
        value: p99
        window: 30d
        delay: {delay}
        interval: 10s
      - record: logharbor:app_errors:ratio30d
        query: "source:app"
        condition: ratio(level:ERROR)
        window: 30d
        delay: {delay}
        interval: 10s
""".replace("{delay}", DELAY)


@pytest.fixture(scope="session")
def loki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server, with the corpus stored and searchable."""
    data: Path = tmp_path_factory.mktemp("loki") / "data"
    data.mkdir(parents=True)
    (data / "recording-rules.yaml").write_text(RULES)
    server = ServerProcess(data, "--batch-max-age", "0.2").start()
    try:
        body = b"\n".join(orjson.dumps(r) for r in records())
        response = httpx.post(server.url + "/api/v1/logs", content=body, timeout=30,
                              headers={**server.headers, "content-type": "application/x-ndjson"})
        assert response.json()["accepted"] == len(records()), response.text
        assert server.wait_rows(len(records())) >= len(records())
        yield server
    finally:
        server.stop()


def get(server: ServerProcess, path: str, **params: Any) -> httpx.Response:
    """A GET with the admin key as basic-auth password, as Grafana sends it."""
    return httpx.get(server.url + path, params=params, auth=("grafana", server.api_key), timeout=30)


def query_range(server: ServerProcess, q: str, **params: Any) -> dict[str, Any]:
    """``/query_range`` over the corpus window; asserts success and returns ``data``."""
    params = {"query": q, "start": str(START_NS), "end": str(END_NS), "limit": "1000", **params}
    response = get(server, "/loki/api/v1/query_range", **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    return body["data"]


def native_rids(server: ServerProcess, q: str) -> set[str]:
    """The corpus ids the native language finds for ``q`` in the same window."""
    body = server.query(q, **{"from": "2026-11-01T11:00:00Z", "to": "2026-11-01T13:00:00Z", "limit": 1000})
    return {row["rid"] for row in body["rows"]}
