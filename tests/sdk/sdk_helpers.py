"""Helpers for the sdk tests: parse the lines, run real app processes on loopback."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import zstandard

from logharbor import exactjson

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"


def free_port() -> int:
    """A port free on loopback right now (the app binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_lines(text: str | bytes) -> list[dict[str, Any]]:
    """Every line must be one JSON object: a line that is not fails the test. Read exactly (an
    integer beyond 64 bits stays one; orjson would make it a float)."""
    raw = text.decode() if isinstance(text, bytes) else text
    return [exactjson.loads(line) for line in raw.splitlines() if line.strip()]


class AppProcess:
    """A real app server process on loopback whose stdout (the JSON lines) goes to a file."""

    def __init__(self, script: str, tmp: Path, port: int, **env: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.out = tmp / f"{Path(script).stem}-{port}.out"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.proc = subprocess.Popen(
            [sys.executable, str(APPS / script), str(port)],
            stdout=open(self.out, "wb"), stderr=subprocess.STDOUT, env=full_env, cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{script} exited:\n{self.out.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"{script} did not start:\n{self.out.read_text()}")

    def lines(self) -> list[dict[str, Any]]:
        return parse_lines(self.out.read_bytes())

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], count: int = 1,
                 timeout: float = 10.0) -> list[dict[str, Any]]:
        """The lines matching ``predicate`` once there are at least ``count`` of them."""
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            found = [line for line in self.lines() if predicate(line)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"wanted {count} lines, got {len(found)}:\n{self.out.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Receiver:
    """A tiny ingest endpoint: records every request, answers from a script, then 200."""

    def __init__(self, port: int | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str], bytes | None]] = []
        self.reject_lines: set[int] = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                encoding = self.headers.get("Content-Encoding")
                body = (zstandard.ZstdDecompressor().decompressobj().decompress(raw) if encoding == "zstd"
                        else gzip.decompress(raw) if encoding == "gzip" else raw)
                lines = parse_lines(body)
                with receiver.lock:
                    status, headers, answer = receiver.script.pop(0) if receiver.script else (200, {}, None)
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "lines": lines, "status": status})
                if answer is None:
                    rejected = [{"line": k, "error": "test says no"} for k in sorted(receiver.reject_lines)
                                if k <= len(lines)]
                    answer = orjson.dumps({"accepted": len(lines) - len(rejected), "rejected": rejected})
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict[str, Any]]:
        """Lines of the requests answered 200, in order."""
        return [line for req in self.requests if req["status"] == 200 for line in req["lines"]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
