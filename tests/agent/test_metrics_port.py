"""The agent's metrics port keeps at most METRICS_MAX_CONNECTIONS connections and times out one
that sends nothing: prometheus_client's own server started a thread per connection and waited for
a request line forever, so idle sockets on the port became threads without bound."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest

from logharbor.agent import telemetry


def test_the_metrics_port_refuses_connections_over_its_limit_and_serves_again(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.WARNING, logger="logharbor.agent")
    # the idle sockets must stay open until all are counted: on a loaded machine the product's
    # 10 s read timeout could close the first before the last was accepted (the test holds it back)
    monkeypatch.setattr(telemetry._QuietHandler, "timeout", 120.0)
    server = telemetry.start_metrics_server("127.0.0.1", 0)
    port = server.server_address[1]
    counter = telemetry.METRICS.connections_refused.labels("metrics")
    before = counter._value.get()
    idle: list[socket.socket] = []
    try:
        for _ in range(telemetry.METRICS_MAX_CONNECTIONS):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        deadline = time.monotonic() + 30
        while server.active < telemetry.METRICS_MAX_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.active == telemetry.METRICS_MAX_CONNECTIONS
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as over:
                try:
                    assert over.recv(1) == b""  # closed at once, no thread for it
                except ConnectionResetError:
                    pass
        assert counter._value.get() - before == 3
        lines = [r for r in caplog.records if "metrics connections refused" in r.getMessage()]
        assert len(lines) == 1  # once per burst
        for sock in idle:
            sock.close()
        idle.clear()
        deadline = time.monotonic() + 30
        while server.active and time.monotonic() < deadline:
            time.sleep(0.01)
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
        assert response.status_code == 200 and "logharbor_agent_connections_refused_total" in response.text
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()
        server.server_close()
