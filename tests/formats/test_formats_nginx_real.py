"""Real NGINX output: Debian's nginx runs on 127.0.0.1 with our log formats, answers requests sent
with httpx, and the lines it wrote are parsed back."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from logharbor.formats import build_parser
from logharbor.formats.nginx import LOG_FORMATS
from logharbor.record import normalize

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")

CUSTOM = ("log_format custom '$remote_addr [$time_iso8601] $request_method $request_uri $status "
          "$bytes_sent $request_length $msec $connection \"$http_traceparent\"';")
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def nginx_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[dict]]]:
    root = tmp_path_factory.mktemp("nginx")
    port = _free_port()
    dead = socket.socket()  # bound, never listening: connecting to it is refused
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    conf = root / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  log_format main '{LOG_FORMATS["main"]}';
  log_format jsonfmt escape=json '{LOG_FORMATS["json"]}';
  {CUSTOM}
  server {{
    listen 127.0.0.1:{port};
    access_log {root}/combined.log combined;
    access_log {root}/main.log main;
    access_log {root}/json.log jsonfmt;
    access_log {root}/custom.log custom;
    location / {{ return 200 "ok\\n"; }}
    location /missing {{ return 404; }}
    location /boom {{ return 503; }}
    location /upstream {{ proxy_pass http://127.0.0.1:{dead_port}; }}
  }}
}}
""")
    env = {**os.environ, "TZ": "UTC"}
    proc = subprocess.Popen([NGINX, "-p", str(root), "-c", str(conf), "-e", str(root / "error.log"),
                             "-g", "daemon off;"], env=env, stderr=subprocess.PIPE)
    sent: list[dict] = []
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=5) as client:
            for _ in range(200):
                try:
                    client.get("/ready")
                    break
                except httpx.TransportError:
                    if proc.poll() is not None:
                        pytest.fail(f"nginx exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
                    time.sleep(0.05)
            requests = [
                ("GET", "/", {"X-Amzn-Trace-Id": TRACE, "User-Agent": "curl/8.5.0"}, 200),
                ("GET", "/missing?q=a%20b&x=1", {"X-Amzn-Trace-Id": TRACE, "Referer": "https://shop.example/",
                                                  "User-Agent": 'agent "quoted" \\ back'}, 404),
                ("POST", "/boom", {"X-Forwarded-For": "203.0.113.7", "traceparent": TRACEPARENT}, 503),
                ("GET", "/upstream", {"X-Amzn-Trace-Id": TRACE}, 502),
            ]
            for method, path, headers, status in requests:
                body = b"x" * 10 if method == "POST" else None
                r = client.request(method, path, headers=headers, content=body)
                assert r.status_code == status
                sent.append({"method": method, "path": path, "headers": headers, "status": status,
                             "time_ns": time.time_ns()})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if all(len((root / f).read_text().splitlines()) >= 5 for f in
                   ("combined.log", "main.log", "json.log", "custom.log")):
                break
            time.sleep(0.05)
        yield root, sent
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        dead.close()


def _lines(root: Path, name: str) -> list[str]:
    lines = (root / name).read_text().splitlines()
    return lines[-4:]  # the first line is the readiness probe


@pytest.mark.parametrize("fmt,file", [("combined", "combined.log"), ("main", "main.log"),
                                      ("json", "json.log"), (CUSTOM, "custom.log")])
def test_real_access_log_lines_parse(nginx_logs: tuple[Path, list[dict]], fmt: str, file: str) -> None:
    root, sent = nginx_logs
    parser = build_parser("nginx", format=fmt)
    lines = _lines(root, file)
    assert len(lines) == len(sent)
    for line, req in zip(lines, sent, strict=True):
        raw = parser.parse(line)
        assert "parse_error" not in raw, (line, raw)
        rec = normalize(raw, received_ns=req["time_ns"])
        assert rec["source"] == "nginx"
        assert rec["http"]["method"] == req["method"]
        assert rec["http"]["path"] == req["path"]
        assert rec["http"]["status"] == req["status"]
        assert rec["http"]["client_ip"] == "127.0.0.1"
        assert rec["level"] == {200: "INFO", 404: "WARN", 503: "ERROR", 502: "ERROR"}[req["status"]]
        assert abs(rec["timestamp"] - req["time_ns"]) < 120 * 10**9
        assert rec["http"]["bytes_sent"] >= 0
        if fmt != CUSTOM:
            agent = req["headers"].get("User-Agent", "python-httpx/" + httpx.__version__)
            assert rec["http"]["user_agent"] == agent  # quotes and backslashes unescaped
            assert rec["http"].get("referer") == req["headers"].get("Referer")
        if fmt in ("main", "json"):
            assert "duration_ms" in rec["http"]
            assert len(rec["request_id"]) == 32  # $request_id: 16 random bytes in hex
            if "X-Amzn-Trace-Id" in req["headers"]:
                assert rec["trace_id"] == "5759e988bd862e3fe1be46a994272793"
                assert rec["attributes"]["trace_header"] == TRACE
            if req["path"] == "/upstream":
                assert rec["attributes"]["upstream_response_time_ms"] >= 0
            if "X-Forwarded-For" in req["headers"]:
                assert rec["attributes"]["x_forwarded_for"] == "203.0.113.7"
        if fmt == CUSTOM:
            assert rec["attributes"]["request_length"] > 0
            if "traceparent" in req["headers"]:
                assert rec["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
                assert rec["span_id"] == "00f067aa0ba902b7"


def test_real_error_log_lines_parse(nginx_logs: tuple[Path, list[dict]]) -> None:
    root, _sent = nginx_logs
    parser = build_parser("nginx", format="error")
    lines = (root / "error.log").read_text().splitlines()
    assert lines
    records = []
    for line in lines:
        raw = parser.parse(line)
        assert "parse_error" not in raw, line
        records.append(normalize(raw, received_ns=0))
    refused = [r for r in records if "Connection refused" in r["message"]]
    assert refused, lines
    rec = refused[0]
    assert rec["level"] == "ERROR"
    assert rec["http"]["client_ip"] == "127.0.0.1"
    assert rec["http"]["method"] == "GET" and rec["http"]["path"] == "/upstream"
    assert rec["attributes"]["upstream"].startswith("http://127.0.0.1:")
    assert rec["message"].endswith("while connecting to upstream")
    assert any(r["level"] == "INFO" for r in records)  # the [notice] start-up lines
