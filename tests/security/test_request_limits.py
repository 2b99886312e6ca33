"""Request limits against a real server process: bodies, headers, slow clients, LogQL nesting,
the API docs page, batches over a key's burst, abandoned uploads and HSTS (issue #21).

Each test performs the attack over a real socket and checks the answer names the limit; none
measures time: slow clients are waited for with a deadline, and the server's timeouts are set
to one second so the waits are short.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import orjson
import pytest
import trustme
from tests.conftest import ServerProcess

LIMIT_FLAGS = ("--batch-max-age", "0.2", "--ingest-rate", "50", "--header-timeout", "1", "--body-timeout", "1",
               "--max-request-kb", "64", "--max-headers", "50")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("limits") / "data", *LIMIT_FLAGS).start()
    yield proc
    proc.stop()


def raw(server: ServerProcess, head: bytes, body: bytes = b"", *, wait_s: float = 30.0) -> bytes:
    """Send bytes on a fresh connection and read until the server closes it or answers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait_s) as sock:
        sock.sendall(head + body)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return data
        if not chunk:
            return data
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
        if sep and length and len(rest) >= int(length[1]):
            return data


def status_and_json(answer: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)


def auth(server: ServerProcess) -> bytes:
    return f"Authorization: Bearer {server.api_key}\r\n".encode()


# ------------------------------------------------------------------------------- bodies (item 6)

def test_a_huge_declared_body_to_the_query_api_is_refused_before_it_is_read(server: ServerProcess) -> None:
    head = (b"POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + auth(server)
            + b"Content-Length: 524288000\r\n\r\n")
    status, body = status_and_json(raw(server, head, b'{"q": "'))  # the server must not wait for 500 MB
    assert status == 413
    assert body["error"]["code"] == "body_too_large"
    assert body["error"]["detail"] == {"limit_bytes": 64 * 1024, "setting": "max_request_bytes"}


def test_a_chunked_body_is_stopped_at_the_limit(server: ServerProcess) -> None:
    chunk = b"x" * 32768
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + auth(server) + b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        try:  # keep sending until the server answers and closes: it stops at 64 KiB, not at the end
            for _ in range(2000):
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, body = status_and_json(read_answer(sock))
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert sent < 2000 * len(chunk)


@pytest.mark.parametrize("path", ["/api/v1/keys", "/api/v1/dashboards", "/api/v1/alerts/rules/x",
                                  "/api/v1/retention"])
