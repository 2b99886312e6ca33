"""The decoder a real server runs: said in /metrics, and its worker processes get the server's
choice of pattern ids whichever path (compiled or Python) decodes."""

from __future__ import annotations

import httpx
import orjson
from tests.conftest import ServerProcess

from logharbor.server.ingest import decoder


def test_a_large_body_decoded_in_a_worker_follows_no_patterns(server_factory) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--no-patterns", "--ingest-workers", "1")
    lines = [orjson.dumps({"service": "w", "message": f"tick {i} " + "x" * 120}) for i in range(800)]
    body = b"\n".join(lines)
    assert len(body) > 64 * 1024  # over native ingest's inline limit: decoded in the worker
    answer = httpx.post(server.url + "/api/v1/logs", content=body, timeout=60,
                        headers={"content-type": "application/x-ndjson", **server.headers})
    assert answer.status_code == 200 and answer.json() == {"accepted": 800, "rejected": []}
    assert server.wait_rows(800) == 800
    rows = server.query("service:w")["rows"]  # a page of them
    assert rows and all("pattern_id" not in r for r in rows)
    metrics = httpx.get(server.url + "/metrics", headers=server.headers, timeout=30).text
    assert f'logharbor_ingest_decoder{{path="{decoder.PATH}",reason="{decoder.REASON}"}} 1.0' in metrics
