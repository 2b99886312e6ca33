"""The test harness under two workers (``pytest -n 2``): a server whose port another process took
between ``free_port()`` and its start is not mistaken for that process.

Before, the other process answered ``/readyz`` while this server exited on "address in use", and
the test talked to someone else's server (another test's data, a key it did not know)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from tests.conftest import ServerProcess, listens_on


class _Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the stdlib names it
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status":"ready"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.e2e
def test_a_server_whose_port_was_taken_starts_on_another(tmp_path: Path) -> None:
    squatter = ThreadingHTTPServer(("127.0.0.1", 0), _Ready)  # another worker's server on "our" port
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    server = ServerProcess(tmp_path / "data", "--batch-max-age", "0.2")
    taken = squatter.server_address[1]
    server.port = taken  # as if free_port() had said it was free just before the other one bound it
    try:
        server.start()
        assert server.port != taken
        assert server.proc is not None and listens_on(server.proc.pid, server.port)
        assert httpx.get(server.url + "/api/v1/keys", headers=server.headers, timeout=10).status_code == 200
    finally:
        server.stop()
        squatter.shutdown()
        squatter.server_close()


def test_a_given_port_is_never_swapped(tmp_path: Path) -> None:
    squatter = ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    server = ServerProcess(tmp_path / "data", port=squatter.server_address[1])
    try:
        with pytest.raises(RuntimeError, match="another process's"):
            server.start()
    finally:
        server.stop()
        squatter.shutdown()
        squatter.server_close()
