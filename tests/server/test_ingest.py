"""Native ingest against a real server process: good lines kept beside bad ones, clear errors."""

from __future__ import annotations

import gzip

import httpx
import orjson
import zstandard
from tests.conftest import ServerProcess
from tests.server.store_probe import query_stopped_store

NDJSON = {"content-type": "application/x-ndjson"}


def post(server: ServerProcess, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(server.url + "/api/v1/logs", content=body,
                      headers={**NDJSON, **server.headers, **headers}, timeout=30)


def test_mixed_batch_keeps_every_good_line(server: ServerProcess) -> None:
    lines = [
        b'{"message":"first good","service":"checkout","level":"error"}',
        b"this is not json",
        b"[1,2,3]",
        b'{"message":"bad time","timestamp":"the day after tomorrow"}',
        b"",
        b'{"message":"second good","trace_id":"Root=1-5759e988-bd862e3fe1be46a994272793"}',
        b'{"message":"bad status","http":{"status":"teapot"}}',
        b'{"message":"third good","http":{"status":503,"path":"/api/orders"}}',
    ]
    response = post(server, b"\n".join(lines))
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 3
    assert [r["line"] for r in body["rejected"]] == [2, 3, 4, 7]
    reasons = {r["line"]: r["error"] for r in body["rejected"]}
    assert "invalid JSON" in reasons[2]
    assert "JSON object" in reasons[3]
    assert "timestamp" in reasons[4]
    assert "http.status" in reasons[7]
    assert server.wait_rows(3) == 3


def test_compressed_bodies(server: ServerProcess) -> None:
    body = b"\n".join(orjson.dumps({"message": f"m{i}"}) for i in range(100))
    assert post(server, gzip.compress(body), **{"content-encoding": "gzip"}).json()["accepted"] == 100
    zbody = zstandard.ZstdCompressor().compress(body)
    assert post(server, zbody, **{"content-encoding": "zstd"}).json()["accepted"] == 100
    assert server.wait_rows(200) == 200


def test_error_statuses_have_json_bodies(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--batch-max-age", "0.2")
    broken = gzip.compress(b'{"message":"x"}\n' * 1000)[:-20]
    cases = [
        (post(server, b"garbage", **{"content-encoding": "gzip"}), 400, "bad_encoding"),
        (post(server, broken, **{"content-encoding": "gzip"}), 400, "bad_encoding"),
        (post(server, b"x", **{"content-encoding": "br"}), 415, "unsupported_encoding"),
        (post(server, b"{}", **{"content-type": "image/png"}), 415, "unsupported_media_type"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]


def test_oversized_body_and_line(tmp_path, server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--max-body-mb", "1", "--max-line-kb", "4")
    big = b'{"message":"' + b"a" * (2 * 1024 * 1024) + b'"}'
    response = post(server, big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    bomb = zstandard.ZstdCompressor().compress(b'{"message":"x"}\n' * 200_000)  # 3 MB inflated
    response = post(server, bomb, **{"content-encoding": "zstd"})
    assert response.status_code == 413
    long_line = b'{"message":"' + b"b" * 8000 + b'"}'
    response = post(server, b'{"message":"ok"}\n' + long_line)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert "over the limit" in response.json()["rejected"][0]["error"]


def test_full_wal_answers_429_with_retry_after(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--wal-max-mb", "1", "--pause-batcher")
    body = b"\n".join(orjson.dumps({"message": "x" * 200, "i": i}) for i in range(2000))  # ~0.45 MB
    statuses = [post(server, body).status_code for _ in range(4)]
    assert statuses[0] == 200
    assert 429 in statuses
    response = post(server, body)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "backpressure"


def test_fields_are_stored_with_their_types(server: ServerProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    record = {"timestamp": "2026-11-01T12:34:56.789123Z", "level": "warning", "service": "checkout",
              "message": "payment declined", "host": "ip-10-0-1-5", "instance": "checkout-9092",
              "env": "prod", "version": "1.4.2", "traceparent":
              "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "request_id": "req-1",
              "http": {"method": "POST", "path": "/api/orders", "status": 502, "duration_ms": 1234.5,
                       "client_ip": "203.0.113.7", "user_agent": "curl/8.5.0", "bytes_sent": 612},
              "user_id": "u-123", "cart": {"items": 3, "total": 12.5}, "flags": ["a", "b"]}
    assert post(server, orjson.dumps(record)).json()["accepted"] == 1
    server.wait_rows(1)
    server.stop()
    rows = query_stopped_store(server.data_dir, "SELECT * FROM logs")
    assert len(rows) == 1
    row = rows[0]
    assert row["timestamp"] == "2026-11-01 12:34:56.789123000"
    assert (row["level"], row["service"], row["env"]) == ("WARN", "checkout", "prod")
    assert row["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and row["span_id"] == "00f067aa0ba902b7"
    assert (row["http_status"], row["http_duration_ms"], row["http_bytes_sent"]) == (502, 1234.5, 612)
    # the attributes column holds the object's JSON text, keys in the order sent (the JSON column
    # gave back a parsed object, keys in its own order)
    assert row["attributes"] == ('{"user_id":"u-123","cart":{"items":3,"total":12.5},"flags":["a","b"],'
                                 '"trace_header":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}')
    assert orjson.loads(row["attributes"])["cart"] == {"items": 3, "total": 12.5}
