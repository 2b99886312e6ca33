"""The query route and the CLI against the real ``logharbor server`` process (ingest → query)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

from .corpus import T1, records

WINDOW = {"from": "2026-11-01T12:00:00Z", "to": "2026-11-01T12:20:00Z"}


@pytest.fixture(scope="module")
def loaded(module_server: ServerProcess) -> ServerProcess:
    """The corpus stored once for the module: the tests only read it."""
    server = module_server
    body = b"\n".join(orjson.dumps(r) for r in records())
    response = httpx.post(server.url + "/api/v1/logs", content=body, timeout=30,
                          headers={"content-type": "application/x-ndjson", **server.headers})
    assert response.status_code == 200 and response.json()["accepted"] == 20, response.text
    assert server.wait_rows(20) == 20
    return server


def test_query_over_http(loaded: ServerProcess) -> None:
    with loaded.client() as client:
        records_answer = client.post("/api/v1/query", json={"q": f"trace_id:{T1}", **WINDOW}).json()
        assert [r["rid"] for r in records_answer["rows"]] == ["r01"]
        assert records_answer["rows"][0]["http"]["status"] == 502
        table = client.post("/api/v1/query",
                            json={"q": "level:ERROR | stats count() as n by service", **WINDOW}).json()
        assert table["rows"] == [{"service": "api", "n": 1}, {"service": "billing", "n": 1},
                                 {"service": "checkout", "n": 2}, {"service": "edge", "n": 1}]
        error = client.post("/api/v1/query", json={"q": "status:"})
        assert error.status_code == 400
        assert error.json()["error"] == {"code": "query_syntax", "position": 7,
                                         "message": "expected a value after 'status:' at 7"}
        with client.stream("POST", "/api/v1/query", json={"q": "*", "limit": 1000, **WINDOW},
                           headers={"accept": "application/x-ndjson"}) as stream:
            lines = [orjson.loads(line) for line in stream.iter_lines() if line]
        assert len(lines) == 20 and lines[0]["rid"] == "r20"


def test_cli_against_the_server(loaded: ServerProcess) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGHARBOR_")}
    env.update(LOGHARBOR_SERVER=loaded.url, LOGHARBOR_API_KEY=loaded.api_key, COLUMNS="200")
    cmd = [sys.executable, "-m", "logharbor.cli.main", "query", "* | top 2 service", "-o", "json",
           "--from", WINDOW["from"], "--to", WINDOW["to"]]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == [{"service": "checkout", "count": 4},
                                                 {"service": "api", "count": 3}]
    bad = subprocess.run([*cmd[:4], "(oops"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.splitlines()[0].startswith("logharbor query: query_syntax: expected ')'")
