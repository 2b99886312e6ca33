"""Response compression against a real server: gzip JSON for clients that ask, identity for the
others, and the streams (SSE and NDJSON tail, NDJSON export) left uncompressed and flushing."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

from logharbor.cli.query import _EVERY_ROW  # what `logharbor query --limit 0` asks for
from logharbor.server.compression import MINIMUM_SIZE, accepts_gzip

N_RECORDS = 100


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("gzip") / "data", "--batch-max-age", "0.2").start()
    records = [{"service": "checkout", "level": "info", "host": f"web-{i % 7}",
                "message": f"GET /api/cart/{i} 200 in {i % 50} ms user=u{i % 13} region=eu-west-1",
                "attributes": {"http": {"status": 200, "path": f"/api/cart/{i}"}, "trace_id": f"{i:032x}"}}
               for i in range(N_RECORDS)]
    try:
        proc.ingest(records)
        yield proc
    finally:
        proc.stop()


def _query(server: ServerProcess, accept_encoding: str | None, **extra: str) -> httpx.Response:
    """POST a 100-record query, reading the body as it came off the wire (not decoded)."""
    with server.client() as client:
        if accept_encoding is None:
            del client.headers["accept-encoding"]
        else:
            client.headers["accept-encoding"] = accept_encoding
        request = client.build_request("POST", "/api/v1/query", json={"q": "*", "limit": N_RECORDS},
                                       headers=extra)
        assert ("accept-encoding" in request.headers) == (accept_encoding is not None)
        response = client.send(request, stream=True)
        try:
            response.raw = b"".join(response.iter_raw())  # type: ignore[attr-defined]
        finally:
            response.close()
        return response


def test_json_answers_are_gzip_for_clients_that_accept_it(server: ServerProcess) -> None:
    plain = _query(server, None)
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    rows = orjson.loads(plain.raw)["rows"]  # type: ignore[attr-defined]
    assert len(rows) == N_RECORDS
    packed = _query(server, "gzip, deflate")
    assert packed.status_code == 200
    assert packed.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in packed.headers["vary"].lower()
    assert packed.raw[:2] == b"\x1f\x8b"  # type: ignore[attr-defined]
    answer = orjson.loads(gzip.decompress(packed.raw))  # type: ignore[attr-defined]
    assert answer["rows"] == rows
    assert int(packed.headers["content-length"]) == len(packed.raw)  # type: ignore[attr-defined]
    assert len(packed.raw) * 3 < len(plain.raw)  # type: ignore[attr-defined]


@pytest.mark.parametrize("accept_encoding", ["identity", "gzip;q=0", "gzip;q=0, *", "br", ""])
def test_clients_that_do_not_accept_gzip_get_identity(server: ServerProcess, accept_encoding: str) -> None:
    response = _query(server, accept_encoding)
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert len(orjson.loads(response.raw)["rows"]) == N_RECORDS  # type: ignore[attr-defined]


def test_small_answers_stay_as_they_are(server: ServerProcess) -> None:
    with server.client(headers={"accept-encoding": "gzip"}) as client:
        response = client.get("/healthz")
    assert response.status_code == 200 and len(response.content) < MINIMUM_SIZE
    assert "content-encoding" not in response.headers


def test_errors_are_compressed_like_answers(server: ServerProcess) -> None:
    response = httpx.post(server.url + "/api/v1/query", json={"q": "*"}, headers={"accept-encoding": "gzip"})
    assert response.status_code == 401
    assert response.json()["error"]["code"]  # small: identity, still the JSON error body


def test_ndjson_export_streams_uncompressed(server: ServerProcess) -> None:
    with server.client(headers={"accept-encoding": "gzip", "accept": "application/x-ndjson"}) as client, \
            client.stream("POST", "/api/v1/query", json={"q": "*", "limit": _EVERY_ROW}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert "content-encoding" not in response.headers
        raw = b"".join(response.iter_raw())
    lines = [orjson.loads(line) for line in raw.splitlines() if line]
    assert len(lines) >= N_RECORDS


def _raw_stream(server: ServerProcess, accept: str) -> socket.socket:
    """A tail request on a plain socket, so the test sees the bytes exactly as the server sent them."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    path = "/api/v1/tail?" + urlencode({"q": "service:tailcheck"})
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n"
                 f"Accept-Encoding: gzip, deflate, br\r\nAuthorization: Bearer {server.api_key}\r\n\r\n".encode())
    return sock


def _read_until(sock: socket.socket, needle: bytes, data: bytes = b"", timeout: float = 60.0) -> bytes:
    """Read until ``needle`` shows in the plain bytes (a condition with a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while needle not in data:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the stream before {needle!r}: {data[:500]!r}"
        data += chunk
        assert time.monotonic() < deadline or needle in data, f"no {needle!r} in time: {data[:500]!r}"
    return data


@pytest.mark.parametrize(("accept", "first", "record_marker"), [
    ("text/event-stream", b"event: subscribed", b"data: {"),
    ("application/x-ndjson", b'{"subscribed"', b'{"timestamp"'),
])
def test_live_tail_is_not_compressed_and_flushes(server: ServerProcess, accept: str, first: bytes,
                                                 record_marker: bytes) -> None:
    sock = _raw_stream(server, accept)
    try:
        data = _read_until(sock, first)  # the hello arrives before any record exists to push it out
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 200")
        assert b"content-encoding" not in head
        assert f"content-type: {accept}".encode() in head
        marker = f"tail-{accept.split('/')[1]}-{time.time_ns()}"
        server.ingest([{"service": "tailcheck", "message": marker}], wait=False)
        data = _read_until(sock, marker.encode(), data)  # one small record, flushed as it happened
        assert record_marker in data
    finally:
        sock.close()


def test_compressed_requests_still_ingest_with_compressed_answers_allowed(server: ServerProcess) -> None:
    body = gzip.compress(b"\n".join(orjson.dumps({"service": "gz", "message": f"line {i}"}) for i in range(3)))
    with server.client(headers={"accept-encoding": "gzip"}) as client:
        response = client.post("/api/v1/logs", content=body,
                               headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3


@pytest.mark.parametrize(("value", "expected"), [
    ("gzip", True), ("GZIP", True), ("deflate, gzip;q=0.5", True), ("x-gzip", True), ("*", True),
    ("gzip;q=0", False), ("gzip; q=0.0, *", False), ("identity", False), ("", False), ("br, zstd", False),
    ("gzip;q=bad", False),
])
def test_accept_encoding_is_read_with_its_weights(value: str, expected: bool) -> None:
    assert accepts_gzip(value) is expected