def test_every_other_endpoint_has_the_same_limit(server: ServerProcess, path: str) -> None:
    response = httpx.request("PUT" if path.endswith("/x") else "POST", server.url + path,
                             content=b"{" + b" " * 70_000 + b"}", timeout=60,
                             headers={**server.headers, "content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["detail"]["setting"] == "max_request_bytes"


def test_ingest_keeps_its_own_larger_limit(server: ServerProcess) -> None:
    body = b"\n".join(orjson.dumps({"message": "m" * 2000, "n": i}) for i in range(40))  # 80 KB
    # timeout: the first large body starts the ingest worker processes
    response = httpx.post(server.url + "/api/v1/logs", content=body, headers=server.headers, timeout=120)
    assert response.status_code == 200, response.text


# ------------------------------------------------------------------------------- headers (item 10)

def test_a_header_over_the_size_limit_is_a_431(server: ServerProcess) -> None:
    head = b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    status, body = status_and_json(raw(server, head))
    assert status == 431 and body["error"]["code"] == "headers_too_large"
    assert "max_header_bytes" in body["error"]["message"]


def test_too_many_headers_is_a_431(server: ServerProcess) -> None:
    head = b"GET /readyz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n"
    status, body = status_and_json(raw(server, head))
    assert status == 431 and "max_headers" in body["error"]["message"]


def test_an_8_mb_header_sent_in_pieces_is_cut_off(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(128):  # 8 MiB in 64 KiB pieces
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431")


def test_slow_clients_are_cut_off_and_a_normal_one_is_served(server: ServerProcess) -> None:
    sockets = []
    for i in range(60):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        if i % 3 == 1:
            sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        elif i % 3 == 2:  # finishes its headers, then trickles the body
            sock.sendall(b"POST /api/v1/logs HTTP/1.1\r\nHost: x\r\n" + auth(server)
                         + b"Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{")
        sockets.append(sock)  # i % 3 == 0: connects and says nothing
    try:
        assert httpx.get(server.url + "/readyz", timeout=30).status_code == 200
        answers = [read_answer(sock) for sock in sockets]  # each ends: the server closes them all
    finally:
        for sock in sockets:
            sock.close()
    assert all(a == b"" for a in answers[0::3])
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers[1::3]), answers[1]
    assert all(a.startswith(b"HTTP/1.1 408") or a == b"" for a in answers[2::3]), answers[2]
    assert b"header_timeout_s" in answers[1] and b"body_timeout_s" in answers[2]


# ------------------------------------------------------------------------------- LogQL nesting (item 9)

@pytest.mark.parametrize("query", ["(" * 5000 + '{service="x"}' + ")" * 5000,
                                   "sum(" * 3000 + 'count_over_time({service="x"}[5m])' + ")" * 3000,
                                   " + ".join(["1"] * 3000),
                                   '{service="x"} | ' + "(" * 3000 + 'a="1"' + ")" * 3000])
def test_deep_logql_is_a_json_400_that_names_the_limit(server: ServerProcess, query: str) -> None:
    response = httpx.get(server.url + "/loki/api/v1/query_range?" + urlencode({"query": query}),
                         headers=server.headers, timeout=30)
    assert response.status_code == 400, response.text[:200]
    error = response.json()["error"]
    assert error["code"] == "invalid_logql" and "deeper than 64 levels" in error["message"]


def test_deep_native_query_is_refused_alike(server: ServerProcess) -> None:
    response = httpx.post(server.url + "/api/v1/query", json={"q": "(" * 5000 + "a" + ")" * 5000},
                          headers=server.headers, timeout=30)
    assert response.status_code == 400 and "deeper than 64 levels" in response.json()["error"]["message"]


# ------------------------------------------------------------------------------- API docs (item 11)

def test_the_api_docs_page_loads_nothing_from_another_origin(server: ServerProcess) -> None:
    page = httpx.get(server.url + "/api/docs", timeout=30)
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(u.startswith("/api/docs/") for u in urls), urls
    assert "cdn" not in page.text and "http" not in page.text.replace("http-equiv", "")
    for url in urls:
        asset = httpx.get(server.url + url, timeout=30)
        assert asset.status_code == 200 and asset.content, url
    assert "SwaggerUIBundle" in httpx.get(server.url + "/api/docs/swagger-ui-bundle.js", timeout=30).text


def test_the_api_docs_page_can_be_turned_off(server_factory) -> None:  # type: ignore[no-untyped-def]
    quiet = server_factory("--no-api-docs")
    assert httpx.get(quiet.url + "/api/docs", timeout=30).status_code in (401, 404)
    assert httpx.get(quiet.url + "/api/openapi.json", timeout=30).status_code == 200


# ------------------------------------------------------------------------------- over-burst batch (item 12)

def test_a_batch_larger_than_the_burst_is_a_413_that_names_the_limit(server: ServerProcess) -> None:
    key = server.create_key("writer", name="burst")
    headers = {"authorization": f"Bearer {key}", "content-type": "application/x-ndjson"}
    body = b"\n".join(orjson.dumps({"message": f"over {i}"}) for i in range(60))
    for _ in range(3):  # the same answer every time: no retry could ever pass
        response = httpx.post(server.url + "/api/v1/logs", content=body, headers=headers, timeout=60)
        assert response.status_code == 413, response.text
        assert "retry-after" not in response.headers
        error = response.json()["error"]
        assert error["code"] == "batch_over_rate"
        assert error["detail"] == {"records": 60, "ingest_rate": 50, "max_batch_records": 50}
    small = b"\n".join(orjson.dumps({"message": f"fits {i}"}) for i in range(40))
    assert httpx.post(server.url + "/api/v1/logs", content=small, headers=headers, timeout=60).status_code == 200


def test_a_batch_of_exactly_the_burst_ending_in_a_newline_is_accepted(server: ServerProcess) -> None:
    """NDJSON ends its last line with a newline: 50 records and a final newline are 50 lines, not 51."""
    key = server.create_key("writer", name="edge")
    headers = {"authorization": f"Bearer {key}", "content-type": "application/x-ndjson"}
    body = b"".join(orjson.dumps({"message": f"edge {i}"}) + b"\n" for i in range(50))
    response = httpx.post(server.url + "/api/v1/logs", content=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 50


# ------------------------------------------------------------------------------- abandoned upload (item 13)

def test_a_client_that_leaves_mid_upload_leaves_one_line_and_no_traceback(server: ServerProcess) -> None:
    before = server.log()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /api/v1/logs HTTP/1.1\r\nHost: x\r\n" + auth(server)
                     + b"Content-Type: application/x-ndjson\r\nContent-Length: 1000000\r\n\r\n"
                     + b'{"message": "cut"}\n' * 2000)
    deadline = time.monotonic() + 30
    while "went away during the upload" not in server.log()[len(before):] and time.monotonic() < deadline:
        time.sleep(0.05)
    new = server.log()[len(before):]
    assert new.count("went away during the upload of POST /api/v1/logs") == 1, new
    assert "Traceback" not in new and "Exception in ASGI application" not in new, new


# ------------------------------------------------------------------------------- HSTS (item 15)

@pytest.mark.e2e
def test_hsts_only_when_serving_tls(server_factory, tmp_path: Path, server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    assert "strict-transport-security" not in httpx.get(server.url + "/readyz", timeout=30).headers
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    tls = ServerProcess(tmp_path / "tls", "--tls-cert", str(tmp_path / "cert.pem"),
                        "--tls-key", str(tmp_path / "key.pem"))
    tls.url = tls.url.replace("http://", "https://")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    original_get = httpx.get
    httpx.get = lambda url, **kw: original_get(url, verify=context, **kw)  # type: ignore[assignment]
    try:
        tls.start()
    finally:
        httpx.get = original_get  # type: ignore[assignment]
    try:
        for path in ("/readyz", "/api/v1/query"):  # a refused request (401) carries it too
            response = httpx.get(tls.url + path, verify=context, timeout=30)
            assert response.headers["strict-transport-security"] == "max-age=31536000", path
    finally:
        tls.stop()
